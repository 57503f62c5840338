"""v5 workers through the API (a real HTTP server, a runner in this process), against
the raw drivers in the same run.

- POST /5/worker until running with the page loaded ÷ a raw start + navigation on the
  same backend (Firefox: mozrunner + Marionette; Chromium: Selenium with Debian's
  chromedriver). Target ≤ 1.1.
- With a warm pool of one Firefox: POST to loaded, p50. Target ≤ 0.5 s.
- A screenshot through the API ÷ the raw driver's screenshot of the same browser.
  Target ≤ 1.2.
- Claiming the next worker with 1,000 queued: ÷ the same with one queued; target
  ≤ 5 ms absolute.
"""
from __future__ import annotations

import base64
import http.server
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import Result, prepare_farm

ROUNDS = 3
SHOTS = 15
WARM_ROUNDS = 5
QUEUED = 1000


def run() -> list[Result]:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # ignore_cleanup_errors: a browser that just quit may still be writing its profile.
    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-",
                                     ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        threading.Thread(target=origin.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{origin.server_port}/"
        try:
            results = _cold_and_screenshots(tmp / "cold", url)
            results.append(_warm(tmp / "warm", url))
            results.append(_claims(tmp / "claims"))
        finally:
            origin.shutdown()
    return results


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = b"<!doctype html><title>bench</title><h1>bench</h1>" + b"x" * 2000
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Farm:
    """A farm on SQLite served over HTTP, with a runner thread and a v5 user."""

    def __init__(self, data_dir: Path, **settings):
        from werkzeug.serving import make_server

        from browserfarm.app import create_app
        from browserfarm.models import Account
        from browserfarm.runner import WorkerRunner
        from browserfarm.services.accounts import create_account

        self.fixture = prepare_farm(data_dir, 0, **settings)
        farm = self.fixture.farm
        with farm.db.connection_context():
            new = create_account(farm, "bench-v5", sessions_limit=4)
            Account.update(sessions_limit=4).where(Account.id == new.account.id).execute()
        self.auth = (new.v5_username, new.v5_access_key)
        self.server = make_server("127.0.0.1", 0, create_app(farm=farm), threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}/5"
        self.runner = WorkerRunner(farm, name="bench-runner")
        self.thread = threading.Thread(target=self.runner.run, daemon=True)
        self.thread.start()
        self.runner.ready.wait(60)
        self.http = requests.Session()
        self.http.auth = self.auth
        flat = self.http.get(self.base + "/browsers?flat=true", timeout=30).json()
        self.entries = {e["browser"]: e for e in flat}

    def create(self, browser: str, url: str) -> tuple[float, dict]:
        entry = self.entries[browser]
        started = time.perf_counter()
        answer = self.http.post(self.base + "/worker", timeout=120, json={
            "os": entry["os"], "os_version": entry["os_version"], "browser": browser,
            "browser_version": entry["browser_version"], "url": url}).json()
        elapsed = time.perf_counter() - started
        if answer.get("status") != "running":
            raise RuntimeError(f"worker did not run: {answer}")
        return elapsed, answer

    def end(self, worker_id) -> None:
        self.http.delete(f"{self.base}/worker/{worker_id}", timeout=30)  # ends at "60 s"
        deadline = time.monotonic() + 60
        while self.http.get(f"{self.base}/worker/{worker_id}", timeout=30).json() != {}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {worker_id} did not end")
            time.sleep(0.1)

    def close(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        self.server.shutdown()
        self.fixture.farm.close()


def _raw_firefox(profile_dir: Path, url: str) -> float:
    from bench.windows import _bare_open
    return _bare_open(profile_dir, url)


def _raw_chromium(url: str) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1024,768"):
        options.add_argument(arg)
    started = time.perf_counter()
    # An explicit driver path: Selenium Manager never runs.
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        return time.perf_counter() - started
    finally:
        driver.quit()


def _cold_and_screenshots(data_dir: Path, url: str) -> list[Result]:
    farm = _Farm(data_dir, worker_time_scale=0.01)
    results = []
    try:
        for browser, raw in (("firefox", lambda i: _raw_firefox(data_dir / f"raw-{i}", url)),
                             ("chromium", lambda i: _raw_chromium(url))):
            ours, bare = [], []
            for index in range(ROUNDS):
                bare.append(raw(index))
                elapsed, answer = farm.create(browser, url)
                ours.append(elapsed)
                if index == 0:
                    results.append(_screenshots(farm, browser, answer["id"]))
                farm.end(answer["id"])
                print(f"  {browser} round {index}: raw {bare[-1]:.2f}s, ours {ours[-1]:.2f}s")
            ratio = statistics.median(ours) / statistics.median(bare)
            results.append(Result(
                f"{browser} worker POST to loaded, ours/raw", ratio,
                f"ours {statistics.median(ours):.2f}s, raw {statistics.median(bare):.2f}s "
                f"(median of {ROUNDS})", "<= 1.1", ratio <= 1.1))
    finally:
        farm.close()
    return results


def _screenshots(farm: _Farm, browser: str, worker_id) -> Result:
    from browserfarm.models import Worker

    db = farm.fixture.farm.db
    with db.connection_context():
        handle = Worker.get_by_id(worker_id).handle
    ours, raw = [], []
    for _ in range(SHOTS):
        started = time.perf_counter()
        png = farm.http.get(f"{farm.base}/worker/{worker_id}/screenshot.png", timeout=60).content
        ours.append(time.perf_counter() - started)
        assert png[:4] == b"\x89PNG", png[:300]
        raw.append(_raw_screenshot(farm, worker_id, handle))
    ratio = statistics.median(ours) / statistics.median(raw)
    return Result(f"{browser} screenshot via API, ours/raw", ratio,
                  f"ours {statistics.median(ours) * 1000:.0f} ms, raw driver "
                  f"{statistics.median(raw) * 1000:.0f} ms (median of {SHOTS})", "<= 1.2",
                  ratio <= 1.2)


def _raw_screenshot(farm: _Farm, worker_id, handle) -> float:
    """The driver's own screenshot command on an open session: the floor. Firefox's
    one Marionette session is the one the runner keeps for the worker."""
    if handle["backend"] == "firefox":
        held, lock = farm.runner.keeper._held[worker_id]
        with lock:
            started = time.perf_counter()
            held.client.screenshot(format="binary", full=False)
            return time.perf_counter() - started
    started = time.perf_counter()
    reply = requests.get(f"{handle['executor']}/session/{handle['session']}/screenshot",
                         timeout=30).json()
    base64.b64decode(reply["value"])
    return time.perf_counter() - started


def _warm(data_dir: Path, url: str) -> Result:
    farm = _Farm(data_dir, worker_time_scale=0.01, warm_pool={"firefox": 1})
    times = []
    try:
        for index in range(WARM_ROUNDS):
            deadline = time.monotonic() + 90
            while not farm.runner.warm:  # the pool refills between rounds
                if time.monotonic() > deadline:
                    raise RuntimeError("the warm pool did not fill")
                time.sleep(0.1)
            elapsed, answer = farm.create("firefox", url)
            times.append(elapsed)
            print(f"  warm round {index}: {elapsed:.3f}s")
            farm.end(answer["id"])
    finally:
        farm.close()
    p50 = statistics.median(times)
    return Result("firefox worker from the warm pool, p50", p50 / 0.5,
                  f"p50 {p50 * 1000:.0f} ms (of {WARM_ROUNDS}); ratio is p50 / 0.5 s",
                  "<= 0.5 s", p50 <= 0.5)


def _claims(data_dir: Path) -> Result:
    from browserfarm.models import Account, Worker
    from browserfarm.services.accounts import create_account
    from browserfarm.services.workers import claim_next

    fixture = prepare_farm(data_dir, 0)
    farm = fixture.farm

    def timed_claims(rounds=30) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            worker = claim_next(farm, "bench")
            times.append(time.perf_counter() - started)
            Worker.update(status="queue", runner="").where(Worker.id == worker.id).execute()
        return statistics.median(times)

    try:
        with farm.db.connection_context():
            accounts = [create_account(farm, f"queue-{n}").account for n in range(4)]
            # Realistic: three accounts at their limit with work queued ahead, and the
            # worker that can run at the back of the queue.
            Account.update(sessions_limit=1).execute()
            rows = []
            for n, account in enumerate(accounts[:3]):
                rows.append(_worker_row(account.id, f"run-{n}", "running"))
            Worker.insert_many(rows).execute()
            runnable = _worker_row(accounts[3].id, "runnable", "queue")
            Worker.insert_many([runnable]).execute()
            single = timed_claims()
            # Now the runnable worker waits behind 999 of accounts at their limit.
            Worker.delete().where(Worker.session_id == "runnable").execute()
            Worker.insert_many([_worker_row(accounts[n % 3].id, f"q-{n}", "queue")
                                for n in range(QUEUED - 1)]).execute()
            Worker.insert_many([runnable]).execute()
            queued = Worker.select().where(Worker.status == "queue").count()
            many = timed_claims()
    finally:
        farm.close()
    ratio = many / single
    return Result(f"claim next with {queued} queued, vs 1 queued", ratio,
                  f"{many * 1000:.2f} ms vs {single * 1000:.2f} ms (median of 30)",
                  "<= 5 ms absolute", many <= 0.005)


def _worker_row(account_id: int, session: str, status: str) -> dict:
    return {"account": account_id, "status": status, "os": "Linux", "os_version": "bookworm",
            "browser": "firefox", "browser_version": "128.0", "backend": "firefox",
            "url": "http://127.0.0.1/", "session_id": session}
