"""The worker API v5 as a v5 client sees it: auth, headers, catalogue, validation,
ownership and accounting. Browsers only where a worker must run (tests/test_workers.py
covers the browsers themselves)."""
import uuid

import pytest

from browserfarm.app import create_app
from browserfarm.models import Account, Worker
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm, needs_firefox, wait_until


@pytest.fixture
def v5farm(tmp_path, database_url):
    farm = make_farm(tmp_path / "data", database_url, rate_limit="40 per 5 minutes")
    yield farm
    farm.close()


class V5:
    """A v5 client: HTTP Basic with the account's username and access key."""

    def __init__(self, client, username, key):
        self.client, self.auth = client, (username, key)

    def __call__(self, method, path, **kwargs):
        return self.client.open(path, method=method, auth=self.auth, **kwargs)


@pytest.fixture
def v5(v5farm):
    app = create_app(farm=v5farm)
    new = in_db(v5farm, lambda: create_account(v5farm, "acme", sessions_limit=2))
    user = V5(app.test_client(), new.v5_username, new.v5_access_key)
    user.account = new.account
    user.farm = v5farm
    other = in_db(v5farm, lambda: create_account(v5farm, "globex"))
    user.stranger = V5(app.test_client(), other.v5_username, other.v5_access_key)
    return user


def queued(v5, **fields) -> Worker:
    """A worker in the queue, as POST /5/worker leaves it when no slot is free."""
    columns = {"os": "Linux", "os_version": "bookworm", "browser": "firefox",
               "browser_version": "128.0", "backend": "firefox", "url": "http://a.test/"}
    return in_db(v5.farm, lambda: Worker.create(account=v5.account.id,
                                                session_id=uuid.uuid4().hex,
                                                **columns | fields))


def test_every_answer_is_versioned_and_needs_credentials(v5):
    anonymous = v5.client.get("/5/status")
    assert anonymous.status_code == 401
    assert anonymous.headers["X-API-Version"] == "5"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert anonymous.get_json() == {"message": "Unauthorized"}
    wrong = v5.client.get("/5/status", auth=(v5.auth[0], "0" * 40))
    assert wrong.status_code == 401
    root = v5("GET", "/5")
    assert root.status_code == 200 and root.get_json() == {}
    assert root.headers["X-API-Version"] == "5"
    assert "Retry-After" not in root.headers  # only a 429 says when to come back
    head = v5("HEAD", "/5/status")
    assert head.status_code == 200 and head.data == b""
    missing = v5("GET", "/5/nothing-here")
    assert missing.status_code == 404 and missing.headers["X-API-Version"] == "5"
    assert "message" in missing.get_json()
    # The node client calls /4 unless told otherwise: say where the API is.
    older = v5("GET", "/4/browsers?flat=true")
    assert older.status_code == 404
    assert older.get_json() == {
        "message": "Not Found: this farm serves BrowserStack's API v5, under /5"}


def test_the_access_key_is_stored_as_a_digest(v5):
    stored = in_db(v5.farm, lambda: Account.get_by_id(v5.account.id).v5_key_hash)
    assert v5.auth[1] not in stored and len(stored) == 64


@needs_firefox()
def test_browsers_nested_and_flat_come_from_the_backends(v5):
    nested = v5("GET", "/5/browsers").get_json()
    versions = nested["Linux"]
    firefox = [b for entries in versions.values() for b in entries if b["browser"] == "firefox"]
    assert firefox and firefox[0]["browser_version"].endswith(".0")
    flat = v5("GET", "/5/browsers?flat=true").get_json()
    entry = next(e for e in flat if e["browser"] == "firefox")
    assert set(entry) == {"os", "os_version", "browser", "device", "browser_version",
                          "real_mobile"}
    assert entry["device"] is None and entry["real_mobile"] is None


def errors_of(answer) -> dict:
    body = answer.get_json()
    assert answer.status_code == 422, body
    assert body["message"] == "Validation Failed"
    return {e["field"]: e["code"] for e in body["errors"]}


@needs_firefox()
def test_a_new_worker_is_validated_field_by_field(v5):
    assert errors_of(v5("POST", "/5/worker", json={})) == {
        "os": "required", "os_version": "required", "url": "required",
        "browser": "required", "browser_version": "required"}
    good = {"os": "Linux", "os_version": v5_os_version(v5), "browser": "firefox",
            "browser_version": "latest", "url": "http://example.test/"}
    cases = [({"os": "Windows"}, "os"), ({"os_version": "Vista"}, "os_version"),
             ({"browser": "netscape"}, "browser"), ({"browser_version": "3.0"}, "browser_version"),
             ({"url": "ftp://x"}, "url"), ({"url": 5}, "url"), ({"timeout": 59}, "timeout"),
             ({"timeout": "soon"}, "timeout"), ({"timeout": True}, "timeout"),
             ({"resolution": "1000x1000"}, "resolution"), ({"name": ["x"]}, "name"),
             ({"browserstack.video": "maybe"}, "browserstack.video"),
             ({"window": "no-such-window"}, "window")]
    for change, field in cases:
        assert errors_of(v5("POST", "/5/worker", json=good | change)) == {field: "invalid"}, change
    # Mobile: browser fields are optional (and nothing here serves a phone).
    assert errors_of(v5("POST", "/5/worker", json={"os": "android", "os_version": "9",
                                                   "url": "http://x.test/"})) == {"os": "invalid"}
    garbage = v5("POST", "/5/worker", data=b"{nope", content_type="application/json")
    assert garbage.status_code == 400 and garbage.get_json()["errors"][0]["field"] == "body"
    null = v5("POST", "/5/worker", data=b"null", content_type="application/json")
    assert null.status_code == 422 and null.get_json()["errors"][0]["field"] == "body"
    # An unknown browser is named even when its version is missing too.
    assert errors_of(v5("POST", "/5/worker", json={k: v for k, v in good.items()
                                                   if k != "browser_version"}
                        | {"browser": "netscape"})) == {"browser": "invalid",
                                                        "browser_version": "required"}
    assert in_db(v5.farm, lambda: Worker.select().count()) == 0  # nothing half-made


def v5_os_version(v5) -> str:
    flat = v5("GET", "/5/browsers?flat=true").get_json()
    return next(e["os_version"] for e in flat if e["browser"] == "firefox")


def test_workers_of_others_are_forbidden(v5):
    mine = queued(v5)
    for method, path in (("GET", f"/5/worker/{mine.id}"), ("DELETE", f"/5/worker/{mine.id}"),
                         ("GET", f"/5/worker/{mine.id}/screenshot.json"),
                         ("PUT", f"/5/worker/{mine.id}/url.json")):
        answer = v5.stranger(method, path, json={"url": "http://x.test/"})
        assert answer.status_code == 403, (method, path)
    for unknown in ("999999", "abc", "99999999999999999999999"):
        assert v5("GET", f"/5/worker/{unknown}").status_code == 403
        assert v5("DELETE", f"/5/worker/{unknown}").status_code == 403
    assert v5.stranger("GET", "/5/workers").get_json() == []


def test_a_new_url_is_checked_before_the_worker_is_asked(v5):
    mine = queued(v5)
    for url, code in (("", "required"), ("ftp://x.test/", "invalid"),
                      ("http://x.test/" + "a" * 2048, "invalid")):
        answer = v5("PUT", f"/5/worker/{mine.id}/url.json", json={"url": url})
        assert answer.status_code == 422, url
        assert answer.get_json()["errors"] == [
            {"field": "url", "code": code, "message": answer.get_json()["errors"][0]["message"]}]
    not_running = v5("PUT", f"/5/worker/{mine.id}/url.json", json={"url": "http://x.test/"})
    assert not_running.status_code == 422 and "not running" in not_running.get_json()["message"]


def test_queued_workers_are_listed_and_deleted_at_once(v5):
    first, second = queued(v5, name="first"), queued(v5, name="second")
    listed = v5("GET", "/5/workers").get_json()
    assert [w["id"] for w in listed] == [first.id, second.id]
    assert listed[0]["status"] == "queue" and listed[0]["sessionId"] == first.session_id
    for key in ("os", "os_version", "browser", "browser_version", "real_mobile", "device",
                "browser_url"):
        assert key in listed[0]
    one = v5("GET", f"/5/worker/{first.id}").get_json()
    assert one["status"] == "queue" and one["created_at"].endswith("+00:00")
    deleted = v5("DELETE", f"/5/worker/{first.id}")
    assert deleted.status_code == 200 and deleted.get_json() == {"time": 0}
    assert v5("GET", f"/5/worker/{first.id}").get_json() == {}
    assert [w["id"] for w in v5("GET", "/5/workers").get_json()] == [second.id]
    # A queued worker can't be screenshotted or navigated: a clear 422.
    shot = v5("GET", f"/5/worker/{second.id}/screenshot.png")
    assert shot.status_code == 422 and "not running" in shot.get_json()["message"]


def test_status_accounts_used_time_and_stops_an_account_out_of_time(v5):
    status = v5("GET", "/5/status").get_json()
    assert status == {"used_time": 0.0, "total_available_time": "Unlimited Testing Time",
                      "running_sessions": 0, "sessions_limit": 2}
    in_db(v5.farm, lambda: Account.update(used_time=120.0, api_time_limit=100.0)
          .where(Account.id == v5.account.id).execute())
    for method, path in (("GET", "/5/status"), ("GET", "/5/browsers"), ("POST", "/5/worker")):
        answer = v5(method, path, json={})
        assert answer.get_json() == {"message": "You have run out of API time"}
        assert answer.status_code == 403
    assert v5.stranger("GET", "/5/status").status_code == 200  # only that account
    from browserfarm.services.workers import claim_next
    waiting = queued(v5)  # queued before its time ran out: no runner starts it
    assert in_db(v5.farm, lambda: claim_next(v5.farm, "r")) is None
    in_db(v5.farm, lambda: Account.update(api_time_limit=None).execute())
    assert in_db(v5.farm, lambda: claim_next(v5.farm, "r")).id == waiting.id


def test_the_rate_limit_answers_429_with_retry_after(v5):
    # This farm allows 40 requests per 5 minutes (production: 1600).
    answers = [v5("GET", "/5").status_code for _ in range(41)]
    assert answers[:40] == [200] * 40 and answers[40] == 429
    limited = v5("GET", "/5/status")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.get_json() == {"message": "Too many requests: the limit is 40 per 5 minutes"}
    assert v5.stranger("GET", "/5").status_code == 200  # per user


def test_concurrent_runners_claim_each_worker_once_in_order(v5):
    from concurrent.futures import ThreadPoolExecutor

    from browserfarm.services.workers import claim_next
    in_db(v5.farm, lambda: Account.update(sessions_limit=100).execute())
    made = [queued(v5, name=f"w{n}").id for n in range(30)]

    def claim_all(runner):
        got = []
        with v5.farm.db.connection_context():
            while (worker := claim_next(v5.farm, runner)) is not None:
                got.append(worker.id)
        return got

    with ThreadPoolExecutor(4) as pool:
        claimed = list(pool.map(claim_all, [f"runner-{n}" for n in range(4)]))
    everything = sorted(w for got in claimed for w in got)
    assert everything == made  # each once, none lost
    for got in claimed:
        assert got == sorted(got)  # each runner takes them oldest first


def test_the_parallel_limit_holds_per_account_in_fifo_order(v5):
    from browserfarm.services.workers import claim_next
    in_db(v5.farm, lambda: Account.update(sessions_limit=1).execute())
    first, second = queued(v5), queued(v5)
    theirs = in_db(v5.farm, lambda: Worker.create(
        account=Account.get(Account.name == "globex").id, session_id="theirs", os="Linux",
        os_version="bookworm", browser="firefox", browser_version="128.0",
        backend="firefox", url="http://a.test/"))
    claim = lambda: in_db(v5.farm, lambda: claim_next(v5.farm, "r"))  # noqa: E731
    assert claim().id == first.id
    assert claim().id == theirs.id  # acme is at its limit; globex is not
    assert claim() is None
    in_db(v5.farm, lambda: Worker.update(status="terminated").where(
        Worker.id == first.id).execute())
    assert claim().id == second.id


def test_a_worker_queued_past_the_queue_timeout_ends_and_says_why(v5):
    from datetime import timedelta

    from browserfarm.models import utcnow
    from browserfarm.runner import WorkerRunner
    waiting = queued(v5, created_at=utcnow() - timedelta(seconds=700))  # default: 600 s
    fresh = queued(v5)
    in_db(v5.farm, WorkerRunner(v5.farm, name="r").reaper.expire_queue)
    answer = v5("GET", f"/5/worker/{waiting.id}").get_json()
    assert answer["status"] == "terminated" and "queue timeout" in answer["error"]
    assert v5("GET", f"/5/worker/{fresh.id}").get_json()["status"] == "queue"


# PostgreSQL only: SQLite serialises writers, so no claim is ever mid-way for another.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_parallel_limit_holds_while_another_runner_is_mid_claim(v5, database_url):
    """PostgreSQL: a claim not committed yet is invisible to others (and SKIP LOCKED
    hides its row); the account's row lock makes the next claim wait and recount."""
    import threading

    import psycopg2

    from browserfarm.services.workers import claim_next
    in_db(v5.farm, lambda: Account.update(sessions_limit=1).execute())
    first, _ = queued(v5), queued(v5)
    other = psycopg2.connect(database_url)  # a runner mid-claim, as claim_next does it
    cursor = other.cursor()
    cursor.execute("SELECT id FROM worker WHERE id = %s FOR UPDATE SKIP LOCKED", (first.id,))
    cursor.execute("SELECT id FROM account WHERE id = %s FOR UPDATE", (v5.account.id,))
    cursor.execute("UPDATE worker SET status = 'starting' WHERE id = %s", (first.id,))
    got = []
    second = threading.Thread(target=lambda: got.append(
        in_db(v5.farm, lambda: claim_next(v5.farm, "runner-2"))))
    second.start()
    watcher = psycopg2.connect(database_url)
    watcher.autocommit = True  # each look a new snapshot of pg_stat_activity

    def blocked():
        with watcher.cursor() as look:
            look.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND wait_event_type = 'Lock'")
            return look.fetchone()[0] == 1
    wait_until(blocked, 30, "the second claim to wait for the account's row lock")
    watcher.close()
    assert second.is_alive()
    other.commit()
    other.close()
    second.join(30)
    assert got == [None]  # the account is at its limit once the first claim is in
    active = in_db(v5.farm, lambda: Worker.select().where(Worker.status == "starting").count())
    assert active == 1


def test_wrong_keys_for_a_username_cannot_use_up_its_rate_limit(v5):
    for _ in range(45):  # this farm allows 40 per 5 minutes
        assert v5.client.get("/5", auth=(v5.auth[0], "0" * 40)).status_code in (401, 429)
    assert v5("GET", "/5").status_code == 200  # the real user is not locked out


def test_wrong_keys_from_an_address_do_not_lock_its_screenshot_links(v5):
    from browserfarm.models import Screenshot
    worker = queued(v5, status="terminated")
    in_db(v5.farm, lambda: Screenshot.create(worker=worker.id, key="k" * 32,
                                             png=b"\x89PNG\r\n\x1a\n stored"))
    for _ in range(45):  # this farm allows 40 per 5 minutes
        v5.client.get("/5", auth=(v5.auth[0], "0" * 40))
    link = v5.client.get(f"/5/screenshots/{'k' * 32}.png")
    assert link.status_code == 200 and link.data.startswith(b"\x89PNG")


def test_a_worker_is_charged_once_and_never_past_its_due_end(v5):
    from datetime import timedelta

    from browserfarm.models import utcnow
    from browserfarm.runner import WorkerRunner
    start = utcnow() - timedelta(hours=3)  # its runner died long ago
    orphan = queued(v5, status="running", runner="dead", started_at=start,
                    ends_at=start + timedelta(seconds=300),
                    handle={"backend": "firefox", "pid": 2 ** 22 + 1})
    seen = [in_db(v5.farm, lambda: Worker.get_by_id(orphan.id)) for _ in range(2)]
    for name, row in zip("AB", seen):  # two runners found it at once
        in_db(v5.farm, lambda: WorkerRunner(v5.farm, name=name).reaper.reap(row, "stale"))
    used = in_db(v5.farm, lambda: Account.get_by_id(v5.account.id).used_time)
    assert used == pytest.approx(300, abs=0.01)


def test_nul_characters_are_refused_like_any_bad_value(v5):
    answer = v5("POST", "/5/worker", json={"os": "Linux", "os_version": "x", "browser": "b",
                                           "browser_version": "1", "url": "http://a.test/",
                                           "name": "x\x00y"})
    assert answer.status_code == 422
    assert {"field": "name", "code": "invalid"}.items() <= answer.get_json()["errors"][0].items()
    assert v5.client.get("/5/status", auth=("a\x00b", "key")).status_code == 401


@pytest.mark.timeout(60)  # it would hang 120 s waiting for a page no runner loads
def test_without_a_runner_a_new_worker_is_answered_at_once_as_queued(v5):
    flat = v5("GET", "/5/browsers?flat=true").get_json()
    assert flat, "no worker browser is installed: `make test` installs Firefox and Chromium"
    entry = flat[0]
    made = v5("POST", "/5/worker", json={k: entry[k] for k in (
        "os", "os_version", "browser", "browser_version")} | {"url": "http://a.test/"})
    assert made.status_code == 200 and made.get_json()["status"] == "queue"


def test_an_ended_workers_screenshots_and_video_go_after_the_retention(v5):
    from datetime import timedelta

    from browserfarm.models import Screenshot, utcnow
    from browserfarm.runner import WorkerRunner
    old = queued(v5, status="terminated", video=True,
                 ended_at=utcnow() - timedelta(days=8))  # the default keeps 7 days
    recent = queued(v5, status="terminated", video=True, ended_at=utcnow())
    for worker in (old, recent):
        in_db(v5.farm, lambda: Screenshot.create(worker=worker.id, key=f"k{worker.id}",
                                                 png=b"\x89PNG"))
        path = v5.farm.settings.data.video(worker.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"mp4")
    assert in_db(v5.farm, WorkerRunner(v5.farm, name="r").reaper.purge_old) == 1
    assert in_db(v5.farm, lambda: [s.worker_id for s in Screenshot.select()]) == [recent.id]
    assert not v5.farm.settings.data.video(old.id).exists()
    assert v5.farm.settings.data.video(recent.id).exists()
    assert v5("GET", f"/5/worker/{old.id}").get_json() == {}  # the worker itself stays


def test_a_rate_limit_setting_that_does_not_parse_stops_the_start():
    from browserfarm.config import load_settings
    assert load_settings(environ={"BROWSERFARM_RATE_LIMIT": "10 per hour"}).rate_limit \
        == "10 per hour"
    with pytest.raises(SystemExit, match="BROWSERFARM_RATE_LIMIT='lots' is not valid"):
        load_settings(environ={"BROWSERFARM_RATE_LIMIT": "lots"})


def test_the_limit_opens_again_when_its_window_ends_and_old_keys_are_swept(
        tmp_path, monkeypatch):
    import sqlite3
    import time

    from browserfarm.ratelimit import HostCounts, TooManyRequests, RateLimit
    limit = RateLimit("2 per 1 second", "", tmp_path)
    window = limit.item.get_expiry() + 0.05  # the window's length (s), and a margin
    limit.hit("account:1")
    limit.hit("account:1")
    with pytest.raises(TooManyRequests) as over:
        limit.hit("account:1")
    assert over.value.retry_after == 1
    limit.hit("account:2")  # another key has its own count
    time.sleep(window)  # what is under test: the window ends
    limit.hit("account:1")  # a new window
    monkeypatch.setattr(HostCounts, "SWEEP_EVERY", 0.0)
    time.sleep(window)
    limit.hit("address:9")  # the sweep drops the expired keys
    with sqlite3.connect(tmp_path / "rate-limit.sqlite") as db:
        keys = [key for key, in db.execute("SELECT key FROM counts")]
    assert [key.split("/")[2] for key in keys] == ["address:9"]


def test_the_api_processes_of_a_host_share_one_count(tmp_path):
    # `make run` serves with two processes: a user gets the limit, not twice it.
    import subprocess
    import sys

    from browserfarm.ratelimit import TooManyRequests, RateLimit
    script = ("import sys\n"
              "from browserfarm.ratelimit import RateLimit, TooManyRequests\n"
              "limit = RateLimit('50 per 5 minutes', '', sys.argv[1])\n"
              "allowed = 0\n"
              "for _ in range(40):\n"
              "    try:\n"
              "        limit.hit('account:1'); allowed += 1\n"
              "    except TooManyRequests:\n"
              "        pass\n"
              "print(allowed)\n")
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    allowed = [int(run.communicate(timeout=60)[0]) for run in runs]
    assert sum(allowed) == 50 and all(n >= 10 for n in allowed)  # 80 asked, 50 let through
    with pytest.raises(TooManyRequests):  # and this process sees the same count
        RateLimit("50 per 5 minutes", "", tmp_path).hit("account:1")


def test_a_recording_downloads_with_a_relative_data_dir(tmp_path, sqlite_url, monkeypatch):
    # `make run` uses ./var: the file must not be looked for next to the package.
    monkeypatch.chdir(tmp_path)
    farm = make_farm("var", sqlite_url)
    try:
        new = in_db(farm, lambda: create_account(farm, "filmed"))
        ended = in_db(farm, lambda: Worker.create(
            account=new.account.id, session_id="s", status="terminated", video=True,
            os="Linux", os_version="bookworm", browser="firefox", browser_version="128.0",
            backend="firefox", url="http://a.test/"))
        path = farm.settings.data.video(ended.id)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 recorded")
        answer = create_app(farm=farm).test_client().get(
            f"/5/worker/{ended.id}/video", auth=(new.v5_username, new.v5_access_key))
        assert answer.status_code == 200, answer.get_json()
        assert answer.data == path.read_bytes() and answer.mimetype == "video/mp4"
        assert path.is_relative_to(tmp_path / "var")
    finally:
        farm.close()


def test_the_document_describes_v5_from_its_schemas_with_this_farms_limits(
        tmp_path, sqlite_url):
    farm = make_farm(tmp_path / "data", sqlite_url, worker_max_seconds=900)
    try:
        document = create_app(farm=farm).test_client().get("/openapi.json").get_json()
    finally:
        farm.close()
    schemas = document["components"]["schemas"]
    timeout = schemas["V5NewWorker"]["properties"]["timeout"]
    assert timeout["minimum"] == 60 and timeout["default"] == 300
    assert timeout["x-capped-at"] == 900 and "capped at 900" in timeout["description"]
    assert set(schemas["V5NewWorker"]["required"]) == {"os", "os_version", "url"}
    new_worker = document["paths"]["/5/worker"]["post"]
    assert new_worker["security"] == [{"basicAuth": []}]
    for status in ("400", "401", "403", "405", "422", "429"):  # in v5's shape
        assert new_worker["responses"][status]["content"]["application/json"]["schema"] \
            == {"$ref": "#/components/schemas/V5Error"}, status
    assert "default" not in new_worker["responses"]  # no envelope-shaped answer
    stored = document["paths"]["/5/screenshots/{key}.png"]["get"]
    assert stored["security"] == [] and "401" not in stored["responses"]


def test_pages_of_other_sites_cannot_act_with_cached_credentials(v5):
    """Issue 12, item 10: a form or text/plain POST from another site needs no CORS
    preflight; the browser's cached Basic credentials must not make it a worker."""
    mine = queued(v5)
    form = {"os": "Linux", "os_version": "x", "browser": "firefox",
            "browser_version": "latest", "url": "http://example.test/"}
    as_text = b'{"os": "Linux", "url": "http://example.test/"}'
    refused = [
        v5("POST", "/5/worker", data=form, headers={"Origin": "http://evil.test"}),
        v5("POST", "/5/worker", data=as_text, content_type="text/plain",
           headers={"Origin": "null"}),  # a sandboxed frame or a data: page
        v5("POST", "/5/worker", data=form, headers={"Sec-Fetch-Site": "cross-site"}),
        v5("POST", "/5/worker", json=form, headers={"Origin": "http://localhost.evil.test"}),
        v5("PUT", f"/5/worker/{mine.id}/url.json", json={"url": "http://x.test/"},
           headers={"Origin": "https://evil.test"}),
        v5("DELETE", f"/5/worker/{mine.id}", headers={"Sec-Fetch-Site": "same-site"})]
    for answer in refused:
        assert answer.status_code == 403, answer.get_json()
        assert answer.get_json() == {"message": "Requests from web pages of other sites "
                                                "are refused"}
    assert in_db(v5.farm, lambda: Worker.select().count()) == 1  # only `mine`
    # Clients without a browser's headers (curl, npm's browserstack), reads, and the
    # farm's own pages (same origin) are served as before.
    assert errors_of(v5("POST", "/5/worker", data={"os": "Linux"}))["url"] == "required"
    assert errors_of(v5("POST", "/5/worker", json={"os": "Linux"},
                        headers={"Origin": "http://localhost",
                                 "Sec-Fetch-Site": "same-origin"}))["url"] == "required"
    assert v5("GET", "/5/workers", headers={"Origin": "http://evil.test",
                                            "Sec-Fetch-Site": "cross-site"}).status_code == 200
    assert v5("DELETE", f"/5/worker/{mine.id}",
              headers={"Sec-Fetch-Site": "none"}).status_code == 200
