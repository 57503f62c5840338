"""The dashboard's managing pages (windows' forms, recycle bin, groups, tags, proxy
pool) through Flask's test client on a real SQLite farm: what a person sees and what
reaches the database, with the API's own rules and permissions."""
import re

import pytest

from browserfarm.app import create_app
from browserfarm.models import Group, PoolProxy, Tag, Window, WindowTag
from browserfarm.services.accounts import create_account, create_token
from tests.conftest import free_port, in_db, make_farm


@pytest.fixture
def farm(tmp_path, sqlite_url, ip_services):
    farm = make_farm(tmp_path / "data", sqlite_url, ip_check_urls=ip_services.base_urls,
                     proxy_timeout=2.0)
    yield farm
    farm.close()


@pytest.fixture
def account(farm):
    return in_db(farm, lambda: create_account(farm, "acme"))


class Person:
    """A browser signed in to the dashboard with one token: its cookie jar, and the CSRF
    token its pages carry."""

    def __init__(self, farm, token: str):
        self.farm = farm
        self.client = create_app(farm=farm).test_client()
        self.csrf = self._csrf(self.client.get("/signin").get_data(as_text=True))
        signed_in = self.client.post("/signin", data={"token": token,
                                                      "csrf_token": self.csrf})
        assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
        self.csrf = self._csrf(self.get("/groups"))  # the signed-in session's

    @staticmethod
    def _csrf(page: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def get(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    def post(self, path: str, data=None, headers=None, follow=True):
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})},
                                headers=headers or {}, follow_redirects=follow)

    def db(self, fn):
        return in_db(self.farm, fn)


def person(farm, account, role: str) -> Person:
    raw, _ = in_db(farm, lambda: create_token(farm, account.account.id, role, role=role))
    return Person(farm, raw)


@pytest.fixture
def owner(farm, account):
    return Person(farm, account.token)


def text(html: str) -> str:
    """A page's words, without its markup (what a person reads)."""
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")
    return re.sub(r" ([:.,])", r"\1", words)  # "<a>Port</a>: ..." reads "Port: ..."


def buttons(html: str) -> set[str]:
    return {b.strip() for b in re.findall(r"<button[^>]*>([^<]*)</button>", html)}


def _window_count(person) -> int:
    return person.db(lambda: Window.select().count())


# ----- windows: create and edit -----------------------------------------------------

def test_create_with_a_bad_field_names_it_and_stores_nothing(owner):
    page = owner.post("/windows/new", {"name": "shop", "browserFingerPrint.resolution": "99x99",
                                       "proxyMethod": "2", "proxyType": "direct"})
    assert page.status_code == 400
    words = text(page.get_data(as_text=True))
    # The API's own 211 message, next to the field it names, with the form's label.
    assert "Screen resolution: Must look like 1920 x 1080" in words
    assert re.search(r'name="browserFingerPrint.resolution" value="99x99">\s*'
                     r'(<span class="hint">[^<]*</span>\s*)?<p class="field-error"',
                     page.get_data(as_text=True))
    assert 'value="shop"' in page.get_data(as_text=True)  # what was typed is kept
    assert _window_count(owner) == 0
    page = owner.post("/windows/new", {"name": "shop", "proxyMethod": "2",
                                       "proxyType": "socks5", "host": "127.0.0.1",
                                       "port": "70000"})
    assert page.status_code == 400 and "port: Must be greater than or equal to 1 and " \
        "less than or equal to 65535." in text(page.get_data(as_text=True))
    assert _window_count(owner) == 0


def test_create_and_edit_a_window_with_group_tags_proxy_and_fingerprint(account, owner):
    group = owner.db(lambda: Group.create(account=account.account.id, name="EU"))
    tag = owner.db(lambda: Tag.create(account=account.account.id, name="ads"))
    page = owner.post("/windows/new", {
        "name": "shop", "groupId": str(group.id), "tagIds": [str(tag.id)], "remark": "r",
        "proxyMethod": "2", "proxyType": "socks5", "host": "127.0.0.1", "port": "1080",
        "proxyUserName": "u", "proxyPassword": "secret",
        "browserFingerPrint.resolution": "1280 x 800", "browserFingerPrint.userAgent": ""})
    assert page.status_code == 200 and "Window 'shop' created." in text(page.get_data(as_text=True))
    window = owner.db(lambda: Window.get())
    assert (window.name, window.group_id, window.host, window.port) == ("shop", group.id,
                                                                        "127.0.0.1", 1080)
    assert window.fingerprint["resolution"] == "1280 x 800"
    assert window.fingerprint["userAgent"]  # blank: drawn for the window
    drawn_agent = window.fingerprint["userAgent"]

    form = owner.get(f"/windows/{window.id}/edit")
    assert 'value="secret"' in form  # the owner may see proxy passwords
    values = dict(re.findall(r'name="(browserFingerPrint\.\w+)" value="([^"]*)"', form))
    page = owner.post(f"/windows/{window.id}/edit", {
        **values, "name": "shop 2", "groupId": "0", "proxyMethod": "2",
        "proxyType": "socks5", "host": "127.0.0.1", "port": "1080", "proxyUserName": "u",
        "proxyPassword": "secret", "browserFingerPrint.resolution": "1920 x 1080"})
    assert "Window 'shop 2' saved." in text(page.get_data(as_text=True))
    window = owner.db(lambda: Window.get())
    assert (window.name, window.group_id, window.fingerprint["resolution"]) == (
        "shop 2", None, "1920 x 1080")
    assert window.fingerprint["userAgent"] == drawn_agent  # untouched fields stay
    assert owner.db(lambda: WindowTag.select().count()) == 0  # no tag ticked: none

    page = owner.post(f"/windows/{window.id}/edit", {"name": "x", "proxyMethod": "2",
                                                      "proxyType": "socks5", "host": "h",
                                                      "port": "1", "groupId": "999"})
    assert page.status_code == 400
    assert "Group: group 999 does not exist" in text(page.get_data(as_text=True))
    assert owner.db(lambda: Window.get().name) == "shop 2"  # nothing stored


# ----- read-only members ------------------------------------------------------------

def test_a_read_only_member_sees_no_edit_buttons_and_a_forged_post_is_refused(farm, account,
                                                                             owner):
    owner.post("/windows/new", {"name": "shop", "proxyMethod": "2", "proxyType": "direct"})
    owner.post("/groups/add", {"groupName": "EU"})
    window_id = owner.db(lambda: Window.get().id)
    reader = person(farm, account, "read-only")
    for path in ("/groups", "/tags", "/proxies", "/windows/recycle"):
        page = reader.get(path)
        assert buttons(page) <= {"Sign out", "Search"}, path
        assert "/edit" not in page, path
    assert "EU" in reader.get("/groups")
    reader.get(f"/windows/{window_id}/edit", status=403)
    reader.get("/windows/new", status=403)
    # Forged posts, with a valid CSRF token: the services refuse them.
    for path, data in ((f"/windows/{window_id}/delete", {}),
                       (f"/windows/{window_id}/edit", {"name": "mine"}),
                       ("/groups/add", {"groupName": "mine"}),
                       ("/tags/add", {"name": "mine"}),
                       ("/proxies/add", {"proxyType": "socks5", "host": "127.0.0.1",
                                         "port": "1080"})):
        refused = reader.post(path, data)
        assert refused.status_code == 403, path
        assert "Permission denied" in text(refused.get_data(as_text=True))
    window = owner.db(lambda: Window.get())
    assert (window.name, window.deleted_at) == ("shop", None)
    assert owner.db(lambda: (Group.select().count(), Tag.select().count(),
                             PoolProxy.select().count())) == (1, 0, 0)


# ----- delete, recycle bin, restore -------------------------------------------------

def test_delete_restore_and_delete_for_good(farm, account, owner):
    owner.post("/windows/new", {"name": "shop", "proxyMethod": "2", "proxyType": "direct"})
    window_id = owner.db(lambda: Window.get().id)
    page = owner.post(f"/windows/{window_id}/delete")
    assert "Window 'shop' moved to the recycle bin" in text(page.get_data(as_text=True))
    assert owner.db(lambda: Window.get().deleted_at) is not None
    member = person(farm, account, "member")
    bin_page = member.get("/windows/recycle")
    assert "shop" in bin_page and "Restore the ticked windows" in bin_page
    assert "Delete the ticked windows for good" not in buttons(bin_page)  # not a member
    assert member.post("/windows/recycle/delete", {"ids": str(window_id)}).status_code == 403
    page = member.post("/windows/recycle/restore", {"ids": str(window_id)})
    assert "1 window restored." in text(page.get_data(as_text=True))
    assert owner.db(lambda: Window.get().deleted_at) is None

    owner.post(f"/windows/{window_id}/delete")
    assert "Tick the windows first." in text(owner.post("/windows/recycle/delete").get_data(
        as_text=True))
    page = owner.post("/windows/recycle/delete", {"ids": str(window_id)})
    assert "1 window deleted for good." in text(page.get_data(as_text=True))
    assert _window_count(owner) == 0


# ----- groups and tags --------------------------------------------------------------

@pytest.mark.parametrize("kind,name_field", [("groups", "groupName"), ("tags", "name")])
def test_groups_and_tags_create_rename_delete(owner, kind, name_field):
    model = Group if kind == "groups" else Tag
    page = owner.post(f"/{kind}/add", {name_field: "EU"})
    assert "'EU' created." in text(page.get_data(as_text=True))
    item_id = owner.db(lambda: model.get().id)
    page = owner.post(f"/{kind}/add", {name_field: "EU"})
    assert page.status_code == 400
    assert f"Name: a {kind[:-1]} named 'EU' exists" in text(page.get_data(as_text=True))
    page = owner.post(f"/{kind}/add", {name_field: ""})
    assert page.status_code == 400 and "Name: Length must be between 1 and 100." \
        in text(page.get_data(as_text=True))
    page = owner.post(f"/{kind}/{item_id}/edit", {name_field: "Europe"})
    assert "saved as 'Europe'." in text(page.get_data(as_text=True))
    assert owner.db(lambda: model.get().name) == "Europe"
    page = owner.post(f"/{kind}/{item_id}/delete")
    assert f"{kind[:-1].capitalize()} 'Europe' deleted" in text(page.get_data(as_text=True))
    assert owner.db(lambda: model.select().count()) == 0


# ----- the proxy pool ---------------------------------------------------------------

def test_proxy_pool_add_check_edit_delete(owner, microsocks):
    upstream = microsocks("u", "p")
    page = owner.post("/proxies/add", {"proxyType": "socks5", "host": upstream.host,
                                       "port": str(upstream.port), "proxyUserName": "u",
                                       "proxyPassword": "p", "remark": "berlin"})
    assert "added." in text(page.get_data(as_text=True))
    proxy_id = owner.db(lambda: PoolProxy.get().id)
    page = owner.post("/proxies/add", {"proxyType": "socks5", "host": "127.0.0.1",
                                       "port": "0"})
    assert page.status_code == 400 and "Port: Must be greater than or equal to 1" in text(
        page.get_data(as_text=True))

    # The check button (htmx): the exit IP and country, in words, for the row.
    checked = owner.post(f"/proxies/{proxy_id}/check", headers={"HX-Request": "true"})
    assert checked.status_code == 200
    assert text(checked.get_data(as_text=True)).strip().startswith(
        "Exit IP 127.0.0.1 in Berlin, Germany (DE); answered in")
    assert upstream.connections() == 1
    assert "Exit IP 127.0.0.1 (DE)" in text(owner.get("/proxies"))  # kept on the proxy

    page = owner.post(f"/proxies/{proxy_id}/edit", {"proxyType": "socks5",
                                                    "host": upstream.host,
                                                    "port": str(upstream.port),
                                                    "proxyUserName": "u", "remark": "b2"})
    assert "saved." in text(page.get_data(as_text=True))
    item = owner.db(lambda: PoolProxy.get())
    assert item.remark == "b2"
    assert owner.farm.cipher.decrypt(item.password_enc) == "p"  # blank kept it
    page = owner.post(f"/proxies/{proxy_id}/delete")
    assert f"Proxy socks5://{upstream.host}:{upstream.port} deleted." in text(
        page.get_data(as_text=True))


def test_a_failed_check_says_why(owner):
    owner.post("/proxies/add", {"proxyType": "socks5", "host": "127.0.0.1",
                                "port": str(free_port())})
    proxy_id = owner.db(lambda: PoolProxy.get().id)
    checked = owner.post(f"/proxies/{proxy_id}/check", headers={"HX-Request": "true"})
    assert text(checked.get_data(as_text=True)).strip().startswith(
        "Not reachable (connect_refused):")


def test_a_window_bound_to_a_pool_proxy_and_one_set_by_the_api_kept(owner):
    owner.post("/proxies/add", {"proxyType": "socks5", "host": "127.0.0.1", "port": "1080"})
    proxy_id = owner.db(lambda: PoolProxy.get().id)
    page = owner.post("/windows/new", {"name": "pooled", "proxyMethod": "4",
                                       "proxyId": str(proxy_id), "proxyType": "direct"})
    assert "Window 'pooled' created." in text(page.get_data(as_text=True))
    window = owner.db(lambda: Window.get())
    assert (window.proxy_method, window.proxy_id) == (4, proxy_id)
    page = owner.post("/windows/new", {"name": "x", "proxyMethod": "4", "proxyId": ""})
    assert page.status_code == 400 and "Pool proxy: is required for a proxy from the pool" in text(
        page.get_data(as_text=True))

    # A proxy extracted from a URL (set through the API): the form keeps it.
    owner.db(lambda: Window.update(proxy_method=3, dynamic_ip_url="http://127.0.0.1:9/get")
             .execute())
    form = owner.get(f"/windows/{window.id}/edit")
    assert re.search(r'<option value="keep"\s+selected>Keep as set through the API', form)
    page = owner.post(f"/windows/{window.id}/edit", {"name": "kept", "proxyMethod": "keep"})
    assert "Window 'kept' saved." in text(page.get_data(as_text=True))
    window = owner.db(lambda: Window.get())
    assert (window.name, window.proxy_method, window.dynamic_ip_url) == (
        "kept", 3, "http://127.0.0.1:9/get")
