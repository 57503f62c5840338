"""v5 workers through the API, against the raw drivers in the same run.

- POST /5/worker until running with the page loaded ÷ a raw start + navigation on the
  same backend (Firefox: mozrunner + Marionette; Chromium: Selenium with Debian's
  chromedriver, as the browser user with its sandbox, as workers run), the median of paired rounds' ratios. Target ≤ 1.1.
- With a warm pool of one Firefox: POST to loaded, p50. Target ≤ 0.5 s.
- A screenshot through the API (served as ``make run`` serves it: gunicorn and a
  runner, each its own process) ÷ the raw driver's screenshot of the same page at the
  same size (Firefox: a bare Firefox over Marionette; Chromium: the worker's own
  chromedriver). Target ≤ 1.2.
- Claiming the next worker with 1,000 queued: ÷ the same with one queued; target
  ≤ 5 ms absolute.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench import (Result, Screen, bare_firefox, bare_open, free_port, page_server,
                   prepare_farm, screen_env, screen_of, start_process, stop_process)

ROUNDS = 10  # even: each side goes first equally often
SHOTS = 80
WARM_ROUNDS = 5
QUEUED = 1000
SIZE = (1024, 768)  # v5's default resolution: a worker's window and screen


def run() -> list[Result]:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # ignore_cleanup_errors: a browser that just quit may still be writing its profile.
    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-",
                                     ignore_cleanup_errors=True) as tmp, \
            page_server() as url:
        tmp = Path(tmp)
        results = _screenshots(tmp / "shots", url)
        results += _cold(tmp / "cold", url)
        results.append(_warm(tmp / "warm", url))
        results.append(_claims(tmp / "claims"))
    return results


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

    def screen(self, browser: str, url: str) -> Screen:
        """Where this farm's workers of ``browser`` draw: one started, looked at, ended."""
        from browserfarm.models import Worker

        _, answer = self.create(browser, url)
        try:
            with self.fixture.farm.db.connection_context():
                return screen_of(_browser_pid(Worker.get_by_id(answer["id"]).handle))
        finally:
            self.end(answer["id"])

    def close(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        self.server.shutdown()
        self.fixture.farm.close()


def _raw_chromium(url: str, screen: Screen) -> float:
    """Selenium with Debian's chromedriver, started as our worker starts it: as the
    browser user, with Chromium's sandbox, in a temp dir of its own (TMPDIR, where
    chromedriver makes the profile: an empty --user-data-dir starts 0.3-0.4 s slower),
    drawing on the same
    kind of screen (its own Xvfb started inside the timed span, where ours has one); so
    the figure is the farm's overhead, not the sandbox's (its cost is in
    docs/benchmarks.md)."""
    import os
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from browserfarm.browsers import processes
    from browserfarm.config import load_settings

    user = processes.browser_user(load_settings().browser_user)
    home = tempfile.mkdtemp(prefix="bench-raw-chromium-")
    if user:
        os.chown(home, user.uid, user.gid)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(arg)
    if screen.kind == "headless":
        options.add_argument("--headless")
        options.add_argument(f"--window-size={SIZE[0]},{SIZE[1]}")
    else:  # placed and sized as a worker's window on its screen
        options.add_argument("--window-position=0,0")
        options.add_argument(f"--window-size={SIZE[0]},{SIZE[1] - 1}")
    try:
        started = time.perf_counter()
        with screen_env(screen, user) as display:
            popen = processes.popen_as(user, {"HOME": home, "TMPDIR": home} | display)
            # An explicit driver path: Selenium Manager never runs.
            service = Service("/usr/bin/chromedriver", env=popen.pop("env"), popen_kw=popen)
            driver = webdriver.Chrome(service=service, options=options)
            try:
                driver.get(url)
                return time.perf_counter() - started
            finally:
                driver.quit()
    finally:
        shutil.rmtree(home, ignore_errors=True)  # also when the browser failed to start


def _cold(data_dir: Path, url: str) -> list[Result]:
    """Rounds of one raw start and one of ours, back to back, each side first in half
    of them (the second of a pair found the machine busier: the first one's browser
    still exiting). The figure is the median of the rounds' own ratios: a round's two
    starts share the machine's state of the moment, which moves by ±0.3 s between
    rounds here."""
    farm = _Farm(data_dir, worker_time_scale=0.01)
    results = []
    try:
        for browser, raw_start in (
                ("firefox", lambda i, screen: bare_open(data_dir / f"raw-{i}", url, screen)),
                ("chromium", lambda i, screen: _raw_chromium(url, screen))):
            screen = farm.screen(browser, url)  # a first start, not counted
            print(f"  {browser} workers draw on: {screen}")
            ours, bare = [], []

            def raw(index, screen=screen, raw_start=raw_start):
                return raw_start(index, screen)

            def ours_start(index):
                elapsed, answer = farm.create(browser, url)
                farm.end(answer["id"])
                return elapsed

            for index in range(ROUNDS):
                pair = ((raw, bare), (ours_start, ours))
                for start, times in pair if index % 2 else reversed(pair):
                    times.append(start(index))
                print(f"  {browser} round {index}: raw {bare[-1]:.2f}s, ours {ours[-1]:.2f}s")
            ratio = statistics.median(o / b for o, b in zip(ours, bare))
            results.append(Result(
                f"{browser} worker POST to loaded, ours/raw", ratio,
                f"median of {ROUNDS} rounds' ratios; medians ours "
                f"{statistics.median(ours):.2f}s, raw {statistics.median(bare):.2f}s; each "
                f"on {screen}",
                "<= 1.1", ratio <= 1.1))
    finally:
        farm.close()
    return results


def _screenshots(data_dir: Path, url: str) -> list[Result]:
    """The farm as ``make run`` runs it: the API under gunicorn and a runner, each in
    its own process; this process is only their client. Both sides use a kept-alive
    connection and no client library beyond the standard one (marionette_driver on the
    raw side), so the difference is the farm's, not a client's."""
    from browserfarm.models import Worker
    from browserfarm.services.accounts import create_account

    fixture = prepare_farm(data_dir, 0)
    db = fixture.farm.db
    with db.connection_context():
        new = create_account(fixture.farm, "bench-shots")
    port = free_port()
    cli = [str(Path(sys.executable).parent / "browserfarm"), "--data-dir", str(data_dir)]
    env = {"BROWSERFARM_WORKER_TIME_SCALE": "0.2"}  # a worker lives 60 s, not 300
    procs = [start_process(cli + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                           data_dir / "serve.log", env),
             start_process(cli + ["runner"], data_dir / "runner.log", env)]
    api = _Client(port, new.v5_username, new.v5_access_key)
    results = []
    try:
        api.wait_ready(procs, data_dir)
        for browser, raw_shots in (("firefox", _bare_firefox_shots),
                                   ("chromium", _chromedriver_shots)):
            worker_id = api.start_worker(browser, url)
            with db.connection_context():
                handle = Worker.get_by_id(worker_id).handle
            screen = screen_of(_browser_pid(handle))
            with raw_shots(data_dir, url, handle, screen) as raw_shot:
                for _ in range(5):  # connections opened, first-use costs paid
                    api.get(f"/5/worker/{worker_id}/screenshot.png")
                    raw_shot()
                ours, raw = [], []
                ours_shot = lambda: api.get(f"/5/worker/{worker_id}/screenshot.png")  # noqa: E731
                for index in range(SHOTS):  # each side first in half the rounds
                    pair = ((ours_shot, ours), (raw_shot, raw))
                    for shoot, times in pair if index % 2 else reversed(pair):
                        started = time.perf_counter()
                        shoot()
                        times.append(time.perf_counter() - started)
                png, raw_png = ours_shot(), raw_shot()
                if _png_size(png) != _png_size(raw_png):  # the same work on both sides
                    raise RuntimeError(f"{browser}: ours {_png_size(png)}, raw "
                                       f"{_png_size(raw_png)}")
            ratio = statistics.median(ours) / statistics.median(raw)
            results.append(Result(
                f"{browser} screenshot via API, ours/raw", ratio,
                f"ours {statistics.median(ours) * 1000:.1f} ms, raw driver "
                f"{statistics.median(raw) * 1000:.1f} ms (median of {SHOTS}, "
                f"{_png_size(png)[0]}x{_png_size(png)[1]})", "<= 1.2", ratio <= 1.2))
    finally:
        api.close()
        for proc in reversed(procs):  # the runner first: it ends its workers
            stop_process(proc)
        fixture.farm.close()
    return results


class _Client:
    """The v5 API over one kept-alive connection."""

    def __init__(self, port: int, username: str, key: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        token = base64.b64encode(f"{username}:{key}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: dict | None = None) -> bytes:
        attempts = (1, 2) if method == "GET" else (2,)  # a POST is never sent twice
        for attempt in attempts:  # gunicorn closes a connection idle for 2 s
            try:
                self.conn.request(method, path, json.dumps(body) if body else None,
                                  self.headers)
                reply = self.conn.getresponse()
                data = reply.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt == 2:
                    raise
        if reply.status != 200:
            raise RuntimeError(f"{method} {path}: {reply.status} {data[:300]!r}")
        return data

    def get(self, path: str) -> bytes:
        return self.request("GET", path)

    def wait_ready(self, procs, data_dir: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
                logs = [(data_dir / name).read_text()[-2000:] for name in ("serve.log",
                                                                            "runner.log")]
                raise RuntimeError("the farm did not start:\n" + "\n".join(logs))
            try:
                self.get("/5")
                return
            except (OSError, RuntimeError):
                self.conn.close()
                time.sleep(0.2)

    def start_worker(self, browser: str, url: str) -> int:
        entry = next(e for e in json.loads(self.get("/5/browsers?flat=true"))
                     if e["browser"] == browser)
        answer = json.loads(self.request("POST", "/5/worker", {
            "os": entry["os"], "os_version": entry["os_version"], "browser": browser,
            "browser_version": entry["browser_version"], "url": url}))
        deadline = time.monotonic() + 120  # "queue" until the runner's first heartbeat
        while answer.get("status") != "running":
            if answer.get("status") == "terminated" or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not run: {answer}")
            time.sleep(0.2)
            answer = json.loads(self.get(f"/5/worker/{answer['id']}"))
        return answer["id"]

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def _bare_firefox_shots(data_dir: Path, url: str, handle: dict, screen: Screen):
    """A bare Firefox (as the cold start's raw side) on the worker's kind of screen,
    showing the same page in a window of the worker's size: its screenshot is the
    floor."""
    with bare_firefox(data_dir / "raw-shots", screen) as client:
        client.set_window_rect(x=0, y=0, width=SIZE[0], height=SIZE[1])
        client.navigate(url)
        yield lambda: client.screenshot(format="binary", full=False)


@contextlib.contextmanager
def _chromedriver_shots(data_dir: Path, url: str, handle: dict, screen: Screen):
    """The worker's own chromedriver, asked directly: the floor."""
    parts = urlsplit(handle["executor"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = f"{parts.path.rstrip('/')}/session/{handle['session']}/screenshot"

    def shot() -> bytes:
        conn.request("GET", path)
        return base64.b64decode(json.loads(conn.getresponse().read())["value"])

    try:
        yield shot
    finally:
        conn.close()


def _browser_pid(handle: dict) -> int:
    """The browser's own process in a stored handle: Chromium's, or Firefox's."""
    return handle.get("browserPid") or handle["pid"]


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"not a PNG: {png[:200]!r}")
    return struct.unpack(">II", png[16:24])


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
