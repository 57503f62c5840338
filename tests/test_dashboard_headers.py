"""The dashboard's answers as another site's page, the browser's cache, a copied cookie
or a reverse proxy meet them: no page may be framed by another site (clickjacking its
buttons or its live view); pages, some of which show secrets, are not kept in the
browser's cache after sign-out; signing out ends the session on the server; the
headers of a proxy are believed only when the farm is told to trust it. Flask's test
client on a real SQLite farm, no browser."""
from __future__ import annotations

import base64
import re

import pytest

from bench import prepare_farm
from browserfarm.app import create_app
from browserfarm.models import Window, Worker
from browserfarm.services.accounts import create_account, create_token
from tests.conftest import in_db


def _farm_and_token(tmp_path, **settings):
    farm = prepare_farm(tmp_path, 3, **settings).farm
    account = in_db(farm, lambda: Window.select(Window.account).first().account_id)
    token, _ = in_db(farm, lambda: create_token(farm, account, "owner", role="owner"))
    return farm, token


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _sign_in(client, token: str, **headers):
    page = client.get("/signin", headers=headers).get_data(as_text=True)
    return client.post("/signin", data={"csrf_token": _csrf(page), "token": token},
                       headers=headers)


@pytest.fixture
def client(tmp_path):
    farm, token = _farm_and_token(tmp_path)
    client = create_app(farm=farm).test_client()
    assert _sign_in(client, token).status_code == 302
    yield client
    farm.close()


@pytest.mark.parametrize("path", ["/signin", "/windows", "/windows/1", "/proxies"])
def test_no_page_may_be_framed_by_another_site_nor_kept_in_the_browser_cache(client, path):
    answer = client.get(path)
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert answer.headers["Cache-Control"] == "no-store"


def test_assets_keep_their_own_caching(client):
    answer = client.get("/assets/dashboard/dashboard.css")
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("Cache-Control", "")


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(tmp_path):
    farm, token = _farm_and_token(tmp_path)
    app = create_app(farm=farm)
    person = app.test_client()
    _sign_in(person, token)
    copied = person.get_cookie("browserfarm_session").value
    csrf = _csrf(person.get("/windows").get_data(as_text=True))
    assert person.post("/signout", data={"csrf_token": csrf}).status_code == 302

    thief = app.test_client()
    thief.set_cookie("browserfarm_session", copied)
    replayed = thief.get("/windows")
    assert replayed.status_code == 302
    assert replayed.headers["Location"].startswith("/signin")
    # Another sign-in of the same token (another browser) is not ended by it.
    other = app.test_client()
    _sign_in(other, token)
    assert other.get("/windows").status_code == 200
    farm.close()


def test_a_refused_cross_site_form_does_not_sign_the_person_out(tmp_path):
    """A form from another site comes without the cookie (SameSite=Lax); its refusal
    must set no cookie either, which would replace the person's session."""
    farm, token = _farm_and_token(tmp_path)
    client = create_app(farm=farm).test_client()
    _sign_in(client, token)
    signed_in = client.get_cookie("browserfarm_session").value
    forged = create_app(farm=farm).test_client()  # the same POST, as the browser sends it
    answer = forged.post("/windows/1/delete", data={"confirm": "yes"})
    assert answer.status_code == 400
    assert "The CSRF token is missing" in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    # And with the cookie but no token: refused, the session kept as it was.
    answer = client.post("/windows/1/delete", data={"confirm": "yes"})
    assert answer.status_code == 400 and "Set-Cookie" not in answer.headers
    assert client.get_cookie("browserfarm_session").value == signed_in
    assert client.get("/windows").status_code == 200
    farm.close()


PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "farm.example",
           "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize("trusted", [0, 1])
def test_a_proxys_headers_count_only_when_the_farm_trusts_it(tmp_path, trusted):
    """Behind a TLS-terminating proxy (BROWSERFARM_TRUSTED_PROXIES=1) the dashboard's
    cookie is Secure and links are the proxy's https ones (a v5 worker's browser_url);
    trusting nobody (the default), anyone could send these headers: they change
    nothing."""
    farm, token = _farm_and_token(tmp_path, trusted_proxies=trusted)
    client = create_app(farm=farm).test_client()
    # A browser's same-origin form post says where it came from (Flask-WTF checks the
    # Referer of an HTTPS post against the host, the proxy's when trusted).
    signed_in = _sign_in(client, token, **PROXIED,
                         Referer="https://farm.example/signin" if trusted else "")
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    cookie = signed_in.headers["Set-Cookie"]
    new = in_db(farm, lambda: create_account(farm, "proxied"))
    worker = in_db(farm, lambda: Worker.create(
        account=new.account.id, session_id="s" * 32, os="Linux", os_version="bookworm",
        browser="firefox", browser_version="128.0", backend="firefox",
        url="http://a.test/", name="w"))
    basic = base64.b64encode(f"{new.v5_username}:{new.v5_access_key}".encode()).decode()
    shown = client.get(f"/5/worker/{worker.id}",
                       headers={**PROXIED, "Authorization": f"Basic {basic}"})
    assert shown.status_code == 200, shown.get_data(as_text=True)
    if trusted:
        assert "; Secure" in cookie
        assert shown.get_json()["browser_url"] == f"https://farm.example/workers/{worker.id}"
    else:
        assert "; Secure" not in cookie
        assert shown.get_json()["browser_url"] == f"http://localhost/workers/{worker.id}"
    farm.close()
