"""Benchmarks for ``make bench`` (``python -m bench``).

Each module in this package (names not starting with ``_``) has ``run() -> list[Result]``.
The machine is small and noisy, so every figure is a ratio against a baseline measured
in the same run; absolute figures are printed alongside. Everything talks to 127.0.0.1
only and every process started here is stopped in a ``finally``.
"""
from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from browserfarm.browsers.backends import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    ratio: float  # against the baseline measured in the same run
    figures: str  # the absolute numbers behind the ratio
    target: str
    passed: bool

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict}  {self.name:<40} ratio {self.ratio:8.3f}  "
                f"(target {self.target})  {self.figures}")


# ----- data ---------------------------------------------------------------------------

@dataclass
class Fixture:
    farm: object
    token: str
    ids: list[int]
    group_ids: list[int]
    tag_ids: list[int]

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


def fingerprint(seq: int) -> dict:
    """About 1 KB, like a BitBrowser fingerprint (schema fields plus free-form ones)."""
    return {
        "coreProduct": "firefox", "coreVersion": "128", "ostype": "PC", "os": "Win32",
        "osVersion": "10", "version": "128",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                     "Gecko/20100101 Firefox/128.0",
        "isIpCreateTimeZone": False, "timeZone": "Europe/Berlin", "timeZoneOffset": 60,
        "webRTC": "0", "position": "1", "isIpCreatePosition": False,
        "lat": 52.52 + seq % 100 / 1000, "lng": 13.40 + seq % 100 / 1000,
        "precisionData": 1000.0, "isIpCreateLanguage": False,
        "languages": "de-DE,de,en-US,en", "isIpCreateDisplayLanguage": False,
        "displayLanguages": "de-DE", "resolutionType": "1", "resolution": "1920 x 1080",
        "openWidth": 1280, "openHeight": 800, "devicePixelRatio": 1.0,
        "hardwareConcurrency": 4 + seq % 3 * 2, "deviceMemory": 8.0, "doNotTrack": "1",
        "canvas": "0", "webGL": "0", "webGLMeta": "0", "audioContext": "0",
        "mediaDevice": "0", "clientRectNoiseEnabled": True, "portScanProtect": "0",
        "webGLManufacturer": "Google Inc. (NVIDIA)",
        "webGLRender": "ANGLE (NVIDIA, NVIDIA GeForce GTX 1650 Direct3D11 vs_5_0 ps_5_0, "
                       "D3D11)",
        "fontType": "2", "noiseSeed": f"{uuid.UUID(int=seq).hex}",
    }


def prepare_farm(data_dir: Path, windows: int, **settings) -> Fixture:
    """Migrate a fresh SQLite farm in ``data_dir`` (as tests/conftest.py make_farm does),
    create an account, and insert ``windows`` realistic windows with bulk inserts.
    ``settings`` override the farm's (see browserfarm.config.Settings)."""
    from browserfarm.config import load_settings
    from browserfarm.db import upgrade
    from browserfarm.farm import Farm
    from browserfarm.models import Group, Tag, Window, WindowTag
    from browserfarm.services.accounts import create_account

    farm = Farm.assemble(load_settings({"data_dir": data_dir, **settings}, environ={}))
    upgrade(farm.db)
    with farm.db.connection_context(), farm.db.atomic():
        new = create_account(farm, "bench")
        account = new.account.id
        group_ids = [Group.create(account=account, name=f"team-{i}").id for i in range(5)]
        tag_ids = [Tag.create(account=account, name=f"tag-{i}", color="#3366ff").id
                   for i in range(5)]
        rows = [{
            "account": account, "uuid": str(uuid.uuid4()), "seq": seq,
            "name": f"shop-{seq:05d} seller EU", "group": group_ids[seq % 5],
            "remark": f"Window {seq}: seller account for the EU marketplace; warm up daily, "
                      "check orders, never log in from another IP. Owner: ops team.",
            "proxy_type": "socks5", "host": f"10.{seq // 250 % 256}.{seq % 250}.7",
            "port": 1080 + seq % 1000, "proxy_username": f"user{seq:05d}",
            # Each its own token, as windows saved through the API have.
            "proxy_password_enc": farm.cipher.encrypt(f"s3cret-proxy-pass-{seq}"),
            "fingerprint": fingerprint(seq),
            "config": {"startupMaximized": True, "muteAudio": True},
            "url": "https://sellercentral.amazon.de/",
        } for seq in range(1, windows + 1)]
        for start in range(0, len(rows), 200):  # stays under SQLite's variable limit
            Window.insert_many(rows[start:start + 200]).execute()
        ids = [w.id for w in Window.select(Window.id).where(Window.account == account)
               .order_by(Window.id)]
        links = [{"window": w, "tag": tag_ids[i % 5]} for i, w in enumerate(ids)]
        for start in range(0, len(links), 500):
            WindowTag.insert_many(links[start:start + 500]).execute()
    return Fixture(farm, new.token, ids, group_ids, tag_ids)


# ----- screens ------------------------------------------------------------------------

@dataclass(frozen=True)
class Screen:
    """Where a browser draws: ``headless``, the ``desktop``'s display (DISPLAY), or a
    ``virtual`` display of its own (Xvfb) of this size and depth. The raw side of a
    browser benchmark draws where ours does (``screen_of``), so both pay the same."""
    kind: str
    width: int = 0
    height: int = 0
    depth: int = 24

    def __str__(self) -> str:
        if self.kind == "virtual":
            return f"an Xvfb of {self.width}x{self.height}x{self.depth}"
        return self.kind


HEADLESS = Screen("headless")
X11_SOCKET = re.compile(r"/tmp/\.X11-unix/X(\d+)$")


def screen_of(pid: int) -> Screen:
    """The screen of our browser ``pid`` (Firefox, or Chromium's browser process), read
    from its command line and environment and from its Xvfb's command line."""
    import psutil

    process = psutil.Process(pid)
    env = process.environ()
    if "--headless" in process.cmdline() or env.get("MOZ_HEADLESS"):
        return HEADLESS
    display = env.get("DISPLAY", "")
    if display and display == os.environ.get("DISPLAY"):
        return Screen("desktop")
    xvfb = xvfb_pids().get(display)
    if xvfb is None:
        raise RuntimeError(f"browser {pid}: DISPLAY={display!r} is no Xvfb here")
    args = psutil.Process(xvfb).cmdline()
    width, height, depth = args[args.index("-screen") + 2].split("x")
    return Screen("virtual", int(width), int(height), int(depth))


def xvfb_pids() -> dict[str, int]:
    """Every running Xvfb by its display name (":N"), found by its listening socket."""
    import psutil

    found = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "Xvfb":
            continue
        with contextlib.suppress(psutil.Error):
            for conn in process.net_connections(kind="unix"):
                match = X11_SOCKET.search(conn.laddr or "")
                if match:
                    found[f":{match.group(1)}"] = process.pid
    return found


@contextlib.contextmanager
def screen_env(screen: Screen, user=None):
    """The environment a raw browser needs to draw on ``screen``; a virtual one is an
    Xvfb of that size and depth started as ours are (VirtualDisplay, as ``user``: the
    browser's, whom its cookie file is for), stopped on the way out."""
    if screen.kind == "headless":
        yield {"MOZ_HEADLESS": "1"}
        return
    if screen.kind == "desktop":
        yield {k: os.environ[k] for k in ("DISPLAY", "XAUTHORITY") if k in os.environ}
        return
    from browserfarm.browsers.display import VirtualDisplay

    display = VirtualDisplay.start(screen.width, screen.height, screen.depth, user=user)
    try:
        yield display.env()
    finally:
        display.stop()


# ----- a bare Firefox -----------------------------------------------------------------

@contextlib.contextmanager
def bare_firefox(profile_dir: Path, screen: Screen = HEADLESS):
    """The raw side of the browser benchmarks: mozrunner + Marionette on a fresh
    profile with our quiet prefs, nothing of ours in between, drawing on ``screen``
    (a virtual one started inside, so its start counts). Yields the client, a session
    started; stops Firefox (and its display) on the way out."""
    from marionette_driver.marionette import Marionette
    from mozprofile import FirefoxProfile
    from mozrunner import FirefoxRunner

    from browserfarm_plugins.firefox_prefs import QUIET

    port = free_port()
    profile = FirefoxProfile(profile=str(profile_dir), restore=False,
                             preferences=QUIET | {"marionette.port": port})
    # Its output to a file beside the profile, as ours goes to the window's log.
    with screen_env(screen) as env, open(f"{profile_dir}.log", "ab") as log:
        headless = ["--headless"] if screen.kind == "headless" else []
        runner = FirefoxRunner(binary="/usr/bin/firefox-esr", profile=profile,
                               env=env | {"HOME": "/root", "PATH": "/usr/bin:/bin"},
                               cmdargs=["--marionette", "--no-remote"] + headless,
                               explicit_cleanup=True, process_args={"stream": log})
        runner.start()
        try:
            client = Marionette(host="127.0.0.1", port=port)
            client.start_session(timeout=60)
            yield client
            client.delete_session()
        finally:
            runner.stop()


def bare_open(profile_dir: Path, url: str, screen: Screen = HEADLESS) -> float:
    """Seconds from nothing (no display either) to ``url`` loaded in a bare Firefox."""
    started = time.perf_counter()
    with bare_firefox(profile_dir, screen) as client:
        client.navigate(url)
        return time.perf_counter() - started


# ----- a page to show -----------------------------------------------------------------

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


@contextlib.contextmanager
def page_server():
    """A small page on a loopback server; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


# ----- processes ----------------------------------------------------------------------

def clean_env() -> dict:
    """No BROWSERFARM_* / DATABASE_URL from the caller's shell: the benchmark decides."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("BROWSERFARM_") and k != "DATABASE_URL"}


def start_process(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    # Output to a file, not a pipe: a full pipe would block the server.
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=clean_env() | (env or {}), stdout=out,
                                stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # gunicorn: graceful stop of the master and its workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post(port: int, path: str, body: bytes, headers: dict, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, log: Path, port: int, path: str, body: bytes,
               headers: dict, timeout: float = 60) -> bytes:
    """Poll until ``path`` answers 200; return that answer's body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            status, data = post(port, path, body, headers, timeout=5)
        except OSError:
            time.sleep(0.2)
            continue
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {data[:500]!r}")
        return data
    raise RuntimeError(f"server on port {port} not ready after {timeout}s:\n"
                       f"{log.read_text()[-3000:]}")


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@contextlib.contextmanager
def person_chromium():
    """A person's headless Chromium driven by Selenium (Debian's chromedriver): the
    dashboard's viewer in benchmarks and tests; quiet, as every Chromium the farm starts."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,1000",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield browser
    finally:
        browser.quit()
