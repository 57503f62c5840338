"""The dashboard's v5 workers pages as a person signed in with an API token sees them:
the account's workers (filters, paging, usage), a worker's page (screenshots, video,
stop), and a v5 worker's ``browser_url`` leading there. Workers are made through the
v5 API (queued: no runner, no browser); one test runs a real worker for its
screenshots and video."""
import re
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from browserfarm.app import create_app
from browserfarm.models import Account, Worker, utcnow
from browserfarm.services.accounts import create_account, create_token
from tests.conftest import in_db, make_farm, needs_firefox, started_runner
from tests.test_local import ProxyLoopback
from tests.test_v5 import V5
from tests.servers import chromium
from tests.test_workers import SCALE, request_for, wait_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def farm(tmp_path, sqlite_url):
    farm = make_farm(tmp_path / "data", sqlite_url, worker_time_scale=SCALE)
    farm.plugins.manager.register(ProxyLoopback())  # the real worker's page is on loopback
    yield farm
    farm.close()


class Person:
    """A browser on the dashboard: a cookie jar, and the CSRF token its pages carry."""

    def __init__(self, app, token: str | None = None):
        self.client = app.test_client()
        self.csrf = None
        if token:
            self.sign_in(token)

    def sign_in(self, token: str):
        page = self.client.get("/signin")
        answer = self.client.post("/signin", data={"token": token,
                                                   "csrf_token": csrf_of(page)})
        assert answer.status_code == 302, answer.data
        self.csrf = csrf_of(self.client.get("/workers"))

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, data=None, csrf=True):
        data = dict(data or {}) | ({"csrf_token": self.csrf} if csrf else {})
        return self.client.post(path, data=data)


def csrf_of(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


class Account_:
    """An account: its v5 client, its owner's token, and more tokens on demand."""

    def __init__(self, farm, app, name: str, sessions_limit: int = 2):
        new = in_db(farm, lambda: create_account(farm, name, sessions_limit=sessions_limit))
        self.farm, self.app, self.id, self.owner_token = farm, app, new.account.id, new.token
        self.v5 = V5(app.test_client(), new.v5_username, new.v5_access_key)
        self.v5.farm = farm

    def token(self, *permissions, role=None) -> str:
        raw, _ = in_db(self.farm, lambda: create_token(self.farm, self.id, "test",
                                                       permissions=permissions, role=role))
        return raw

    def person(self, token: str | None = None) -> Person:
        return Person(self.app, token or self.owner_token)

    def queued(self, **fields) -> dict:
        """A worker made through POST /5/worker: queued, since no runner is alive."""
        made = self.v5("POST", "/5/worker", json=request_for(self.v5, "http://page.test/")
                       | fields)
        assert made.status_code == 200 and made.get_json()["status"] == "queue", made.data
        return made.get_json()


@pytest.fixture
def app(farm):
    return create_app(farm=farm)


@pytest.fixture
def acme(farm, app):
    return Account_(farm, app, "acme")


@pytest.fixture
def globex(farm, app):
    return Account_(farm, app, "globex")


def text(answer) -> str:
    return answer.get_data(as_text=True)


@needs_firefox()
def test_browser_url_is_the_workers_page_which_asks_a_stranger_to_sign_in(acme):
    made = acme.queued(name="checkout flow", build="b-42", project="shop")
    listed = acme.v5("GET", "/5/workers").get_json()
    assert listed[0]["browser_url"] == f"http://localhost/workers/{made['id']}"
    one = acme.v5("GET", f"/5/worker/{made['id']}").get_json()
    assert one["browser_url"] == listed[0]["browser_url"]
    anonymous = acme.app.test_client().get(f"/workers/{made['id']}")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/signin?next=/workers/")
    page = acme.person().get(f"/workers/{made['id']}")
    assert page.status_code == 200
    body = text(page)
    for shown in (f"Worker #{made['id']}", "checkout flow", "b-42", "shop", "queued",
                  "firefox", "http://page.test/", "Stop this worker"):
        assert shown in body, shown
    assert "Take a screenshot" not in body  # only while it runs


def add_workers(farm, account_id: int, count: int, **fields) -> None:
    """``count`` ended workers in one statement (what many v5 runs leave)."""
    now = utcnow()
    rows = [{"account": account_id, "status": "terminated", "os": "Linux",
             "os_version": "bookworm", "browser": "firefox", "browser_version": "128.0",
             "backend": "firefox", "url": f"http://page.test/{n}", "session_id": uuid.uuid4().hex,
             "created_at": now, "started_at": now, "ended_at": now + timedelta(seconds=61),
             "end_reason": "timeout"} | fields for n in range(count)]
    in_db(farm, lambda: Worker.insert_many(rows).execute())


@needs_firefox()
def test_the_list_shows_the_accounts_workers_filtered_paged_with_its_usage(farm, acme, globex):
    add_workers(farm, acme.id, 120, build="nightly", project="shop")
    add_workers(farm, acme.id, 3, build="release", project="blog")
    add_workers(farm, globex.id, 7, build="nightly", project="shop")
    waiting = acme.queued(build="nightly", project="shop")
    in_db(farm, lambda: Account.update(used_time=4500.0, api_time_limit=36000.0)
          .where(Account.id == acme.id).execute())
    person = acme.person()

    first = text(person.get("/workers"))
    assert "124 workers" in first and "Page 1 of 3" in first
    assert first.count('<tr id="worker-') == 50
    assert f'id="worker-{waiting["id"]}"' in first  # newest first
    # Usage as /5/status says it: time used of the limit, running of sessions_limit.
    assert "4,500 s" in first and "36,000 s" in first and "0 of 2 at once" in first
    last = text(person.get("/workers?page=3"))
    assert last.count('<tr id="worker-') == 24 and "Page 3 of 3" in last

    queued = text(person.get("/workers?status=queue"))
    assert "1 worker matches" in queued and f'id="worker-{waiting["id"]}"' in queued
    release = text(person.get("/workers?build=release&status=terminated"))
    assert "3 workers match" in release
    assert text(person.get("/workers?project=blog&build=nightly")).count('<tr id="worker-') == 0
    paged = text(person.get("/workers?build=nightly&page=2"))
    assert "Page 2 of 3" in paged and "build=nightly" in paged  # the pager keeps filters
    # Another account's workers are not listed, nor counted.
    assert "7 workers" in text(globex.person().get("/workers"))


@needs_firefox()
def test_another_accounts_worker_is_not_found_and_not_stopped(farm, acme, globex):
    made = acme.queued()
    stranger = globex.person()
    for path in (f"/workers/{made['id']}", f"/workers/{made['id']}/video",
                 f"/workers/{made['id']}/screenshots/1.png", "/workers/999999"):
        answer = stranger.get(path)
        assert answer.status_code == 404, path
        assert "no worker" in text(answer).lower()
    assert stranger.post(f"/workers/{made['id']}/stop").status_code == 404
    assert acme.v5("GET", f"/5/worker/{made['id']}").get_json()["status"] == "queue"


@needs_firefox()
def test_stop_needs_the_csrf_token_and_ends_a_queued_worker(acme):
    made = acme.queued()
    person = acme.person()
    forged = person.post(f"/workers/{made['id']}/stop", csrf=False)
    assert forged.status_code == 400
    other_site = person.post(f"/workers/{made['id']}/stop", {"csrf_token": "forged"}, csrf=False)
    assert other_site.status_code == 400
    assert acme.v5("GET", f"/5/worker/{made['id']}").get_json()["status"] == "queue"
    stopped = person.post(f"/workers/{made['id']}/stop")
    assert stopped.status_code == 302 and stopped.headers["Location"] == f"/workers/{made['id']}"
    assert acme.v5("GET", f"/5/worker/{made['id']}").get_json() == {}  # what DELETE does
    page = text(person.get(f"/workers/{made['id']}"))
    assert f"Worker {made['id']} stopped" in page and "stopped while queued" in page
    assert "Stop this worker" not in page


@needs_firefox()
def test_an_ended_workers_page_says_its_video_is_being_finished_and_asks_again(farm, acme):
    made = acme.queued(**{"browserstack.video": True})
    person = acme.person()
    live = person.get(f"/workers/{made['id']}", headers={"HX-Request": "true"})
    assert live.status_code == 200 and 'hx-trigger="every 5s"' in text(live)
    person.post(f"/workers/{made['id']}/stop")
    # The facts' refresh finds it ended: the whole page again (its video, no refresh).
    ended = person.get(f"/workers/{made['id']}", headers={"HX-Request": "true"})
    assert ended.headers["HX-Refresh"] == "true"
    partial = farm.settings.data.prepare(farm.settings.data.video_partial(made["id"]))
    partial.write_bytes(b"")  # what the recorder writes until it has finished
    finishing = acme.v5("GET", f"/5/worker/{made['id']}/video")
    assert finishing.status_code == 404
    assert finishing.get_json()["message"] == (
        "The video is being finished: it is ready in a few seconds")
    page = text(person.get(f"/workers/{made['id']}"))
    assert "being finished" in page and "part=video" in page  # its section asks again
    assert 'hx-trigger="every 5s"' not in page
    partial.unlink()
    failed = acme.v5("GET", f"/5/worker/{made['id']}/video")
    assert failed.get_json()["message"] == "The recording failed"


@needs_firefox()
def test_a_read_only_member_sees_and_cannot_stop_and_a_token_without_windows_sees_none(acme):
    made = acme.queued()
    reader = acme.person(acme.token(role="read-only"))
    page = reader.get(f"/workers/{made['id']}")
    assert page.status_code == 200 and "Stop this worker" not in text(page)
    refused = reader.post(f"/workers/{made['id']}/stop")
    assert refused.status_code == 403 and "browser:open" in text(refused)
    assert acme.v5("GET", f"/5/worker/{made['id']}").get_json()["status"] == "queue"
    proxies_only = acme.person(acme.token("proxy:list"))
    for path in ("/workers", f"/workers/{made['id']}"):
        answer = proxies_only.get(path)
        assert answer.status_code == 403 and "browser:list" in text(answer), path
        assert f"#{made['id']}" not in text(answer)


@needs_firefox()
def test_a_running_worker_shows_its_screenshots_then_plays_its_video(farm, acme, origin):
    person = acme.person()
    with served(acme.app) as base:
        with started_runner(farm, "dashboard-runner"):
            made = acme.v5("POST", "/5/worker", json=request_for(
                acme.v5, origin.url + "/page/recorded",
                **{"browserstack.video": True})).get_json()
            assert made["status"] == "running", made
            # What a v5 client of the farm at http://127.0.0.1:<port> is given.
            browser_url = acme.v5.client.get(f"/5/worker/{made['id']}", auth=acme.v5.auth,
                                             base_url=base).get_json()["browser_url"]
            assert browser_url == f"{base}/workers/{made['id']}"
            running = text(person.get(f"/workers/{made['id']}"))
            assert "running" in running and "Take a screenshot" in running
            assert "The video is ready once the worker has ended" in running
            taken = person.post(f"/workers/{made['id']}/screenshot")
            assert taken.status_code == 302
            by_api = acme.v5("GET", f"/5/worker/{made['id']}/screenshot.json")
            assert by_api.status_code == 200
            page = text(person.get(f"/workers/{made['id']}"))
            shots = re.findall(rf'src="(/workers/{made["id"]}/screenshots/\d+\.png)"', page)
            assert len(shots) == 2 and "Screenshot taken." in page
            png = person.get(shots[0])
            assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
            assert acme.app.test_client().get(shots[0]).status_code == 302  # signed in only
            wait_for(lambda: acme.v5("GET", f"/5/worker/{made['id']}").get_json() == {},
                     timeout=60)
        video_url = f"/workers/{made['id']}/video"
        ended = wait_for(lambda: video_url in (t := text(person.get(f"/workers/{made['id']}")))
                         and t, timeout=30)
        assert f'<video controls preload="metadata" width="720"\n         src="{video_url}">' \
            in ended
        video = person.get(video_url)
        assert video.status_code == 200 and video.mimetype == "video/mp4"
        assert video.data[4:8] == b"ftyp"
        # The browser asks for ranges as it plays and seeks.
        part = person.get(video_url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.data) == 100
        # A person follows browser_url in a real browser, signs in, and the video plays.
        with chromium() as browser:
            browser.get(browser_url)
            browser.find_element(By.NAME, "token").send_keys(acme.owner_token)
            browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait_for(lambda: browser.current_url == browser_url, timeout=10)
            played = browser.execute_script("""
                const video = document.querySelector("video");
                video.muted = true;
                await video.play();
                await new Promise(done => setTimeout(done, 1000));
                return {time: video.currentTime, width: video.videoWidth, error: video.error};""")
    assert played["error"] is None and played["width"] == 1024 and played["time"] > 0.3


@contextmanager
def served(app):
    """The app on a free loopback port: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


