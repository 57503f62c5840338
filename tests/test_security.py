"""The threat model, as tests: who may do what, who may see which secret, and what
hostile input gets. A reviewer reads this module first.

Here, against the app in-process (SQLite, no browser):

- every endpoint of the cloud API (walked from the app's url_map, so a new one can't
  be forgotten) x every caller: no token, a bad or revoked token (401), each role of
  ``permissions.ROLES`` and a token with one permission (403 naming the permission
  it lacks, or the answer);
- every answer is grepped for the farm's secrets (window proxy and SSH passwords,
  extraction and refresh URLs with their keys, cookie values, pool proxy passwords,
  API tokens, v5 access keys): a secret shows only to a caller whose permissions may
  reveal it (``REVEALED_BY``), and another account's never;
- another account's ids (windows, groups, tags, pool proxies, workers): answered as
  not found (404, or the spec's 211 for a reference in a field; v5: 403), never its
  data, and nothing of it changes;
- hostile input (item 9 of issue 12) on every surface: code 211 naming the field,
  never a 500, and nothing stored that can't be answered as JSON.

Elsewhere, each next to the code it tests:

- the Local API (127.0.0.1:54345): loopback Host and Origin only (DNS rebinding, web
  pages), the allow-list of forwarded paths (``..`` tricks), the agent's narrow
  token: tests/test_local.py;
- profile chunks scoped to their account, quotas, hostile manifests:
  tests/test_profiles.py;
- server-side requests refused to blocked networks (BROWSERFARM_BLOCKED_NETWORKS,
  tested on 127.66.0.0/16), one deadline per outbound call:
  tests/test_blocked_networks.py, tests/test_fetch.py;
- v5 worker browsers kept off the farm's own ports and blocked networks:
  tests/test_worker_network.py; cross-site POSTs to v5: tests/test_v5.py;
- other users of the machine (file modes of the data dir): tests/test_file_modes.py;
- browsers as an unprivileged user with Chromium's sandbox:
  tests/test_worker_backends.py.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Callable

import pytest

from browserfarm import permissions as perm
from browserfarm.api.local import create_local_app
from browserfarm.app import CLOUD_BLUEPRINT_NAMES, create_app
from browserfarm.services.accounts import create_account, create_token, revoke_token
from tests.conftest import in_db, make_farm
from tests.test_local import agent, cloud  # noqa: F401 - fixtures (a cloud server, no browser)

COOKIE_REVEAL = getattr(perm, "BROWSER_COOKIE_REVEAL", "browser:cookie:reveal")

# ----- the data: two accounts, each with distinctive secrets ------------------------


def secrets_of(tag: str) -> dict[str, str]:
    """Secrets by kind, each a string found nowhere else."""
    return {kind: f"{tag}-{kind}-5e3c9a" for kind in (
        "proxy_password", "ssh_password", "extraction_key", "refresh_key", "cookie",
        "pool_password")}


#: Which permission lets a caller see each kind of secret of its own account.
#: None: no answer ever shows it (tokens and v5 keys are shown once, when made).
REVEALED_BY = {
    "proxy_password": perm.BROWSER_PROXY_REVEAL,
    "ssh_password": perm.BROWSER_PROXY_REVEAL,
    "extraction_key": perm.BROWSER_PROXY_REVEAL,
    "refresh_key": perm.BROWSER_PROXY_REVEAL,
    "pool_password": perm.BROWSER_PROXY_REVEAL,
    "cookie": COOKIE_REVEAL,
    "token": None,
    "v5_key": None,
}


@dataclass
class Account:
    """An account as the tests use it: its owner's API caller, its objects' ids and
    its secrets. ``fresh_*`` make a new object (for calls that change or delete)."""
    name: str
    client: object
    token: str
    account_id: int
    v5_username: str
    v5_key: str
    secrets: dict
    ids: dict = field(default_factory=dict)
    serial: itertools.count = field(default_factory=itertools.count)
    acting: str | None = None  # the token of the call being made (Case.call)

    def call(self, path, body=None, token=None, **kwargs):
        return post(self.client, token or self.token, path, body, **kwargs)

    def made(self, path, body) -> int:
        answer = self.call(path, body)
        assert answer.status_code == 200 and answer.get_json()["code"] == 0, answer.get_json()
        return answer.get_json()["data"]["id"]

    def fresh_window(self, deleted: bool = False) -> int:
        """A window with a proxy password and cookies (the secrets an answer about it
        may show)."""
        window = self.made("/browser/update", {
            "name": f"{self.name}-window-{next(self.serial)}", "proxyMethod": 2,
            "proxyType": "socks5", "host": "127.0.0.1", "port": 9,
            "proxyUserName": "alice", "proxyPassword": self.secrets["proxy_password"],
            "cookie": [{"name": "sid", "value": self.secrets["cookie"],
                        "domain": "shop.test", "path": "/"}]})
        if deleted:
            assert self.call("/browser/delete", {"id": window}).get_json()["code"] == 0
        return window

    def fresh_group(self) -> int:
        return self.made("/group/add", {"groupName": f"{self.name}-group-{next(self.serial)}"})

    def fresh_tag(self) -> int:
        return self.made("/tag/add", {"name": f"{self.name}-tag-{next(self.serial)}"})

    def fresh_command(self, taken: bool = False) -> tuple[str, int]:
        """An agent of its own, online, and a command to open a window on it (taken by
        the agent: running). Returns the agent's name and the command's id."""
        agent = f"{self.name}-agent-{next(self.serial)}"
        # Taken and answered by the calling token if it may poll: an agent's name is
        # bound to the token it first polled with.
        poller = self.acting if taken and self.acting and self.call(
            "/agent/poll", {"name": agent, "wait": 0}, token=self.acting
        ).get_json()["code"] == 0 else self.token
        assert self.call("/agent/poll", {"name": agent, "wait": 0},
                         token=poller).get_json()["code"] == 0
        command = self.made("/agent/command", {"agent": agent, "action": "open",
                                               "id": self.fresh_window()})
        if taken:
            polled = self.call("/agent/poll", {"name": agent, "wait": 0},
                               token=poller).get_json()
            assert polled["data"]["command"]["id"] == command, polled
        return agent, command

    def fresh_pool_proxy(self) -> int:
        return self.made("/proxy/add", {
            "proxyType": "socks5", "host": "127.0.0.1", "port": 10000 + next(UNIQUE),
            "proxyUserName": "bob",
            "proxyPassword": self.secrets["pool_password"],
            "remark": f"{self.name}-pool-{next(self.serial)}"})


def post(client, token, path, body=None, *, query=None, raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if raw is not None:
        return client.post(path, data=raw, query_string=query, headers=headers)
    return client.post(path, json={} if body is None else body, query_string=query,
                       headers=headers)


UNIQUE = itertools.count(1)  # names and ports the farm wants unique
CHUNK = b"a profile chunk"
CHUNK_HASH = hashlib.sha256(CHUNK).hexdigest()


def build_account(farm, client, name: str) -> Account:
    new = in_db(farm, lambda: create_account(farm, name))
    account = Account(name, client, new.token, new.account.id, new.v5_username,
                      new.v5_access_key, secrets_of(name))
    account.secrets["token"] = new.token
    account.secrets["v5_key"] = new.v5_access_key
    ids = account.ids
    ids["group"], ids["tag"] = account.fresh_group(), account.fresh_tag()
    ids["window"] = account.fresh_window()
    ids["ssh_window"] = account.made("/browser/update", {
        "name": f"{name}-ssh", "proxyMethod": 2, "proxyType": "ssh", "host": "127.0.0.1",
        "port": 22, "proxyUserName": "root", "proxyPassword": account.secrets["ssh_password"],
        "groupId": ids["group"], "tagIds": [ids["tag"]]})
    ids["extraction_window"] = account.made("/browser/update", {
        "name": f"{name}-extracted", "proxyMethod": 3,
        "dynamicIpUrl": f"http://127.0.0.1:9/get?key={account.secrets['extraction_key']}",
        "refreshProxyUrl": f"http://127.0.0.1:9/next?key={account.secrets['refresh_key']}"})
    ids["pool_proxy"] = account.fresh_pool_proxy()
    ids["pool_window"] = account.made("/browser/update", {
        "name": f"{name}-pooled", "proxyMethod": 4, "proxyId": ids["pool_proxy"]})
    ids["deleted_window"] = account.fresh_window(deleted=True)
    stored = account.call("/browser/profile/chunk", query={"sha256": CHUNK_HASH}, raw=CHUNK)
    assert stored.get_json()["code"] == 0, stored.get_json()
    return account


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The farm with two accounts, ``acme`` (the callers') and ``globex`` (the
    stranger), and a token per caller of acme: ``world.callers[name]`` is (token,
    permissions)."""
    base = tmp_path_factory.mktemp("security")
    farm = make_farm(base / "data", f"sqlite:///{base}/farm.db")
    client = create_app(farm=farm).test_client()
    acme, globex = build_account(farm, client, "acme"), build_account(farm, client, "globex")

    def token(permissions=(), role=None) -> str:
        raw, _ = in_db(farm, lambda: create_token(farm, acme.account_id, "t",
                                                  permissions=permissions, role=role))
        return raw

    callers = {f"role {name}": (token(role=name), frozenset(granted))
               for name, granted in perm.ROLES.items()}
    callers |= {f"only {p}": (token(permissions=[p]), frozenset([p])) for p in perm.ALL}
    revoked = token(role="owner")
    in_db(farm, lambda: revoke_token(farm, raw=revoked))

    class World:
        pass
    world = World()
    world.farm, world.client, world.acme, world.globex = farm, client, acme, globex
    world.callers, world.revoked = callers, revoked
    yield world
    farm.close()


# ----- every endpoint, with a body that names the account's own objects -------------

@dataclass(frozen=True)
class Case:
    """One call of an endpoint: ``body(account)`` names that account's objects;
    ``needs``: every permission it takes; ``reveals``: secrets of the named window
    that its answer shows to anyone allowed to make the call (the launch
    configuration holds all of them); ``foreign``: the stranger's ids are refused with
    one of these codes (None: the call names no object)."""
    path: str
    body: Callable[[Account], dict]
    needs: tuple[str, ...]
    name: str = ""
    reveals: tuple[str, ...] = ()
    foreign: tuple[int, ...] | None = (404,)
    query: Callable[[Account], dict] | None = None
    raw: bytes | None = None

    def __str__(self):
        return self.name or self.path

    def request(self, account: Account) -> dict:
        """The call's arguments for ``post``, naming ``account``'s objects."""
        return {"body": self.body(account), "raw": self.raw,
                "query": self.query(account) if self.query else None}

    def call(self, account: Account, token: str):
        account.acting = token
        return post(account.client, token, self.path, **self.request(account))


def window_case(path, needs, extra=None, **kwargs):
    return Case(path, lambda a: {"id": a.fresh_window(), **(extra or {})}, needs, **kwargs)


def ids_case(path, needs, extra=None, deleted=False, **kwargs):
    return Case(path, lambda a: {"ids": [a.fresh_window(deleted)], **(extra or {})}, needs,
                **kwargs)


P = perm
CASES = [
    Case("/browser/update", lambda a: {"name": "new"}, (P.BROWSER_CREATE,), "create",
         foreign=None),
    window_case("/browser/update", (P.BROWSER_UPDATE_SINGLE,), {"remark": "r"}, name="edit"),
    ids_case("/browser/update/partial", (P.BROWSER_UPDATE_SINGLE,), {"remark": "r"}),
    Case("/browser/update/partial", lambda a: {
        "ids": [a.fresh_window(), a.fresh_window()], "remark": "r"},
        (P.BROWSER_UPDATE_BATCH,), "partial batch"),
    Case("/browser/detail", lambda a: {"id": a.ids["window"]}, (P.BROWSER_LIST,)),
    Case("/browser/detail", lambda a: {"id": a.ids["ssh_window"]}, (P.BROWSER_LIST,),
         "detail ssh"),
    Case("/browser/detail", lambda a: {"id": a.ids["extraction_window"]}, (P.BROWSER_LIST,),
         "detail extraction"),
    Case("/browser/list", lambda a: {"pageSize": 100}, (P.BROWSER_LIST,), foreign=None),
    Case("/browser/list", lambda a: {"groupId": a.ids["group"]}, (P.BROWSER_LIST,),
         "list by group", foreign=(0, 211, 404)),
    Case("/browser/recycle/list", lambda a: {}, (P.BROWSER_LIST,), foreign=None),
    window_case("/browser/delete", (P.BROWSER_DELETE_RECYCLE,)),
    ids_case("/browser/delete/ids", (P.BROWSER_DELETE_RECYCLE,)),
    Case("/browser/group/update", lambda a: {"ids": [a.fresh_window()],
                                             "groupId": a.ids["group"]},
         (P.BROWSER_UPDATE_SINGLE,)),
    ids_case("/browser/remark/update", (P.BROWSER_UPDATE_SINGLE,), {"remark": "r"}),
    ids_case("/browser/proxy/update", (P.BROWSER_UPDATE_SINGLE,),
             {"proxyMethod": 2, "proxyType": "direct"}),
    Case("/browser/proxy/update", lambda a: {"ids": [a.fresh_window()], "proxyMethod": 4,
                                             "proxyId": a.ids["pool_proxy"]},
         (P.BROWSER_UPDATE_SINGLE,), "bind a pool proxy", foreign=(211, 404)),
    ids_case("/browser/recycle/restore", (P.BROWSER_RESTORE,), deleted=True),
    ids_case("/browser/recycle/delete", (P.BROWSER_DELETE_PERMANENT,), deleted=True),
    window_case("/browser/launch", (P.BROWSER_OPEN, P.BROWSER_PROXY_REVEAL),
                reveals=("proxy_password", "cookie")),
    window_case("/browser/status", (P.BROWSER_OPEN,), {"status": "closed"}),
    window_case("/browser/cookies/sync", (P.BROWSER_OPEN,),
                {"cookies": [{"name": "a", "value": "b"}]}),
    window_case("/browser/proxy/check", (P.PROXY_CHECK,)),
    window_case("/browser/proxy/refresh", (P.BROWSER_UPDATE_SINGLE, P.PROXY_CHECK)),
    Case("/browser/profile/missing", lambda a: {"hashes": [CHUNK_HASH]}, (P.BROWSER_OPEN,),
         foreign=None),
    Case("/browser/profile/chunk", lambda a: {}, (P.BROWSER_OPEN,), foreign=None,
         query=lambda a: {"sha256": CHUNK_HASH}, raw=CHUNK),
    Case("/browser/profile/chunk/get", lambda a: {}, (P.BROWSER_OPEN,), foreign=None,
         query=lambda a: {"sha256": CHUNK_HASH}),
    window_case("/browser/profile/commit", (P.BROWSER_OPEN,), {"manifest": {}}),
    Case("/browser/profile/latest", lambda a: {"id": a.ids["window"]}, (P.BROWSER_OPEN,)),
    Case("/group/add", lambda a: {"groupName": f"g{next(UNIQUE)}"}, (P.GROUP_MANAGE,), foreign=None),
    Case("/group/edit", lambda a: {"id": a.fresh_group(), "remark": "r"}, (P.GROUP_MANAGE,)),
    Case("/group/delete", lambda a: {"id": a.fresh_group()}, (P.GROUP_MANAGE,)),
    Case("/group/list", lambda a: {}, (P.GROUP_LIST,), foreign=None),
    Case("/group/detail", lambda a: {"id": a.ids["group"]}, (P.GROUP_LIST,)),
    Case("/tag/add", lambda a: {"name": f"t{next(UNIQUE)}"}, (P.TAG_MANAGE,), foreign=None),
    Case("/tag/edit", lambda a: {"id": a.fresh_tag(), "color": "#fff"}, (P.TAG_MANAGE,)),
    Case("/tag/delete", lambda a: {"id": a.fresh_tag()}, (P.TAG_MANAGE,)),
    Case("/tag/list", lambda a: {}, (P.TAG_LIST,), foreign=None),
    Case("/tag/detail", lambda a: {"id": a.ids["tag"]}, (P.TAG_LIST,)),
    Case("/proxy/add", lambda a: {"proxyType": "socks5", "host": "127.0.0.1",
                                  "port": 20000 + next(UNIQUE)},
         (P.PROXY_MANAGE,), foreign=None),
    Case("/proxy/update", lambda a: {"id": a.fresh_pool_proxy(), "remark": "r"},
         (P.PROXY_MANAGE,)),
    Case("/proxy/delete", lambda a: {"id": a.fresh_pool_proxy()}, (P.PROXY_MANAGE,)),
    Case("/proxy/import", lambda a: {"text": f"127.0.0.1:{30000 + next(UNIQUE)}"}, (P.PROXY_MANAGE,),
         foreign=None),
    Case("/proxy/list", lambda a: {}, (P.PROXY_LIST,), foreign=None),
    Case("/proxy/detail", lambda a: {"id": a.ids["pool_proxy"]}, (P.PROXY_LIST,)),
    Case("/proxy/check", lambda a: {"id": a.ids["pool_proxy"]}, (P.PROXY_CHECK,)),
    Case("/agent/poll", lambda a: {"name": f"{a.name}-agent-{next(UNIQUE)}", "wait": 0},
         (P.BROWSER_OPEN,), foreign=None),
    Case("/agent/list", lambda a: {}, (P.BROWSER_LIST,), foreign=None),
    Case("/agent/command", lambda a: {"agent": a.fresh_command()[0], "action": "open",
                                      "id": a.fresh_window()},
         (P.BROWSER_OPEN,), foreign=(211, 404)),
    Case("/agent/command/detail", lambda a: {"id": a.fresh_command()[1]}, (P.BROWSER_LIST,)),
    Case("/agent/result", lambda a: dict(zip(("name", "id"), a.fresh_command(taken=True)),
                                         result={"code": 0, "msg": "Browser opened"}),
         (P.BROWSER_OPEN,)),
]

CALLERS = [f"role {name}" for name in perm.ROLES] + [f"only {p}" for p in perm.ALL]


def cloud_paths(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()
            if rule.endpoint.split(".")[0] in CLOUD_BLUEPRINT_NAMES}


def test_every_cloud_endpoint_is_in_the_threat_model(world):
    app = world.client.application
    assert cloud_paths(app) == {case.path for case in CASES}
    for rule in app.url_map.iter_rules():
        if rule.rule in cloud_paths(app):
            assert rule.methods - {"HEAD", "OPTIONS"} == {"POST"}, rule.rule
    documented = {path for path in app.test_client().get("/openapi.json").get_json()["paths"]
                  if not path.startswith("/5")}
    assert documented == {case.path for case in CASES}


@pytest.mark.parametrize("path", sorted({case.path for case in CASES}))
def test_no_token_a_bad_one_or_a_revoked_one_is_401(world, path):
    for token in (None, "", "bf_" + "0" * 40, world.acme.token + "x", world.revoked):
        answer = post(world.client, token, path, {})
        assert (answer.status_code, answer.get_json()["code"]) == (401, 401), (token, path)
        assert answer.get_json()["data"] == {}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_caller_gets_what_its_permissions_allow_and_no_more(world, case, caller):
    token, granted = world.callers[caller]
    answer = case.call(world.acme, token)
    body = answer.get_json(silent=True) or {}  # a chunk's bytes: no envelope
    missing = [p for p in case.needs if p not in granted]
    if missing:
        assert (answer.status_code, body["code"]) == (403, 403), body
        assert body["data"]["permission"] in missing
    else:
        assert (answer.status_code, body.get("code", 0)) == (200, 0), body
    text = answer.get_data(as_text=True)
    for kind, secret in world.acme.secrets.items():
        if secret in text:
            revealing = REVEALED_BY[kind]
            allowed = (revealing is not None and revealing in granted) or (
                kind in case.reveals and not missing)
            assert allowed, f"{caller} saw {kind} in {case}"
    assert_nothing_of(world.globex, text)


def assert_nothing_of(account: Account, text: str) -> None:
    """No secret and no name of ``account`` in ``text``."""
    for kind, secret in account.secrets.items():
        assert secret not in text, f"{account.name}'s {kind}"
    assert f"{account.name}-" not in text, f"{account.name}'s objects"


def test_the_revealing_callers_do_see_the_secrets(world):
    """The grep above finds what it looks for: an owner sees each kind a permission
    may reveal."""
    owner, ids = world.acme, world.acme.ids
    shown = "".join(owner.call(path, {"id": ids[name]}).get_data(as_text=True)
                    for path, name in (("/browser/detail", "window"),
                                       ("/browser/detail", "ssh_window"),
                                       ("/browser/detail", "extraction_window"),
                                       ("/proxy/detail", "pool_proxy")))
    for kind, revealing in REVEALED_BY.items():
        if revealing is not None:
            assert owner.secrets[kind] in shown, kind


def foreign_cases():
    for case in CASES:
        if case.foreign is not None:
            yield pytest.param(case, id=str(case))


@pytest.mark.parametrize("case", list(foreign_cases()))
def test_another_accounts_objects_look_like_nothing(world, case):
    acme, globex = world.acme, world.globex
    request = case.request(globex)
    before = snapshot(globex)
    answer = post(world.client, acme.token, case.path, **request)
    body = answer.get_json()
    assert body["code"] in case.foreign, body
    assert answer.status_code == {0: 200, 211: 400, 404: 404}[body["code"]]
    if body["code"] == 0:  # a filter naming the stranger's group: an empty page
        assert body["data"]["totalNum"] == 0
    assert_nothing_of(globex, answer.get_data(as_text=True))
    assert snapshot(globex) == before


STRANGER_CHUNK = b"only globex has this"
STRANGER_CHUNK_HASH = hashlib.sha256(STRANGER_CHUNK).hexdigest()


def test_another_accounts_profile_chunks_look_like_nothing(world):
    acme, globex = world.acme, world.globex
    stored = globex.call("/browser/profile/chunk", query={"sha256": STRANGER_CHUNK_HASH},
                         raw=STRANGER_CHUNK)
    assert stored.get_json()["code"] == 0
    got = acme.call("/browser/profile/chunk/get", query={"sha256": STRANGER_CHUNK_HASH})
    assert got.status_code == 404 and STRANGER_CHUNK not in got.get_data()
    missing = acme.call("/browser/profile/missing", {"hashes": [STRANGER_CHUNK_HASH]})
    assert missing.get_json()["data"]["missing"] == [STRANGER_CHUNK_HASH]


def snapshot(account: Account) -> str:
    """What the account's owner sees of its named objects."""
    ids = account.ids
    answers = [account.call(path, body).get_json() for path, body in (
        ("/browser/detail", {"id": ids["window"]}), ("/browser/detail", {"id": ids["ssh_window"]}),
        ("/browser/detail", {"id": ids["pool_window"]}), ("/group/detail", {"id": ids["group"]}),
        ("/tag/detail", {"id": ids["tag"]}), ("/proxy/detail", {"id": ids["pool_proxy"]}),
        ("/browser/recycle/list", {}))]
    for answer in answers:
        assert answer["code"] == 0, answer
    return json.dumps(answers, sort_keys=True)


# ----- the worker API v5: HTTP Basic, workers are their account's ------------------

#: v5 routes whose URL is the credential (a stored screenshot's key, as BrowserStack's
#: screenshot URLs): no Basic auth, an unknown key is 404.
V5_CAPABILITY_URLS = {"/5/screenshots/<key>.png"}


def v5_requests(app, worker_id: int):
    """Every v5 route (walked from the url_map): (method, url, the rule), naming
    ``worker_id`` where it takes a worker."""
    for rule in app.url_map.iter_rules():
        if rule.rule == "/5" or rule.rule.startswith("/5/"):
            url = (rule.rule.replace("<worker_id>", str(worker_id))
                   .replace("<fmt>", "json").replace("<key>", "0" * 32))
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, url, rule.rule


def test_v5_needs_the_accounts_key_and_keeps_workers_to_their_account(world):
    from browserfarm.models import Worker
    acme, globex, client = world.acme, world.globex, world.client
    worker = in_db(world.farm, lambda: Worker.create(
        account=acme.account_id, session_id="s" * 32, os="Linux", os_version="bookworm",
        browser="firefox", browser_version="128.0", backend="firefox",
        url="http://a.test/", name="acme-worker"))
    requests = list(v5_requests(client.application, worker.id))
    assert len(requests) >= 10
    for method, url, rule in requests:
        if rule in V5_CAPABILITY_URLS:
            assert client.open(url, method=method).status_code == 404
            continue
        for auth in (None, (acme.v5_username, "0" * 40), (acme.v5_username, globex.v5_key),
                     (acme.v5_username, acme.token)):
            answer = client.open(url, method=method, auth=auth, json={"url": "http://b.test/"})
            assert answer.status_code == 401, (method, url, auth)
        foreign = client.open(url, method=method, auth=(globex.v5_username, globex.v5_key),
                              json={"url": "http://b.test/"})
        if "<worker_id>" in rule:
            assert foreign.status_code == 403, (method, url)
        text = foreign.get_data(as_text=True)
        assert_nothing_of(acme, text)
        assert "acme-worker" not in text and "http://a.test/" not in text
    assert in_db(world.farm, lambda: Worker.get_by_id(worker.id).url) == "http://a.test/"


# ----- hostile input: 211 naming the field, never a 500 ----------------------------

HUGE = "7" * 5000  # more digits than Python converts (json.loads raised ValueError)
DEEP = "[" * 100_000 + "]" * 100_000  # beyond the parser's recursion


@pytest.mark.parametrize("path, raw, field", [
    ("/browser/list", f'{{"page": {HUGE}}}', "page"),
    ("/browser/update", f'{{"name": "x", "config": {{"n": [{HUGE}]}}}}', "config.n[0]"),
    ("/browser/update", f'{{"name": "x", "config": {{"n": -{HUGE}}}}}', "config.n"),
    ("/browser/update", '{"name": "x", "browserFingerPrint": {"seed": NaN}}',
     "browserFingerPrint.seed"),
    ("/browser/update", '{"name": "x", "config": {"a": Infinity}}', "config.a"),
    ("/browser/update", '{"name": "x", "config": {"a": -Infinity}}', "config.a"),
    ("/browser/update", '{"name": "x", "config": {"a": 1e400}}', "config.a"),
    ("/browser/update", '{"name": "x", "cookie": [{"name": "a", "value": NaN}]}',
     "cookie[0].value"),
    ("/browser/update", json.dumps({"name": "x", "cookie": DEEP}), "cookie"),
    ("/browser/update", json.dumps({"name": "x", "cookie": '[{"name": "a", "v": NaN}]'}),
     "cookie"),
    ("/browser/update", json.dumps({"name": "x", "cookie": f'[{{"name": "a", "v": {HUGE}}}]'}),
     "cookie"),
    ("/browser/update", '{"name": "x", "config": {"a": ' + "[" * 500 + "]" * 500 + "}}",
     "config"),
    ("/browser/update", '{"name": "x", "cookie": ' + DEEP + "}", "body"),
    ("/proxy/add", f'{{"proxyType": "socks5", "host": "h.test", "port": {HUGE}}}', "port"),
    # Lone surrogates: not Unicode, so neither the database nor orjson takes them (500).
    ("/browser/update", '{"name": "a\\ud800"}', "name"),
    ("/browser/update", '{"name": "x", "remark": "\\uDFFF"}', "remark"),
    ("/browser/update", '{"name": "x", "config": {"k\\udbff": 1}}', "config"),
    ("/browser/update", '{"name": "x", "browserFingerPrint": {"a": ["\\ud800"]}}',
     "browserFingerPrint.a[0]"),
    ("/browser/update", json.dumps({"name": "x", "cookie": '[{"name": "\\ud800"}]'}),
     "cookie"),
    ("/proxy/add", '{"proxyType": "socks5", "host": "h.test", "port": 1, '
                   '"proxyPassword": "\\ud800"}', "proxyPassword"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_hostile_json_is_211_naming_the_field_and_nothing_is_stored(world, path, raw, field):
    before = world.acme.call("/browser/list", {}).get_json()["data"]["totalNum"]
    answer = post(world.client, world.acme.token, path, raw=raw.encode())
    body = answer.get_json()
    assert (answer.status_code, body["code"], body["data"]["field"]) == (400, 211, field), body
    assert world.acme.call("/browser/list", {}).get_json()["data"]["totalNum"] == before


def test_answers_stay_json_a_strict_parser_reads(world):
    """A NaN stored in a fingerprint made every list answer invalid JSON."""
    for raw in ('{"name": "x", "browserFingerPrint": {"seed": NaN}}',
                '{"name": "x", "config": {"a": Infinity}}'):
        post(world.client, world.acme.token, "/browser/update", raw=raw.encode())
    answer = world.acme.call("/browser/list", {"pageSize": 100}).get_data(as_text=True)
    json.loads(answer, parse_constant=_not_json)


def _not_json(name):
    raise AssertionError(f"{name} in an answer")


def test_v5_refuses_hostile_json_naming_the_field(world):
    auth = (world.acme.v5_username, world.acme.v5_key)
    for raw, field in ((f'{{"os": {HUGE}}}', "os"), ('{"os": NaN}', "os"),
                       ('{"os": "Linux", "browser_version": 1e400}', "browser_version"),
                       ('{"os": "\\ud800"}', "os")):
        answer = world.client.post("/5/worker", data=raw, auth=auth,
                                   content_type="application/json")
        assert answer.status_code == 422, answer.get_json()
        assert answer.get_json()["errors"][0]["field"] == field
    deep = world.client.post("/5/worker", data=DEEP, auth=auth, content_type="application/json")
    assert deep.status_code == 400 and deep.get_json()["errors"] == [
        {"field": "body", "code": "invalid", "message": "not valid JSON"}]


def test_the_local_api_refuses_hostile_json_naming_the_field(agent):  # noqa: F811
    client = create_local_app(agent).test_client()
    token = {"X-Cos-Local-Token": "local-secret"}
    for path in ("/browser/open", "/browser/close", "/browser/detail"):  # the last forwarded
        for raw, field in ((f'{{"id": {HUGE}}}', "id"), ('{"id": NaN}', "id"),
                           ('{"id": 1e400}', "id"), (DEEP, "body"), ('{"id": "\\ud800"}', "id"),
                           ('{"id": 1, "x": ' + "[" * 500 + "]" * 500 + "}", "x")):
            answer = client.post(path, data=raw, headers=token)
            body = answer.get_json()
            assert (answer.status_code, body["code"], body["data"].get("field")) == (
                400, 211, field), (path, raw[:40], body)


def test_a_caller_who_may_not_see_a_proxy_password_cannot_send_it_elsewhere(world):
    """Changing the host, port or type of a stored proxy (a window's or the pool's)
    without giving its password again would send the password to a server the caller
    chooses: refused (211 naming proxyPassword) unless the caller may see it anyway."""
    acme = world.acme
    blind, _ = in_db(world.farm, lambda: create_token(
        world.farm, acme.account_id, "blind", permissions=[
            perm.BROWSER_LIST, perm.BROWSER_UPDATE_SINGLE, perm.PROXY_LIST, perm.PROXY_MANAGE]))
    owner, _ = in_db(world.farm, lambda: create_token(world.farm, acme.account_id, "owner",
                                                      role="owner"))
    acme = Account(acme.name, acme.client, owner, acme.account_id, acme.v5_username,
                   acme.v5_key, acme.secrets)
    window = acme.fresh_window()
    pooled = acme.fresh_pool_proxy()
    for path, ref, password_field in (("/browser/update", {"id": window}, "proxyPassword"),
                                      ("/proxy/update", {"id": pooled}, "proxyPassword")):
        for moved in ({"host": "127.0.0.2"}, {"port": 10}, {"proxyType": "http"}):
            refused = acme.call(path, {**ref, **moved}, token=blind).get_json()
            assert (refused["code"], refused["data"]["field"]) == (211, password_field), refused
        kept = acme.call(path, {**ref, "remark": "only the remark"}, token=blind).get_json()
        assert kept["code"] == 0, kept
        given = acme.call(path, {**ref, "port": 11, password_field: "new-one"},
                          token=blind).get_json()
        assert given["code"] == 0, given
        owner = acme.call(path, {**ref, "port": 12}).get_json()  # may see it: keeps it
        assert owner["code"] == 0, owner
        detail = acme.call("/browser/detail" if path == "/browser/update" else "/proxy/detail",
                           ref).get_json()["data"]
        assert detail["proxyPassword"] == "new-one", detail
