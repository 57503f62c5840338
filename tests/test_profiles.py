"""Profile archives (``/browser/profile/*`` and the agent's side): chunks belong to
one account, each account has a quota, chunks no archive names are collected, and a
manifest names only the profile's data files, in bounds — checked by the cloud when
saved and by the desktop before it writes anything."""
import hashlib
import json
import threading
import time
from datetime import timedelta

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from browserfarm import profile_manifest
from browserfarm.agent import Login, profile_sync
from browserfarm.agent.cloud import Cloud
from browserfarm.app import create_app
from browserfarm.db import upgrade
from browserfarm.errors import InvalidInput, UpstreamError
from browserfarm.models import ProfileArchive, ProfileChunk, Window, utcnow
from browserfarm.services.accounts import create_account
from browserfarm.services.profiles import GC_GRACE
from browserfarm.services.windows import purge_recycle_bin
from tests.conftest import account_owner, in_db, make_farm


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(caller, data: bytes):
    return caller(f"/browser/profile/chunk?sha256={sha(data)}", raw=data)


def get(caller, digest: str):
    response = caller.client.post(f"/browser/profile/chunk/get?sha256={digest}",
                                  headers={"Authorization": f"Bearer {caller.token}"})
    return response.status_code, response.data


def missing(caller, *chunks: bytes) -> list[str]:
    answer = caller("/browser/profile/missing", {"hashes": [sha(c) for c in chunks]})
    assert answer.code == 0, answer.body
    return answer.data["missing"]


def commit(caller, window, **files: bytes):
    """An archive of ``files`` (name -> one chunk each; ``_`` for ``/``)."""
    manifest = {name.replace("_", "/").replace("/sqlite", ".sqlite"):
                {"size": len(data), "chunks": [sha(data)]} for name, data in files.items()}
    return caller("/browser/profile/commit", {"id": window["id"], "manifest": manifest})


def age(farm, *chunks: bytes):
    """As if these chunks were last touched longer ago than the grace period."""
    in_db(farm, lambda: ProfileChunk.update(touched_at=utcnow() - GC_GRACE * 2).where(
        ProfileChunk.sha256.in_([sha(c) for c in chunks])).execute())


# ----- chunks belong to one account ---------------------------------------------------

def test_an_account_neither_reads_nor_learns_of_another_accounts_chunks(owner, stranger):
    secret = b"session=alice-secret"
    assert put(owner, secret).code == 0
    assert missing(owner, secret) == []
    # The stranger knows the hash: it is not told the chunk exists, nor given it.
    assert missing(stranger, secret) == [sha(secret)]
    assert get(stranger, sha(secret))[0] == 404
    window = stranger("/browser/update", {"name": "theirs"}).data
    refused = commit(stranger, window, cookies_sqlite=secret)
    assert (refused.status, refused.code, refused.data["field"]) == (400, 211, "manifest")
    # Its own copy of the same bytes is its own.
    assert put(stranger, secret).code == 0
    assert missing(stranger, secret) == []
    assert get(stranger, sha(secret)) == (200, secret)
    assert get(owner, sha(secret)) == (200, secret)


def test_chunks_stored_before_accounts_had_their_own_stay_with_the_accounts_naming_them(
        tmp_path, sqlite_url):
    """Migration 011: the shared chunk an archive named stays readable by its account,
    and by no other."""
    from peewee_migrate import Router
    from browserfarm.db import migrations_dir
    from browserfarm.farm import Farm
    from browserfarm.config import load_settings
    farm = Farm.assemble(load_settings({"data_dir": tmp_path / "data",
                                        "database_url": sqlite_url}, environ={}))
    router = Router(farm.db, migrate_dir=str(migrations_dir()), ignore=["basemodel"])
    before = [name for name in router.todo if name < "011_profile_chunks"]
    with farm.db.connection_context():
        router.run(before[-1])
    client = create_app(farm=farm).test_client()
    try:
        owner, stranger = (account_owner(farm, client, n) for n in ("acme", "globex"))
        window = {"id": _window_before_012(farm, owner.account.id)}
        old = b"cookies from before"
        path = farm.settings.data.shared_profile_chunk(sha(old))
        path.parent.mkdir(parents=True)
        path.write_bytes(old)
        manifest = {"cookies.sqlite": {"size": len(old), "chunks": [sha(old)]}}
        farm.db.execute_sql('INSERT INTO "profile_archive" ("window_id", "manifest", "size", '
                            '"agent", "created_at") VALUES (?, ?, ?, ?, ?)',
                            (window["id"], json.dumps(manifest), len(old), "", utcnow()))
        assert "011_profile_chunks" in upgrade(farm.db)
        assert missing(owner, old) == [] and get(owner, sha(old)) == (200, old)
        assert missing(stranger, old) == [sha(old)] and get(stranger, sha(old))[0] == 404
    finally:
        farm.close()


def _window_before_012(farm, account_id: int) -> int:
    """A window row in the schema before migration 012 (today's model has more columns):
    every NOT NULL column without a default gets an empty value of its type."""
    empty = {"INTEGER": 0, "TEXT": "", "DATETIME": utcnow()}
    columns = {row[1]: empty.get(row[2], "")
               for row in farm.db.execute_sql('PRAGMA table_info("window")').fetchall()
               if row[3] and row[4] is None and not row[5]}
    columns |= {"account_id": account_id, "uuid": "0b9e9a4e-6f5e-4c53-9d53-8f0e1f1a2b3c",
                "name": "old", "fingerprint": "{}", "open_status": "closed"}
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = farm.db.execute_sql(f'INSERT INTO "window" ({names}) VALUES '
                                 f'({", ".join("?" * len(columns))})', list(columns.values()))
    return cursor.lastrowid


# ----- the quota ----------------------------------------------------------------------

def test_an_account_stores_no_more_than_its_quota(tmp_path, database_url):
    farm = make_farm(tmp_path / "quota", database_url, profile_quota_bytes=10)
    try:
        client = create_app(farm=farm).test_client()
        owner, other = (account_owner(farm, client, n) for n in ("acme", "globex"))
        assert put(owner, b"123456").code == 0
        assert put(owner, b"123456").code == 0  # stored already: costs nothing
        full = put(owner, b"abcdef")
        assert (full.status, full.code, full.data["field"]) == (400, 211, "body")
        assert "quota" in full.msg and missing(owner, b"abcdef") == [sha(b"abcdef")]
        assert put(other, b"abcdef").code == 0  # another account has its own quota
        # A chunk no archive names, not touched for a while, makes room.
        age(farm, b"123456")
        assert put(owner, b"abcdef").code == 0
        assert missing(owner, b"123456") == [sha(b"123456")]
    finally:
        farm.close()


# ----- garbage collection -------------------------------------------------------------

def test_chunks_no_archive_names_are_collected_after_a_grace_period(farm, owner, stranger):
    window = owner("/browser/update", {"name": "w"}).data
    a, b, c, fresh, asked = b"chunk a", b"chunk b", b"chunk c", b"just sent", b"asked for"
    for chunk in (a, b, c, fresh, asked, b"theirs"):
        assert put(owner, chunk).code == 0
    assert put(stranger, b"theirs").code == 0
    assert commit(owner, window, cookies_sqlite=a, places_sqlite=b).code == 0
    age(farm, a, b, c, asked, b"theirs")
    # An agent was told this one is stored: its commit will name it.
    assert missing(owner, asked) == []
    replaced = commit(owner, window, places_sqlite=b, favicons_sqlite=c)
    assert replaced.code == 0
    archives = in_db(farm, lambda: ProfileArchive.select().join(Window).where(
        Window.id == window["id"]).count())
    assert archives == 1  # the older archive was replaced
    data = farm.settings.data
    assert missing(owner, a, b, c, fresh, asked) == [sha(a)]
    assert not data.profile_chunk(owner.account.id, sha(a)).exists()
    assert data.profile_chunk(owner.account.id, sha(b)).exists()
    assert get(stranger, sha(b"theirs")) == (200, b"theirs")  # not the owner's to collect


@pytest.mark.parametrize("how", ["delete", "purge"])
def test_a_permanently_deleted_windows_chunks_are_collected(farm, owner, how):
    kept, gone = owner("/browser/update", {"name": "kept"}).data, \
        owner("/browser/update", {"name": "gone"}).data
    for chunk in (b"kept", b"gone"):
        assert put(owner, chunk).code == 0
    assert commit(owner, kept, cookies_sqlite=b"kept").code == 0
    assert commit(owner, gone, cookies_sqlite=b"gone").code == 0
    age(farm, b"kept", b"gone")
    assert owner("/browser/delete", {"id": gone["id"]}).code == 0  # to the recycle bin
    assert missing(owner, b"gone") == []  # kept there: it may be restored
    age(farm, b"gone")
    if how == "delete":
        assert owner("/browser/recycle/delete", {"ids": [gone["id"]]}).code == 0
    else:
        in_db(farm, lambda: Window.update(deleted_at=utcnow() - timedelta(days=31)).where(
            Window.id == gone["id"]).execute())
        assert in_db(farm, lambda: purge_recycle_bin(farm)) == 1
    assert missing(owner, b"kept", b"gone") == [sha(b"gone")]
    assert not farm.settings.data.profile_chunk(owner.account.id, sha(b"gone")).exists()


@pytest.mark.parametrize("how", ["delete", "purge"])
def test_a_permanent_delete_is_done_even_when_collecting_fails(farm, owner, how):
    """The windows are gone once the delete committed: a collection failing on its
    files (here the account's chunk lock cannot be opened) is logged, not a 500."""
    window = owner("/browser/update", {"name": "gone"}).data
    farm.settings.data.account_chunks_lock(owner.account.id).mkdir(parents=True)
    assert owner("/browser/delete", {"id": window["id"]}).code == 0
    if how == "delete":
        answer = owner("/browser/recycle/delete", {"ids": [window["id"]]})
        assert answer.code == 0, answer.body
    else:
        in_db(farm, lambda: Window.update(deleted_at=utcnow() - timedelta(days=31)).where(
            Window.id == window["id"]).execute())
        assert in_db(farm, lambda: purge_recycle_bin(farm)) == 1
    assert not in_db(farm, lambda: Window.select().where(Window.id == window["id"]).exists())


# ----- what a manifest may name -------------------------------------------------------

GOOD = {"size": 5, "chunks": [sha(b"hello")]}
PLANTED = ["user.js", "prefs.js", "extensions/evil@x.xpi", "extensions.json",
           "chrome/userChrome.css", "distribution/policies.json", "pkcs11.txt",
           "handlers.json", "cert9.db", "storage/default/site/evil.xpi",
           "storage/permanent/chrome/idb/x.sqlite", "../cookies.sqlite",
           "/etc/cron.d/x", "storage/default/../../user.js", "storage//default/x",
           "storage\\default\\x", "", "storage/default/" + "d/" * 20 + "f",
           "storage/default/" + "x" * 1100,
           # Where names ignore case or Windows reads them otherwise: chrome/, user.js.
           "storage/permanent/Chrome/idb/x.sqlite", "Storage/Permanent/CHROME/x",
           "user.js.", "user.js ", "storage/default/site./x", "storage/default/a:b",
           "cookies.sqlite:stream"]


@pytest.mark.parametrize("name", PLANTED)
def test_the_cloud_refuses_a_manifest_naming_other_than_data_files(owner, name):
    assert put(owner, b"hello").code == 0
    window = owner("/browser/update", {"name": "w"}).data
    answer = owner("/browser/profile/commit", {"id": window["id"],
                                               "manifest": {name: GOOD}})
    assert (answer.status, answer.code) == (400, 211), answer.body
    assert answer.data["field"] == f"manifest.{name}", answer.body


@pytest.mark.parametrize("names", [
    ("storage/default/a", "storage/default/a/b"),
    ("storage/default/a/b", "storage/default/A"),
    ("cookies.sqlite", "Cookies.sqlite"),
])
def test_the_cloud_refuses_a_file_where_another_is_or_has_its_folder(owner, names):
    assert put(owner, b"hello").code == 0
    window = owner("/browser/update", {"name": "w"}).data
    answer = owner("/browser/profile/commit", {"id": window["id"],
                                               "manifest": dict.fromkeys(names, GOOD)})
    assert (answer.status, answer.code) == (400, 211), answer.body
    assert answer.data["field"] in {f"manifest.{name}" for name in names}, answer.body


def test_the_cloud_takes_the_manifest_rules_from_no_agent_module():
    """The cloud does not import the agent: the rules live in profile_manifest."""
    import subprocess
    import sys
    code = ("import sys, browserfarm.services.profiles, browserfarm.api.profiles; "
            "print(sorted(m for m in sys.modules if m.startswith('browserfarm.agent')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("size", ["[]", '"x"', "1e400", str(2**63), "-1", "true", "1.5",
                                  "null", '{"a": 1}'])
def test_a_manifest_with_a_hostile_size_is_code_211_naming_it(client, owner, size):
    assert put(owner, b"hello").code == 0
    window = owner("/browser/update", {"name": "w"}).data
    raw = ('{"id": %d, "manifest": {"cookies.sqlite": {"size": %s, "chunks": ["%s"]}}}'
           % (window["id"], size, sha(b"hello")))
    response = client.post("/browser/profile/commit", data=raw, headers={
        "Authorization": f"Bearer {owner.token}", "Content-Type": "application/json"})
    body = response.get_json()
    assert (response.status_code, body["code"]) == (400, 211), body
    assert body["data"]["field"].startswith("manifest.cookies.sqlite"), body


def test_the_cloud_bounds_what_a_manifest_may_make_a_desktop_write(owner):
    window = owner("/browser/update", {"name": "w"}).data
    many = {f"storage/default/s/f{i}": {"size": 0, "chunks": []}
            for i in range(profile_manifest.MAX_FILES + 1)}
    huge_file = {"size": 2**31 - 1, "chunks": [sha(b"x")] * 512}
    huge = {f"storage/default/s/f{i}": huge_file for i in range(5)}
    for manifest in (many, huge):
        answer = owner("/browser/profile/commit", {"id": window["id"], "manifest": manifest})
        assert (answer.code, answer.data["field"]) == (211, "manifest"), answer.msg


def test_the_agent_sends_only_data_files_and_the_cloud_takes_them(tmp_path):
    profile = tmp_path / "profile"
    for name in ("cookies.sqlite", "cookies.sqlite-wal", "places.sqlite", "key4.db",
                 "logins.json", "sessionstore.jsonlz4", "storage/ls-archive.sqlite",
                 "storage/default/https+++shop.test/idb/1.sqlite",
                 "storage/default/https+++shop.test/ls/data.sqlite",
                 "user.js", "prefs.js", "extensions/a@b.xpi", "extensions.json",
                 "chrome/userChrome.css", "pkcs11.txt", "cache2/entries/AB",
                 "storage/permanent/chrome/idb/x.sqlite", "storage/temporary/x", "lock",
                 "storage/default/https+++shop.test/x.tmp"):
        (profile / name).parent.mkdir(parents=True, exist_ok=True)
        (profile / name).write_bytes(name.encode())
    sent = [p.as_posix() for p in profile_sync.profile_files(profile)]
    assert sent == ["cookies.sqlite", "cookies.sqlite-wal", "key4.db", "logins.json",
                    "places.sqlite", "sessionstore.jsonlz4", "storage/ls-archive.sqlite",
                    "storage/default/https+++shop.test/idb/1.sqlite",
                    "storage/default/https+++shop.test/ls/data.sqlite"]
    manifest, _ = profile_sync.manifest_of(profile)
    assert profile_manifest.check_manifest(manifest) == manifest
    with pytest.raises(InvalidInput):
        profile_manifest.check_manifest(manifest | {"user.js": {"size": 0, "chunks": []}})


# ----- the desktop does not trust the cloud -------------------------------------------

@pytest.fixture
def served(tmp_path, sqlite_url):
    """The cloud API on a real HTTP server; its farm and an owner's token."""
    farm = make_farm(tmp_path / "cloud", sqlite_url)
    server = make_server("127.0.0.1", 0, create_app(farm=farm), threaded=True)
    # a short poll: shutdown() waits for it at each test's end (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    owner = in_db(farm, lambda: create_account(farm, "acme"))
    yield farm, f"http://127.0.0.1:{server.server_port}", owner.token
    server.shutdown()
    thread.join(10)
    farm.close()


@pytest.mark.parametrize("forged", [
    {"../outside": {"size": 5, "chunks": [sha(b"hello")]}},
    {"storage/default/s:x": {"size": 5, "chunks": [sha(b"hello")]}},
    {"storage/default/a": {"size": 5, "chunks": [sha(b"hello")]},  # a file's folder
     "storage/default/a/b": {"size": 5, "chunks": [sha(b"hello")]}},
    {"COOKIES.SQLITE": {"size": 5, "chunks": [sha(b"hello")]}},
    {"places.sqlite": {"size": -1, "chunks": []}},
    {"places.sqlite": {"size": 1, "chunks": [sha(b"hello")]}},  # more bytes than said
])
def test_the_desktop_refuses_a_forged_manifest_before_writing_anything(
        tmp_path, served, forged):
    farm, url, token = served
    with Cloud(Login(server=url, token=token)) as cloud:
        window = cloud.call("/browser/update", {"name": "forged"})
        profile_sync.push(cloud, window["uuid"], _profile(tmp_path), "desk")
        assert cloud.call("/browser/profile/missing", {"hashes": [sha(b"hello")]}) == {
            "missing": []}
        # Someone with the database's hands (not the API, which refuses it) plants it.
        archive = in_db(farm, lambda: ProfileArchive.select().first())
        in_db(farm, lambda: ProfileArchive.update(
            manifest={"cookies.sqlite": archive.manifest["cookies.sqlite"], **forged}
        ).execute())
        restored = tmp_path / "restored"
        restored.mkdir()
        with pytest.raises((UpstreamError, ValueError)):
            profile_sync.pull(cloud, window["uuid"], restored)
        assert not (tmp_path / "restored.part").exists()
        assert list(restored.iterdir()) == [], "something was written"


def test_an_archive_from_before_the_allow_list_restores_its_data_files(tmp_path, served):
    """Archives saved before manifests named data files only may name prefs.js,
    extensions...: the desktop restores the data files and leaves those out."""
    farm, url, token = served
    with Cloud(Login(server=url, token=token)) as cloud:
        window = cloud.call("/browser/update", {"name": "old"})
        profile_sync.push(cloud, window["uuid"], _profile(tmp_path), "desk")
        archive = in_db(farm, lambda: ProfileArchive.select().first())
        hello = archive.manifest["cookies.sqlite"]
        old = {**archive.manifest, "prefs.js": hello, "user.js": hello,
               "extensions/evil@x.xpi": hello, "storage/permanent/Chrome/idb/x": hello}
        in_db(farm, lambda: ProfileArchive.update(manifest=old).execute())
        restored = tmp_path / "restored"
        restored.mkdir()
        assert profile_sync.pull(cloud, window["uuid"], restored)
        assert (restored / "cookies.sqlite").read_bytes() == b"hello"
        assert (restored / "storage/default/site/ls/data.sqlite").read_bytes() == b"x" * 9
        written = {p.relative_to(restored).as_posix() for p in restored.rglob("*")
                   if p.is_file()}
        assert written == {"cookies.sqlite", "storage/default/site/ls/data.sqlite"}


def test_the_desktop_reads_no_chunk_larger_than_a_chunk(tmp_path):
    """A cloud answering more than CHUNK_BYTES for a chunk is refused as it streams."""
    big = b"x" * (profile_manifest.CHUNK_BYTES + 1)
    server = make_server("127.0.0.1", 0, lambda env, start: Response(big)(env, start),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Cloud(Login(server=f"http://127.0.0.1:{server.server_port}", token="t")) as cloud:
            with pytest.raises(UpstreamError, match="more than"):
                cloud.receive_bytes("/browser/profile/chunk/get", {"sha256": sha(big)},
                                    profile_manifest.CHUNK_BYTES)
            # Within the limit, the bytes as they came.
            assert cloud.receive_bytes("/x", {}, len(big)) == big
    finally:
        server.shutdown()
        thread.join(10)


def test_a_chunk_sent_a_byte_a_second_ends_by_the_deadline():
    """Streaming a chunk keeps the cloud client's one deadline."""
    def slowly(env, start):
        start("200 OK", [("Content-Type", "application/octet-stream")])
        for _ in range(20):
            yield b"x"
            time.sleep(1)

    server = make_server("127.0.0.1", 0, slowly, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Cloud(Login(server=f"http://127.0.0.1:{server.server_port}", token="t"),
                   timeout=2) as cloud:
            started = time.monotonic()
            with pytest.raises(UpstreamError, match="unreachable"):
                cloud.receive_bytes("/chunk", {}, profile_manifest.CHUNK_BYTES)
            assert time.monotonic() - started < 4
    finally:
        server.shutdown()
        thread.join(30)


def test_the_desktop_restores_what_it_sent(tmp_path, served):
    _, url, token = served
    with Cloud(Login(server=url, token=token)) as cloud:
        window = cloud.call("/browser/update", {"name": "roundtrip"})
        profile_sync.push(cloud, window["uuid"], _profile(tmp_path), "desk")
        restored = tmp_path / "restored"
        restored.mkdir()
        assert profile_sync.pull(cloud, window["uuid"], restored)
        assert (restored / "cookies.sqlite").read_bytes() == b"hello"
        assert (restored / "storage/default/site/ls/data.sqlite").read_bytes() == b"x" * 9
        assert not (restored / "user.js").exists()


def _profile(tmp_path):
    profile = tmp_path / "profile"
    (profile / "storage/default/site/ls").mkdir(parents=True)
    (profile / "cookies.sqlite").write_bytes(b"hello")
    (profile / "storage/default/site/ls/data.sqlite").write_bytes(b"x" * 9)
    (profile / "user.js").write_text('user_pref("a", 1);')
    return profile
