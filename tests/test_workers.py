"""v5 workers on real browsers: a runner (in a thread, as `browserfarm runner` runs it)
claims them, starts headless Firefox, ends them at their time; the API takes
screenshots and navigates through the stored handle. Lifetimes are scaled down by
``worker_time_scale`` instead of sleeping minutes."""
import struct
import time
from contextlib import contextmanager

import pytest

from browserfarm.browsers import processes
from browserfarm.app import create_app
from browserfarm.models import Worker
from browserfarm.runner import WorkerRunner
from browserfarm.services.accounts import create_account
from tests.conftest import Caller, in_db, make_farm, needs_firefox, started_runner
from tests.test_local import ProxyLoopback
from tests.test_v5 import V5

pytestmark = needs_firefox()
SCALE = 0.05  # 60 s of worker time is 3 s here


@pytest.fixture
def farm(tmp_path, sqlite_url):
    farm = make_farm(tmp_path / "data", sqlite_url, worker_time_scale=SCALE)
    farm.plugins.manager.register(ProxyLoopback())  # test pages are on loopback
    yield farm
    farm.close()


@pytest.fixture
def runner(farm):
    with started_runner(farm, "test-runner", slots=3) as runner:
        yield runner


@contextmanager
def another_farm(tmp_path, name: str, database_url: str, sessions_limit: int = 2,
                 **settings):
    """A farm of its own settings, and a v5 client of a new account on it."""
    farm = make_farm(tmp_path / name, database_url, worker_time_scale=SCALE, **settings)
    try:
        new = in_db(farm, lambda: create_account(farm, name, sessions_limit=sessions_limit))
        client = V5(create_app(farm=farm).test_client(), new.v5_username, new.v5_access_key)
        client.farm = farm
        yield client
    finally:
        farm.close()


@pytest.fixture
def v5(farm):
    new = in_db(farm, lambda: create_account(farm, "acme", sessions_limit=1))
    app = create_app(farm=farm)
    client = V5(app.test_client(), new.v5_username, new.v5_access_key)
    client.farm = farm
    client.cloud = Caller(app.test_client(), new.token)  # the window API, same account
    return client


def request_for(v5, url, **extra) -> dict:
    flat = v5("GET", "/5/browsers?flat=true").get_json()
    entry = next(e for e in flat if e["browser"] == "firefox")
    return {"os": entry["os"], "os_version": entry["os_version"], "browser": "firefox",
            "browser_version": entry["browser_version"], "url": url} | extra


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def worker_row(farm, worker_id) -> Worker:
    return in_db(farm, lambda: Worker.get_by_id(worker_id))


def test_a_worker_runs_the_page_takes_screenshots_changes_url_and_ends(v5, runner, origin):
    created = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/page/first",
                                                       resolution="1280x1024", name="smoke"))
    body = created.get_json()
    assert created.status_code == 200 and body["status"] == "running", body
    assert ("GET", "/page/first") in [(m, p) for m, p, *_ in origin.requests]
    worker = v5("GET", f"/5/worker/{body['id']}").get_json()
    assert worker["status"] == "running" and worker["name"] == "smoke"

    png = v5("GET", f"/5/worker/{body['id']}/screenshot.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    width, height = png_size(png.data)  # the viewport of a 1280x1024 window
    assert width == 1280 and 800 < height <= 1024
    as_json = v5("GET", f"/5/worker/{body['id']}/screenshot.json").get_json()
    stored = v5.client.get(as_json["url"].split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert stored.status_code == 200 and png_size(stored.data)[0] == 1280
    as_xml = v5("GET", f"/5/worker/{body['id']}/screenshot",
                headers={"Accept": "text/xml"})
    assert as_xml.mimetype == "text/xml" and b"<url>http" in as_xml.data
    by_accept = v5("GET", f"/5/worker/{body['id']}/screenshot",
                   headers={"Accept": "image/png"})
    assert by_accept.mimetype == "image/png"

    moved = v5("PUT", f"/5/worker/{body['id']}/url.json", json={"url": origin.url + "/page/second"})
    assert moved.status_code == 200, moved.get_json()
    assert ("GET", "/page/second") in [(m, p) for m, p, *_ in origin.requests]

    # The spec's 60 s rule (3 s here): DELETE early is 422, and it ends at 60 s.
    pid = worker_row(v5.farm, body["id"]).handle["pid"]
    early = v5("DELETE", f"/5/worker/{body['id']}")
    assert early.status_code == 422
    wait_for(lambda: v5("GET", f"/5/worker/{body['id']}").get_json() == {}, timeout=30)
    row = worker_row(v5.farm, body["id"])
    ran = (row.ended_at - row.started_at).total_seconds()
    assert 60 * SCALE <= ran < 60 * SCALE + 10
    assert not runner.active  # its browser is gone, reaped: no zombie stays behind
    wait_for(lambda: not processes.exists(pid), timeout=10)
    status = v5("GET", "/5/status").get_json()
    assert status["used_time"] >= 60 * SCALE and status["running_sessions"] == 0


def test_a_worker_ends_at_its_timeout_and_the_queue_moves_on(v5, runner, origin):
    # sessions_limit is 1: the second worker queues until the first ends.
    first = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/page/one",
                                                     timeout=60)).get_json()
    second = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/page/two",
                                                      timeout=60)).get_json()
    assert first["status"] == "running" and second["status"] == "queue"
    listed = v5("GET", "/5/workers").get_json()
    assert [(w["id"], w["status"]) for w in listed] == [(first["id"], "running"),
                                                         (second["id"], "queue")]
    wait_for(lambda: worker_row(v5.farm, second["id"]).status == "running", timeout=60)
    one = worker_row(v5.farm, first["id"])
    assert one.status == "terminated" and one.end_reason == "timeout"
    assert 60 * SCALE <= (one.ended_at - one.started_at).total_seconds() < 60 * SCALE + 10


def test_a_worker_runs_with_its_windows_proxy_and_fingerprint(v5, runner, origin, microsocks):
    proxy = microsocks("alice", "secret")
    window = v5.cloud("/browser/update", {
        "name": "shop", "proxyMethod": 2, "proxyType": "socks5", "host": proxy.host,
        "port": proxy.port, "proxyUserName": "alice", "proxyPassword": "secret",
        "browserFingerPrint": {"userAgent": "BrowserFarmTest/1.0", "languages": "de-DE"}}).data
    made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/page/bound",
                                                    window=window["uuid"])).get_json()
    assert made["status"] == "running", made
    assert proxy.connections() >= 1  # the page came through the window's proxy
    # The runner holds the worker's one Marionette session (its keeper): ask through it.
    held, lock = runner.keeper._held[made["id"]]
    with lock:
        seen = held.client.execute_script("return [navigator.userAgent, navigator.language]")
    assert seen == ["BrowserFarmTest/1.0", "de-DE"]


def test_a_window_lends_its_identity_only_to_a_worker_of_its_own_browser(v5):
    # A Firefox window's user agent in Chromium would contradict Chromium's own headers.
    window = v5.cloud("/browser/update", {"name": "firefox device"}).data
    flat = v5("GET", "/5/browsers?flat=true").get_json()
    entry = next(e for e in flat if e["browser"] == "chrome" or e["browser"] == "chromium")
    answer = v5("POST", "/5/worker", json={
        "os": entry["os"], "os_version": entry["os_version"], "browser": entry["browser"],
        "browser_version": entry["browser_version"], "url": "http://127.0.0.1:9/",
        "window": window["uuid"]})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"][0]["field"] == "window"
    assert "ask for browser firefox" in str(answer.get_json())
    assert not v5("GET", "/5/workers").get_json()  # nothing queued


def test_no_worker_lives_past_the_cap(v5, farm, origin, tmp_path, sqlite_url):
    with another_farm(tmp_path, "capped", sqlite_url, worker_max_seconds=100) as client, \
            started_runner(client.farm, "capped-runner"):
        made = client("POST", "/5/worker",
                      json=request_for(client, origin.url + "/", timeout=100000)).get_json()
        assert client("GET", f"/5/worker/{made['id']}").get_json()["timeout"] == 100
        wait_for(lambda: worker_row(client.farm, made["id"]).status == "terminated",
                 timeout=60)


def test_a_restarted_runner_reaps_the_browsers_its_previous_run_left(v5, farm, origin):
    with started_runner(farm, "same-name") as crashed:
        made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/")).get_json()
        assert made["status"] == "running"
        pid = worker_row(farm, made["id"]).handle["pid"]
        crashed.shutdown = lambda: None  # as after kill -9: it stops, ending nothing
    assert processes.alive(pid)
    restarted = WorkerRunner(farm, name="same-name")
    in_db(farm, restarted.reconcile)
    assert not processes.alive(pid)
    row = worker_row(farm, made["id"])
    assert row.status == "terminated" and "restarted" in row.end_reason
    assert v5("GET", f"/5/worker/{made['id']}").get_json()["status"] == "terminated"


def test_with_its_runner_gone_the_api_reaches_the_browser_directly(v5, farm, origin):
    with started_runner(farm, "vanishing") as vanishing:
        made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/")).get_json()
        assert made["status"] == "running"
        # Through the runner's keeper, on a connection this thread keeps.
        assert v5("GET", f"/5/worker/{made['id']}/screenshot.png").status_code == 200
        pid = worker_row(farm, made["id"]).handle["pid"]
        vanishing.shutdown = lambda: None  # it goes, ending nothing; its keeper with it
    try:
        png = v5("GET", f"/5/worker/{made['id']}/screenshot.png")
        assert png.status_code == 200 and png.mimetype == "image/png", png.get_json()
        moved = v5("PUT", f"/5/worker/{made['id']}/url.json",
                   json={"url": origin.url + "/page/direct"})
        assert moved.status_code == 200, moved.get_json()
        assert ("GET", "/page/direct") in [(m, p) for m, p, *_ in origin.requests]
    finally:
        in_db(farm, WorkerRunner(farm, name="vanishing").reconcile)
    assert not processes.alive(pid)


def test_the_workers_of_a_runner_that_went_silent_are_reaped_by_another(v5, farm, origin):
    from datetime import timedelta

    from browserfarm.models import Runner, utcnow
    with started_runner(farm, "silent") as silent:
        made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/")).get_json()
        pid = worker_row(farm, made["id"]).handle["pid"]
        silent.shutdown = lambda: None  # it dies without ending anything
    other = WorkerRunner(farm, name="other")
    in_db(farm, other.reaper.reap_stale_runners)
    assert processes.alive(pid)  # seen 0 s ago: not stale yet
    in_db(farm, lambda: Runner.update(seen_at=utcnow() - timedelta(seconds=60))
          .where(Runner.name == "silent").execute())
    in_db(farm, other.reaper.reap_stale_runners)
    assert not processes.alive(pid)
    row = worker_row(farm, made["id"])
    assert row.status == "terminated" and "silent" in row.end_reason


def test_each_runner_in_a_process_marks_its_own_browsers(v5, farm, origin):
    # A restarted runner kills what carries its mark: never another runner's browser.
    from browserfarm.runner import MARK_VARIABLE
    with started_runner(farm, "alpha", slots=1) as alpha, \
            started_runner(farm, "beta", slots=0) as beta:  # beta claims nothing
        made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/")).get_json()
        assert made["status"] == "running", made
        row = worker_row(farm, made["id"])
        assert row.runner == "alpha"
        assert row.handle["pid"] in processes.with_env(MARK_VARIABLE, alpha.mark)
        assert row.handle["pid"] not in processes.with_env(MARK_VARIABLE, beta.mark)


def test_a_backend_that_fails_to_start_ends_the_worker_with_its_reason(v5, farm, origin,
                                                                       monkeypatch):
    request = request_for(v5, origin.url + "/")
    monkeypatch.setenv("PATH", "/nonexistent")  # Firefox can't be found any more
    with started_runner(farm, "broken"):
        made = v5("POST", "/5/worker", json=request).get_json()
    assert made["status"] == "terminated" and "did not start" in made["error"]
    assert "none of firefox-esr, firefox is installed" in made["error"]
    answer = v5("GET", f"/5/worker/{made['id']}").get_json()
    assert answer["status"] == "terminated" and "did not start" in answer["error"]


def _is_firefox(pid: int) -> bool:
    """The main Firefox process (its content processes run firefox-esr -contentproc)."""
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return argv[0].endswith(b"firefox-esr") and b"-contentproc" not in argv


@pytest.fixture
def grid_v5(tmp_path, sqlite_url, selenium_grid):
    """A farm whose catalogue includes a real Selenium Grid, its runner, a v5 client."""
    with another_farm(tmp_path, "grid", sqlite_url, grid_url=str(selenium_grid)) as client, \
            started_runner(client.farm, "grid-runner"):
        yield client


@pytest.mark.parametrize("backend", ["chromium", "selenium-grid"])
def test_workers_on_chromium_and_on_the_grid(grid_v5, origin, backend):
    flat = grid_v5("GET", "/5/browsers?flat=true").get_json()
    catalogue = grid_v5.farm.catalogue.entries()
    entry = next(e for e in catalogue if e["backend"] == backend and e["browser"] == "chrome")
    assert {k: entry[k] for k in flat[0]} in flat
    made = grid_v5("POST", "/5/worker", json={
        "os": entry["os"], "os_version": entry["os_version"], "browser": "chrome",
        "browser_version": entry["browser_version"], "url": origin.url + "/page/chrome",
        "resolution": "1280x800"}).get_json()
    assert made["status"] == "running", made
    row = worker_row(grid_v5.farm, made["id"])
    assert row.backend == backend
    png = grid_v5("GET", f"/5/worker/{made['id']}/screenshot.png").data
    width, height = png_size(png)  # the viewport of a 1280x800 window
    assert width == 1280 and 600 < height <= 800
    moved = grid_v5("PUT", f"/5/worker/{made['id']}/url.json", json={"url": origin.url + "/page/next"})
    assert moved.status_code == 200, moved.get_json()
    assert ("GET", "/page/next") in [(m, p) for m, p, *_ in origin.requests]
    time.sleep(60 * SCALE)  # what is under test: the 60 s rule (scaled) has passed
    ended = grid_v5("DELETE", f"/5/worker/{made['id']}")
    assert ended.status_code == 200 and ended.get_json()["time"] >= 60 * SCALE
    assert grid_v5("GET", f"/5/worker/{made['id']}").get_json() == {}  # ended at once
    assert worker_row(grid_v5.farm, made["id"]).end_reason == "deleted"
    assert not grid_v5("GET", "/5/workers").get_json()


def test_a_recorded_worker_leaves_a_video_to_download(v5, runner, origin):
    import json as jsonlib
    import subprocess
    made = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/page/recorded",
                                                    **{"browserstack.video": True})).get_json()
    assert made["status"] == "running", made
    not_yet = v5("GET", f"/5/worker/{made['id']}/video")
    assert not_yet.status_code == 404 and "ended" in not_yet.get_json()["message"]
    time.sleep(60 * SCALE / 2)  # frames of the first page for half the worker's life,
    v5("PUT", f"/5/worker/{made['id']}/url.json", json={"url": origin.url + "/page/second"})
    # then of the second until it ends at its 60 s (scaled)
    wait_for(lambda: worker_row(v5.farm, made["id"]).status == "terminated", timeout=60)
    video = wait_for(lambda: (r := v5("GET", f"/5/worker/{made['id']}/video")).status_code
                     == 200 and r, timeout=30)
    assert video.mimetype == "video/mp4"
    path = v5.farm.settings.data_dir / "downloaded.mp4"
    path.write_bytes(video.data)
    probe = jsonlib.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    stream = probe["streams"][0]
    assert stream["codec_name"] == "h264" and int(stream["width"]) == 1024
    assert float(probe["format"]["duration"]) >= 2  # seconds of session, two frames each
    unrecorded = v5("POST", "/5/worker", json=request_for(v5, origin.url + "/")).get_json()
    answer = v5("GET", f"/5/worker/{unrecorded['id']}/video")
    assert answer.status_code == 404 and "not recorded" in answer.get_json()["message"]


def test_a_warm_browser_serves_a_worker_and_none_outlives_the_runner(tmp_path, sqlite_url,
                                                                     origin):
    with another_farm(tmp_path, "warm", sqlite_url, warm_pool={"firefox": 1}) as client:
        with started_runner(client.farm, "warm-runner") as runner:
            warm = wait_for(lambda: list(runner.warm))[0]
            made = client("POST", "/5/worker",
                          json=request_for(client, origin.url + "/page/warm")).get_json()
            assert made["status"] == "running"
            assert worker_row(client.farm, made["id"]).handle["pid"] == warm.handle.pid
            assert ("GET", "/page/warm") in [(m, p) for m, p, *_ in origin.requests]
            refill = wait_for(lambda: list(runner.warm))[0]  # the pool fills again
            assert refill.handle.pid != warm.handle.pid
        for pid in (warm.handle.pid, refill.handle.pid):
            assert not processes.alive(pid)


def test_workers_run_and_end_on_postgresql(tmp_path, postgres, origin):
    with another_farm(tmp_path, "pg", postgres.create_database(),
                      sessions_limit=1) as client:
        farm = client.farm
        with started_runner(farm, "pg-runner-0"), started_runner(farm, "pg-runner-1"):
            first = client("POST", "/5/worker", json=request_for(
                client, origin.url + "/page/pg", timeout=60)).get_json()
            second = client("POST", "/5/worker", json=request_for(
                client, origin.url + "/page/pg2", timeout=60)).get_json()
            assert (first["status"], second["status"]) == ("running", "queue")
            wait_for(lambda: worker_row(farm, second["id"]).status == "running")
            assert worker_row(farm, first["id"]).end_reason == "timeout"
        row = worker_row(farm, second["id"])
        assert row.status == "terminated" and row.end_reason == "the runner stopped"
        # Charged from start to end, never past the due end (its timeout).
        ran = sum((min(w.ended_at, w.ends_at) - w.started_at).total_seconds()
                  for w in (worker_row(farm, first["id"]), row))
        assert abs(client("GET", "/5/status").get_json()["used_time"] - ran) < 0.2


def test_a_runner_killed_with_9_leaves_nothing_once_restarted(tmp_path, origin):
    """A real `browserfarm runner` process, with a worker and a warm browser (which no
    handle records): after kill -9 and a restart, no browser of it is left."""
    import os
    import signal
    import subprocess
    import sys

    from browserfarm.models import Runner
    from browserfarm.runner import MARK_VARIABLE
    data_dir = tmp_path / "runner-data"
    env = {**os.environ, "BROWSERFARM_WORKER_TIME_SCALE": str(SCALE),
           "BROWSERFARM_WARM_POOL": "firefox=1"}
    env.pop("DATABASE_URL", None)
    farm = make_farm(data_dir, f"sqlite:///{data_dir.resolve()}/browserfarm.db")

    def start_runner():
        return subprocess.Popen([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                                 str(data_dir), "runner", "--name", "killed"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def marked() -> set[int]:
        return set(processes.with_env(MARK_VARIABLE, f"killed@{data_dir.resolve()}"))

    try:
        new = in_db(farm, lambda: create_account(farm, "killed"))
        client = V5(create_app(farm=farm).test_client(), new.v5_username, new.v5_access_key)
        runner = start_runner()
        wait_for(lambda: in_db(farm, lambda: Runner.select().where(
            Runner.name == "killed").exists()))  # it reconciled and beats
        made = client("POST", "/5/worker", json=request_for(client, origin.url + "/")).get_json()
        assert made["status"] == "running", made
        browser = worker_row(farm, made["id"]).handle["pid"]
        wait_for(lambda: len([p for p in marked() if _is_firefox(p)]) >= 2)  # + a warm one
        second = start_runner()  # the same name, while the first one runs: refused
        assert second.wait(60) != 0 and "already runs" in second.stdout.read()
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(30)
        left = marked()
        assert browser in left and len(left) >= 2  # the worker's and the warm browser
        restarted = start_runner()
        try:
            wait_for(lambda: worker_row(farm, made["id"]).status == "terminated")
            wait_for(lambda: not (left & marked()))  # every one of them is gone
            assert "restarted" in worker_row(farm, made["id"]).end_reason
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(90)
        assert not marked()
    finally:
        farm.close()
