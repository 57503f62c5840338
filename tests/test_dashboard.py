"""The dashboard with Flask's test client on a real SQLite farm: sign-in, the session
cookie, CSRF, permissions (a read-only member sees and cannot change; secrets only for
who may reveal them), a revoked token's session, and the windows list over many
windows. No browser: the pages are plain HTML forms that work without JS."""
from __future__ import annotations

import re
import time

import pytest

from bench import prepare_farm
from browserfarm.app import create_app
from browserfarm.models import Window
from browserfarm.permissions import ALL, Caller
from browserfarm.services.accounts import create_token, revoke_token
from browserfarm.services.windows import WindowService
from tests.conftest import in_db

WINDOWS = 300  # prepare_farm: names shop-00001.., 5 groups and 5 tags round robin


@pytest.fixture
def fixture(tmp_path):
    fixture = prepare_farm(tmp_path, WINDOWS)
    yield fixture
    fixture.farm.close()


@pytest.fixture
def farm(fixture):
    return fixture.farm


@pytest.fixture
def read_only(farm, fixture):
    raw, _ = in_db(farm, lambda: create_token(farm, _account(farm), "viewer",
                                              role="read-only"))
    return raw


def _account(farm) -> int:
    return in_db(farm, lambda: Window.select(Window.account).first().account_id)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, token: str):
    page = client.get("/signin").get_data(as_text=True)
    return client.post("/signin", data={"csrf_token": csrf_of(page), "token": token})


def page_of(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    return answer.get_data(as_text=True)


def rows_of(html: str) -> list[str]:
    """The window names the list shows, in order."""
    return re.findall(r'<a href="/windows/\d+">([^<]+)</a>', html)


# ----- sign-in and the session -------------------------------------------------------

def test_a_person_not_signed_in_gets_the_sign_in_page_with_one_token_field(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin")
    html = page_of(client, answer.headers["Location"])
    form = re.search(r"<form[^>]*>(.*?)</form>", html, re.S).group(1)
    visible = [i for i in re.findall(r"<input[^>]*>", form) if 'type="hidden"' not in i]
    assert len(visible) == 1 and 'name="token"' in visible[0]
    assert re.search(r'<button type="submit">Sign in</button>', form)
    assert 'name="csrf_token"' in form
    # Pages need the session; assets and the API stay as they were.
    assert client.get("/windows").status_code == 302
    assert client.get("/assets/npm/htmx/htmx.min.js").status_code == 200
    assert client.get("/assets/dashboard/dashboard.css").status_code == 200
    assert client.post("/browser/list").get_json()["code"] == 401
    assert client.get("/no/such/api").get_json() == {"code": 404, "msg": "API not found",
                                                     "data": {}}


def test_a_bad_token_is_refused_in_words(client):
    answer = sign_in(client, "bf_not-a-token")
    assert answer.status_code == 401
    assert "This token is not valid" in answer.get_data(as_text=True)
    assert client.get("/windows").status_code == 302  # still not signed in


def test_the_session_cookie_is_httponly_lax_expiring_and_holds_no_token(app, fixture):
    client = app.test_client()
    answer = sign_in(client, fixture.token)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # plain http (loopback): the browser would drop it
    value = cookie.split(";")[0].split("=", 1)[1]
    stored = app.session_interface.get_signing_serializer(app).loads(value)
    assert set(stored) == {"key", "_flashes", "_permanent"}  # a server-side session's key
    assert fixture.token not in str(stored)
    secure = app.test_client()
    page = secure.get("/signin", base_url="https://farm.test").get_data(as_text=True)
    answer = secure.post("/signin", base_url="https://farm.test",
                         data={"csrf_token": csrf_of(page), "token": fixture.token})
    assert "; Secure" in answer.headers["Set-Cookie"]


def test_the_session_key_is_the_farms_own_secret(app, farm):
    assert app.secret_key == farm.cipher.derive("dashboard session")
    assert len(app.secret_key) == 32


def test_a_forged_form_is_refused(client, fixture):
    # Cross-site: no CSRF token (the session cookie alone goes with SameSite=Lax
    # top-level posts, which is what a forged form sends).
    assert client.post("/signin", data={"token": fixture.token}).status_code == 400
    sign_in(client, fixture.token)
    answer = client.post("/signout")
    assert answer.status_code == 400
    words = " ".join(answer.get_data(as_text=True).split())
    assert "did not come from a page of this dashboard: The CSRF token is missing." in words
    assert client.post("/signout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/windows").status_code == 200  # still signed in
    # The page's own token (as a form field or htmx's header) goes through.
    token = csrf_of(page_of(client, "/windows"))
    assert client.post("/signout", headers={"X-CSRFToken": token}).status_code == 302
    assert client.get("/windows").status_code == 302


def test_sign_out_ends_the_session(client, fixture):
    sign_in(client, fixture.token)
    html = page_of(client, "/windows")
    answer = client.post("/signout", data={"csrf_token": csrf_of(html)})
    assert answer.headers["Location"] == "/signin"
    assert "Signed out." in page_of(client, "/signin")
    assert client.get("/windows").status_code == 302


def test_a_revoked_tokens_session_ends_at_once(client, farm, read_only):
    sign_in(client, read_only)
    assert client.get("/windows").status_code == 200
    in_db(farm, lambda: revoke_token(farm, raw=read_only))
    answer = client.get("/windows")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin")
    assert "Your session ended" in page_of(client, "/signin")
    # htmx requests are sent to the sign-in page too
    assert sign_in(client, read_only).status_code == 401


def test_a_session_expires(tmp_path):
    # 2 s: the signed cookie's timestamps are whole seconds
    fixture = prepare_farm(tmp_path, 1, dashboard_session_hours=2 / 3600)
    try:
        client = create_app(farm=fixture.farm).test_client()
        sign_in(client, fixture.token)
        assert client.get("/windows").status_code == 200
        time.sleep(3.2)
        assert client.get("/windows").status_code == 302
    finally:
        fixture.farm.close()


def test_only_local_paths_are_followed_after_sign_in(client, fixture):
    for target, expected in (("/windows?page=2", "/windows?page=2"), ("//evil.test/", "/"),
                             ("https://evil.test/", "/"), ("/\\evil.test", "/")):
        page = client.get("/signin").get_data(as_text=True)  # each sign-in: a new token
        answer = client.post("/signin", data={"csrf_token": csrf_of(page),
                                              "token": fixture.token, "next": target})
        assert answer.headers["Location"] == expected, target


# ----- permissions and secrets ---------------------------------------------------------

def test_a_read_only_member_sees_windows_without_buttons_to_change_them(
        client, fixture, read_only):
    sign_in(client, read_only)
    html = page_of(client, "/windows")
    assert len(rows_of(html)) == 50
    assert "New window" not in html
    detail = page_of(client, f"/windows/{fixture.ids[0]}")
    assert "shop-00001" in detail
    assert "Edit</a>" not in detail and "recycle bin</button>" not in detail
    # and the server refuses what the page does not offer, in words
    answer = client.post(f"/windows/{fixture.ids[0]}/delete",
                         data={"csrf_token": csrf_of(detail)})
    assert answer.status_code == 403
    assert "Permission denied: requires browser:delete:recycle" in answer.get_data(as_text=True)
    assert in_db(fixture.farm, lambda: Window.get_by_id(fixture.ids[0]).deleted_at) is None
    owner = create_app(farm=fixture.farm).test_client()
    sign_in(owner, fixture.token)
    assert "New window" in page_of(owner, "/windows")
    assert "Edit</a>" in page_of(owner, f"/windows/{fixture.ids[0]}")


def test_secrets_show_only_to_tokens_that_may_reveal_them(app, client, fixture, read_only):
    sign_in(client, read_only)
    detail = page_of(client, f"/windows/{fixture.ids[0]}")
    assert "s3cret-proxy-pass-1" not in detail
    assert "password hidden" in detail
    assert "hidden (your token lacks browser:cookie:reveal)" in detail
    owner = app.test_client()
    sign_in(owner, fixture.token)
    detail = page_of(owner, f"/windows/{fixture.ids[0]}")
    assert "s3cret-proxy-pass-1" in detail and "none stored" in detail
    # no list shows a password, to anyone
    assert "s3cret" not in page_of(owner, "/windows")


def test_another_accounts_window_is_not_found(client, farm, fixture):
    from browserfarm.services.accounts import create_account
    other = in_db(farm, lambda: create_account(farm, "globex"))
    sign_in(client, other.token)
    answer = client.get(f"/windows/{fixture.ids[0]}")
    assert answer.status_code == 404
    assert "Window not found" in answer.get_data(as_text=True)
    assert "0 windows" in page_of(client, "/windows")


# ----- the windows list ----------------------------------------------------------------

def test_the_list_pages_sorts_and_filters_many_windows(client, farm, fixture):
    sign_in(client, fixture.token)
    html = page_of(client, "/windows")
    assert "300 windows, page 1 of 6" in html
    assert rows_of(html)[:2] == ["shop-00300 seller EU", "shop-00299 seller EU"]
    html = page_of(client, "/windows?page=6&size=20")
    assert "page 6 of 15" in html and rows_of(html)[0] == "shop-00200 seller EU"
    assert 'href="/windows?page=7&amp;size=20" rel="next"' in html
    html = page_of(client, "/windows?sort=name&dir=asc&size=20")
    assert rows_of(html)[:3] == [f"shop-{n:05d} seller EU" for n in (1, 2, 3)]
    # search in name or remark
    assert rows_of(page_of(client, "/windows?q=shop-0004")) == [
        f"shop-{n:05d} seller EU" for n in range(49, 39, -1)]
    assert rows_of(page_of(client, "/windows?q=Window+123:")) == ["shop-00123 seller EU"]
    # group and tag (each window n has group n % 5 and tag (n - 1) % 5 of the fixture)
    html = page_of(client, f"/windows?group={fixture.group_ids[2]}&size=100")
    assert "60 windows" in html
    assert all(int(name[5:10]) % 5 == 2 for name in rows_of(html))
    html = page_of(client, f"/windows?tag={fixture.tag_ids[0]}&group={fixture.group_ids[1]}")
    assert "60 windows" in html
    # open status, with where and since when
    caller = Caller(_account(farm), frozenset(ALL))
    in_db(farm, lambda: WindowService(farm, caller).report_status(
        {"id": fixture.ids[4]}, "opened", 4242, "desk-7"))
    html = page_of(client, "/windows?status=open")
    assert rows_of(html) == ["shop-00005 seller EU"]
    assert "opened" in html and "on desk-7" in html and " since <time" in html
    assert "299 windows" in page_of(client, "/windows?status=closed")
    # nothing matches: said in words; nonsense in the URL is left out
    assert "No window matches these filters" in page_of(client, "/windows?q=nothing-like-it")
    assert "300 windows" in page_of(client, "/windows?sort=bogus&size=7&page=x&group=y")
    assert "No windows on page 99" in page_of(client, "/windows?page=99")


def test_htmx_requests_get_the_same_page(client, fixture):
    sign_in(client, fixture.token)
    html = page_of(client, "/windows")
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert '<div id="results">' in html and 'hx-select="#results"' in html
    answer = client.get("/windows?q=shop-00001", headers={"HX-Request": "true"})
    assert rows_of(answer.get_data(as_text=True)) == ["shop-00001 seller EU"]
