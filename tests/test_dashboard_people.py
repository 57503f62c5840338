"""What people trying the dashboard tripped on (issue 14, "built for people"), through
Flask's test client on a real SQLite farm: a window's status changes in place while it
opens, failed htmx requests say why, every field error of a form next to its field with
the form's label, unknown addresses as a page for a browser, times in words with UTC,
counts, names and the fingerprint as people read them. No browser: the HTML shows it."""
from __future__ import annotations

import re
from html import unescape
from datetime import datetime, timezone

import pytest

from browserfarm.dashboard.pages import when
from tests.conftest import in_db

HTMX = {"HX-Request": "true"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _text(html: str) -> str:
    words = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return re.sub(r" ([:.,])", r"\1", unescape(words))  # "<a>Port</a>:" reads "Port:"


@pytest.fixture
def database_url(sqlite_url):
    """The dashboard's pages, not the database: SQLite only."""
    return sqlite_url


@pytest.fixture
def people(app, owner):
    """A browser signed in with the owner's token; ``people.csrf`` its session's."""
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    client.post("/signin", data={"csrf_token": _csrf(page), "token": owner.token})
    client.csrf = _csrf(client.get("/groups").get_data(as_text=True))
    return client


def _post(people, path, data, **kwargs):
    return people.post(path, data={"csrf_token": people.csrf, **data}, **kwargs)


def test_a_window_status_changes_in_place_while_the_agent_opens_it(people, owner):
    window = owner("/browser/update", {"name": "shop"}).data
    owner("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 0})
    htmx = {**HTMX, "X-CSRFToken": people.csrf}
    sent = people.post("/agents/command", headers=htmx, data={
        "window": window["id"], "agent": "desk:1", "action": "open"}).get_data(as_text=True)
    path = re.search(r'hx-get="(/agents/command/\d+)"', sent)[1]
    state = f'id="window-state-{window["id"]}" hx-swap-oob="true"'
    assert state in sent and "closed" in _text(sent)  # the status, as it is now

    taken = owner("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 1})
    owner("/browser/status", {"id": window["id"], "status": "opening", "agent": "desk:1"})
    running = people.get(path, headers=htmx).get_data(as_text=True)
    assert state in running and "opening on desk:1" in _text(running)

    owner("/browser/status", {"id": window["id"], "status": "opened", "agent": "desk:1",
                              "pid": 4321})
    owner("/agent/result", {"name": "desk:1", "id": taken.data["command"]["id"], "result": {
        "code": 0, "msg": "Browser opened", "data": {"pid": 4321}}})
    done = people.get(path, headers=htmx).get_data(as_text=True)
    assert state in done and "opened on desk:1 since just now" in _text(done)
    assert f'href="/windows/{window["id"]}#live-view-section">Watch it live' in done
    # The page's own status has the id the swap replaces.
    page = people.get(f"/windows/{window['id']}").get_data(as_text=True)
    assert f'id="window-state-{window["id"]}"' in page


def test_a_failed_htmx_request_shows_the_farm_s_words_in_the_message_area(people):
    page = people.get("/windows").get_data(as_text=True)
    assert '<div id="messages"' in page
    script = re.search(r'<script src="(/assets/dashboard/dashboard\.js)"', page)[1]
    code = people.get(script).get_data(as_text=True)
    for handled in ("htmx:responseError", "htmx:sendError", "the farm did not answer"):
        assert handled.lower() in code.lower()
    # What the script shows: the error page's alert, which an htmx request gets too.
    failed = _post(people, "/proxies/999/check", {}, headers=HTMX)
    assert failed.status_code == 404
    alert = re.search(r'<main>.*?role="alert">([^<]+)<', failed.get_data(as_text=True), re.S)
    assert "999" in alert[1]


def test_every_field_error_shows_next_to_its_field_with_the_form_s_label(people, owner):
    answer = _post(people, "/windows/new", {
        "name": "shop", "proxyMethod": "2", "proxyType": "http", "host": "127.0.0.1",
        "port": "eighty", "browserFingerPrint.resolution": "huge",
        "browserFingerPrint.hardwareConcurrency": "many"})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    summary = _text(re.search(r'<div class="message error" role="alert">(.*?)</div>', html,
                              re.S)[1])
    assert "correct the 3 fields below" in summary
    for label in ("Proxy port:", "Screen resolution:", "CPU cores:"):
        assert label in summary
    for key in ("port", "browserFingerPrint.resolution",
                "browserFingerPrint.hardwareConcurrency"):
        assert f'id="{key}-error"' in html  # next to its field
    assert "browserFingerPrint.resolution:" not in _text(html)  # the API's name
    assert '<label for="browserFingerPrint.resolution">Screen resolution</label>' in html
    # The proxy's fields show by where it comes from (its own, or the pool's).
    assert 'data-when-method="4"' in html and 'data-when-method="2"' in html

    # A proxy the windows use: the refusal says what to do on this page, by name.
    proxy = owner("/proxy/add", {"proxyType": "http", "host": "127.0.0.1",
                                 "port": 3128}).data
    owner("/browser/update", {"name": "bound one", "proxyMethod": 4, "proxyId": proxy["id"]})
    refused = _text(_post(people, f"/proxies/{proxy['id']}/delete", {},
                          follow_redirects=True).get_data(as_text=True))
    assert "unbind" not in refused
    assert ("Not deleted: proxy http://127.0.0.1:3128 is used by 1 window ('bound one'). "
            'Tick "also if windows use it"') in refused
    done = _text(_post(people, f"/proxies/{proxy['id']}/delete", {"unbind": "true"},
                       follow_redirects=True).get_data(as_text=True))
    assert "Proxy http://127.0.0.1:3128 deleted; 1 window ('bound one') left without" in done


def test_an_unknown_address_is_a_page_for_a_browser_and_json_for_the_api(client):
    browser = client.get("/no-such-page", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status_code == 404 and browser.mimetype == "text/html"
    assert "Not found" in browser.get_data(as_text=True)
    for accept in ("*/*", "application/json", None):
        api = client.get("/no-such-page", headers={"Accept": accept} if accept else {})
        assert api.status_code == 404
        assert api.get_json() == {"code": 404, "msg": "API not found", "data": {}}
    assert client.post("/browser/nothing", json={}).get_json()["msg"] == "API not found"
    assert client.get("/5/nothing", headers={"Accept": "*/*"}).get_json() == {
        "message": "Not Found"}


def test_times_read_as_people_read_them_with_the_exact_utc_time():
    now = datetime(2026, 12, 1, 0, 15, tzinfo=timezone.utc)
    shown = str(when("2026-12-01T00:12:00+00:00", now))
    assert shown == ('<time datetime="2026-12-01T00:12:00Z" '
                     'title="2026-12-01 00:12:00 UTC">3 minutes ago</time>')
    assert ">2026-11-02 09:30 UTC<" in str(when(datetime(2026, 11, 2, 9, 30), now))
    assert "—" in str(when(None))


def test_pages_show_times_counts_names_and_the_fingerprint_in_words(people, owner):
    window = owner("/browser/update", {"name": "shop", "browserFingerPrint": {
        "resolution": "1920 x 1080", "webRTC": "2"}}).data
    page = people.get(f"/windows/{window['id']}").get_data(as_text=True)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", _text(page))  # no raw ISO
    assert re.search(r'<dt>Created</dt><dd><time datetime="[^"]+Z" title="[^"]+ UTC">'
                     r"just now</time>", page)
    table = re.search(r'<table class="list fingerprint">(.*?)</table>', page, re.S)[1]
    assert "Screen resolution 1920 x 1080" in _text(table)
    assert "WebRTC disable (2)" in _text(table)
    assert 'data-confirm="Move “shop” to the recycle bin?' in page

    moved = _post(people, f"/windows/{window['id']}/delete", {}, follow_redirects=True)
    assert "Window 'shop' moved to the recycle bin" in _text(moved.get_data(as_text=True))
    owner("/proxy/add", {"proxyType": "http", "host": "127.0.0.1", "port": 3128})
    assert "1 proxy" in _text(people.get("/proxies").get_data(as_text=True))
    owner("/group/add", {"groupName": "team"})
    groups = people.get("/groups").get_data(as_text=True)
    assert "1 group" in _text(groups)
    assert re.search(r'<a href="/windows\?group=\d+" title="Show its windows">0 windows</a>',
                     groups)  # a count leads to what it counts
    recycle = _text(people.get("/windows/recycle").get_data(as_text=True))
    assert "1 window here" in recycle and "window(s)" not in recycle


def test_an_error_message_is_styled_apart_from_news(people):
    css = people.get("/assets/dashboard/dashboard.css").get_data(as_text=True)
    rules = dict(re.findall(r"([^{}]+)\{([^}]*)\}", css))
    error = next(body for selector, body in rules.items()
                 if selector.strip() == ".message.error")
    assert "var(--bad)" in error
    # No later rule that every message matches gives errors the info colors.
    assert ".message.message" not in css


def test_a_refusal_says_what_a_person_can_do_about_it(app, token_with):
    reader = app.test_client()
    page = reader.get("/signin").get_data(as_text=True)
    reader.post("/signin", data={"csrf_token": _csrf(page),
                                 "token": token_with(role="read-only").token})
    refused = reader.get("/windows/new")
    assert refused.status_code == 403
    words = _text(refused.get_data(as_text=True))
    assert "requires browser:create" in words
    assert "You can't create windows: the token you signed in with may not do this" in words
