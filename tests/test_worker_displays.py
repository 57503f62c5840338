"""v5 workers on displays of their own (issue 13): a Chromium or Firefox worker shows
on an Xvfb at its resolution (a real screen, no HeadlessChrome), its video is grabbed
from that display, and the display goes with the worker: when it ends, and after its
runner was killed with SIGKILL, once a new runner starts."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from browserfarm.app import create_app
from browserfarm.browsers import processes, remote
from browserfarm.browsers.backends import WorkerSpec
from browserfarm.config import load_settings
from browserfarm.models import Runner
from browserfarm.runner import MARK_VARIABLE
from browserfarm.services.accounts import create_account
from browserfarm_plugins.chromium import Chromium
from browserfarm_plugins.firefox import Firefox
from tests.conftest import in_db, make_farm, needs_firefox, started_runner
from tests.servers import HTTPService
from tests.test_v5 import V5
from tests.test_workers import SCALE, another_farm, wait_for, worker_row

pytestmark = [needs_firefox(), pytest.mark.timeout(300)]

SETTINGS = load_settings({}, environ={})
WIDTH, HEIGHT = 1280, 1024
# What a page measures of its screen, and the browser's own names for itself.
SCREEN = "[screen.width, screen.height, screen.colorDepth, navigator.userAgent]"


class UserAgents(HTTPService):
    """A page on loopback (a secure context: userAgentData is there) that records the
    User-Agent header of every request."""

    def __init__(self):
        self.user_agents = []
        super().__init__()

    def respond(self, h):
        self.user_agents.append(h.headers.get("User-Agent", ""))
        h.reply(200, b"<!doctype html><title>page</title><body>page</body>", "text/html")


@pytest.fixture
def page():
    service = UserAgents()
    yield service
    service.stop()


def xvfb(pid: int) -> list[str]:
    """The command line of the Xvfb ``pid``, [] when none runs there."""
    try:
        process = psutil.Process(pid)
        return process.cmdline() if process.name() == "Xvfb" and processes.alive(pid) else []
    except psutil.Error:
        return []


def assert_gone(handle) -> None:
    """The worker's display and its cookie file are gone."""
    wait_for(lambda: not xvfb(handle.display_pid), timeout=10)
    assert not Path(handle.xauthority).exists()


def chromium_request(v5, **extra) -> dict:
    entry = next(e for e in v5("GET", "/5/browsers?flat=true").get_json()
                 if e["browser"] == "chromium")
    return {k: entry[k] for k in ("os", "os_version", "browser", "browser_version")} | extra


def test_a_chromium_worker_shows_at_its_resolution_on_its_own_display_not_headless(page):
    handle = Chromium.start_worker(WorkerSpec(browser="chromium", url=page.url + "/",
                                              width=WIDTH, height=HEIGHT), SETTINGS).handle
    try:
        screen = xvfb(handle.display_pid)
        assert f"{WIDTH}x{HEIGHT}x24" in screen and "-nolisten" in screen
        width, height, depth, agent, brands, inner = remote.execute(
            handle.executor, handle.session,
            f"return [...{SCREEN}, navigator.userAgentData.brands.map(b => b.brand),"
            " innerWidth]")
        assert (width, height, depth, inner) == (WIDTH, HEIGHT, 24, WIDTH)
        assert "Chrome/" in agent and "Headless" not in agent
        assert "Chromium" in brands and not [b for b in brands if "Headless" in b]
        assert page.user_agents and not [a for a in page.user_agents if "Headless" in a]
        browser = processes.cmdline(handle.browser_pid)
        assert not [a for a in browser if a.startswith("--headless")]
        environ = Path(f"/proc/{handle.browser_pid}/environ").read_bytes().split(b"\0")
        assert f"DISPLAY={handle.display}".encode() in environ
    finally:
        Chromium.stop(handle)
    assert_gone(handle)


def test_a_firefox_worker_reports_the_screen_of_its_resolution(page):
    handle = Firefox.start_worker(WorkerSpec(browser="firefox", url=page.url + "/",
                                             width=WIDTH, height=HEIGHT), SETTINGS).handle
    try:
        assert f"{WIDTH}x{HEIGHT}x24" in xvfb(handle.display_pid)
        held = Firefox.hold(handle)
        try:
            seen = held.client.execute_script(f"return [...{SCREEN}, innerWidth]")
        finally:
            held.close()
        assert seen[:3] == [WIDTH, HEIGHT, 24] and seen[4] == WIDTH  # not 1366x768
        assert "Firefox/" in seen[3]
    finally:
        Firefox.stop(handle)
    assert_gone(handle)


def test_a_recorded_worker_is_a_video_of_its_display_which_goes_with_it(tmp_path,
                                                                       sqlite_url, page):
    with another_farm(tmp_path, "video", sqlite_url) as v5, \
            started_runner(v5.farm, "video-runner"):
        made = v5("POST", "/5/worker", json=chromium_request(
            v5, url=page.url + "/", resolution=f"{WIDTH}x{HEIGHT}",
            **{"browserstack.video": True})).get_json()
        assert made["status"] == "running", made
        stored = worker_row(v5.farm, made["id"]).handle
        display = stored["displayPid"]
        assert xvfb(display)
        wait_for(lambda: worker_row(v5.farm, made["id"]).status == "terminated", timeout=60)
        video = wait_for(lambda: (r := v5("GET", f"/5/worker/{made['id']}/video"))
                         .status_code == 200 and r, timeout=30)
        assert not xvfb(display) and not Path(stored["xauthority"]).exists()
    assert video.mimetype == "video/mp4"
    path = tmp_path / "downloaded.mp4"
    path.write_bytes(video.data)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    stream = probe["streams"][0]
    # The whole screen, not the viewport screenshots show (a toolbar shorter).
    assert stream["codec_name"] == "h264"
    assert (int(stream["width"]), int(stream["height"])) == (WIDTH, HEIGHT)
    assert int(stream["nb_frames"]) >= 10  # frames grabbed, not two screenshots a second
    assert float(probe["format"]["duration"]) >= 60 * SCALE - 1


def test_a_runner_killed_with_9_leaves_no_display_once_restarted(tmp_path, page):
    """A real `browserfarm runner` with a Chromium worker and a warm Chromium: after
    kill -9 their displays outlive it; the restarted runner stops them."""
    data_dir = tmp_path / "runner-data"
    env = {**os.environ, "BROWSERFARM_WORKER_TIME_SCALE": "1",
           "BROWSERFARM_WARM_POOL": "chromium=1"}
    env.pop("DATABASE_URL", None)
    farm = make_farm(data_dir, f"sqlite:///{data_dir.resolve()}/browserfarm.db")

    def start_runner():
        return subprocess.Popen([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                                 str(data_dir), "runner", "--name", "killed"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def displays() -> set[int]:
        return {pid for pid in processes.with_env(MARK_VARIABLE, f"killed@{data_dir.resolve()}")
                if xvfb(pid)}

    try:
        new = in_db(farm, lambda: create_account(farm, "killed"))
        client = V5(create_app(farm=farm).test_client(), new.v5_username, new.v5_access_key)
        runner = start_runner()
        wait_for(lambda: in_db(farm, lambda: Runner.select().where(
            Runner.name == "killed").exists()))
        made = client("POST", "/5/worker",
                      json=chromium_request(client, url=page.url + "/")).get_json()
        assert made["status"] == "running", made
        stored = worker_row(farm, made["id"]).handle
        wait_for(lambda: len(displays()) >= 2)  # the worker's and the warm browser's
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(30)
        time.sleep(1)
        left = displays()
        assert stored["displayPid"] in left and len(left) >= 2  # orphaned, still running
        cookies = [Path(psutil.Process(pid).cmdline()[
            psutil.Process(pid).cmdline().index("-auth") + 1]) for pid in left]
        restarted = start_runner()
        try:
            wait_for(lambda: worker_row(farm, made["id"]).status == "terminated")
            wait_for(lambda: not (left & displays()))
            assert not [c for c in cookies if c.exists()]
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(90)
        assert not displays()
    finally:
        farm.close()
