"""The worker side of the chromium and selenium-grid backends, with real browsers:
Debian's Chromium under a chromedriver of its own, and Chromium on a real Selenium
Grid 4. After the start, everything goes through the JSON handle alone, as the runner
and the API processes do, also from other processes."""
import contextlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from selenium.common.exceptions import InvalidSessionIdException

from browserfarm.browsers import processes, remote
from browserfarm.browsers.backends import WorkerSpec, free_port
from browserfarm.browsers.handles import Handle
from browserfarm.config import load_settings
from browserfarm_plugins.chromium import Chromium, chromium_args
from browserfarm_plugins.firefox import Firefox
from browserfarm_plugins.selenium_grid import SeleniumGrid, capabilities, v5_os
from tests.conftest import needs_firefox
from tests.servers import Dribbler, _descendants

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
WIDTH, HEIGHT = 900, 700


@pytest.fixture(params=["chromium", "selenium-grid"])
def backend(request):
    """(backend class, settings); the Grid one on the session's real Grid."""
    if request.param == "chromium":
        return Chromium, load_settings({}, environ={})
    grid = request.getfixturevalue("selenium_grid")
    return SeleniumGrid, load_settings({"grid_url": grid}, environ={})


@pytest.fixture
def started():
    """``start(backend, settings, spec)``: a worker, stopped at teardown whatever
    the test did to it."""
    handles = []

    def start(cls, settings, spec):
        launched = cls.start_worker(spec, settings)
        handles.append((cls, launched.handle))
        return launched
    yield start
    for cls, handle in handles:
        cls.stop(handle, timeout=10)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert png[:8] == PNG and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def page(handle) -> list:
    return remote.execute(handle.executor, handle.session,
                             "return [location.href, document.body.textContent,"
                             " innerWidth, innerHeight]")


def in_another_process(code: str, handle: Handle) -> str:
    """Runs code with ``handle`` (as JSON) in a fresh interpreter; its stdout."""
    done = subprocess.run([sys.executable, "-c", code, json.dumps(handle.to_json())], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def leftovers(cls, handle, grid=None, wait: float = 5.0) -> list[str]:
    """The processes of a worker still running, after at most ``wait`` seconds:
    chromedriver's process group for chromium, the Grid's chromedriver and Chromium
    children for selenium-grid."""
    deadline = time.monotonic() + wait
    while True:
        if cls is Chromium:
            pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
            found = [pid for pid in pids if _group(pid) == handle.pgid]
        else:
            found = [pid for pid in _descendants(grid.pid)
                     if _command(pid).startswith(("chromedriver", "chromium", "chrome"))]
        found = [f"{pid} {_command(pid)}" for pid in found if processes.alive(pid)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def grid_sessions(url: str, wait: float = 10.0) -> list[dict]:
    """The Grid's sessions, after at most ``wait`` seconds for them to end: a slot is
    freed a moment after its session is deleted."""
    deadline = time.monotonic() + wait
    while True:
        sessions = [slot["session"] for node in remote.status(url)["nodes"]
                    for slot in node["slots"] if slot["session"]]
        if not sessions or time.monotonic() > deadline:
            return sessions
        time.sleep(0.1)


def _group(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _command(pid) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# ----- both backends ----------------------------------------------------------------

def test_a_worker_opens_the_page_at_its_size_navigates_and_ends(backend, origin, started,
                                                               request):
    cls, settings = backend
    launched = started(cls, settings, WorkerSpec(browser="chrome", os="Linux",
                                                 url=origin.url + "/", width=WIDTH,
                                                 height=HEIGHT, timeout=60))
    handle = launched.handle
    # it goes to the database
    assert Handle.from_json(json.loads(json.dumps(handle.to_json()))) == handle
    assert handle.backend == cls.name and handle.session
    # The window is the worker's size (its resolution, as in Firefox); the viewport,
    # what the page sees and screenshots show, is that less the browser's own bars.
    url, text, inner_width, inner_height = page(handle)
    assert [url, text, inner_width] == [origin.url + "/", "hello from origin", WIDTH]
    assert HEIGHT - 200 < inner_height <= HEIGHT
    assert png_size(cls.screenshot(handle)) == (WIDTH, inner_height)

    cls.navigate(handle, origin.url + "/second", timeout=30)
    assert page(handle)[:2] == [origin.url + "/second", "not found"]
    assert [path for _, path, _ in origin.requests if path != "/favicon.ico"] \
        == ["/", "/second"]
    assert cls.alive(handle) is True
    grid = request.getfixturevalue("selenium_grid") if cls is SeleniumGrid else None
    assert leftovers(cls, handle, grid, wait=0)  # the check below sees real processes

    assert cls.stop(handle) is False  # ended politely, nothing had to be killed
    assert cls.alive(handle) is False
    assert leftovers(cls, handle, grid) == []
    if grid:
        assert grid_sessions(grid) == []
    assert cls.stop(handle) is False  # again: harmless
    with pytest.raises((InvalidSessionIdException, remote.Unreachable)):
        cls.screenshot(handle)


def test_any_process_drives_a_worker_through_its_handle(backend, origin, started):
    cls, settings = backend
    handle = started(cls, settings, WorkerSpec(browser="chrome", url=origin.url + "/",
                                               width=WIDTH, height=HEIGHT)).handle
    module = cls.__module__
    out = in_another_process(f"""
import json, struct, sys
from {module} import {cls.__name__} as B
from browserfarm.browsers.handles import Handle
handle = Handle.from_json(json.loads(sys.argv[1]))
B.navigate(handle, {origin.url + "/from-elsewhere"!r}, timeout=30)
png = B.screenshot(handle)
print(json.dumps([B.alive(handle), png[:4].hex(), struct.unpack(">II", png[16:24])[0]]))
""", handle)
    assert json.loads(out) == [True, PNG[:4].hex(), WIDTH]
    assert page(handle)[0] == origin.url + "/from-elsewhere"

    in_another_process(f"""
import json, sys
from {module} import {cls.__name__} as B
from browserfarm.browsers.handles import Handle
assert B.stop(Handle.from_json(json.loads(sys.argv[1]))) is False
""", handle)
    assert cls.alive(handle) is False


def test_a_page_that_does_not_load_is_shown_as_the_browser_shows_it(backend, started):
    # As for a user: the worker runs, showing the browser's error page.
    cls, settings = backend
    handle = started(cls, settings, WorkerSpec(browser="chrome", width=WIDTH, height=HEIGHT,
                                               url=f"http://127.0.0.1:{free_port()}/",
                                               timeout=30)).handle
    assert cls.alive(handle)
    assert png_size(cls.screenshot(handle))[0] == WIDTH


# ----- chromium ---------------------------------------------------------------------

SETTINGS = load_settings({}, environ={})


def test_chromium_left_behind_by_its_dead_starter_is_reaped_through_the_handle(origin):
    """The runner that started the worker died with SIGKILL: only the stored handle
    is left, and it is enough to use the browser and to end all of it."""
    starter = subprocess.run([sys.executable, "-c", f"""
import json, os, signal
from browserfarm.browsers.backends import WorkerSpec
from browserfarm.config import load_settings
from browserfarm_plugins.chromium import Chromium
launched = Chromium.start_worker(WorkerSpec(browser="chromium", url={origin.url + "/"!r}),
                                 load_settings({{}}, environ={{}}))
print(json.dumps(launched.handle.to_json()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert starter.returncode == -signal.SIGKILL, starter.stderr
    handle = Handle.from_json(json.loads(starter.stdout))
    try:
        assert Chromium.alive(handle) and page(handle)[1] == "hello from origin"
        assert png_size(Chromium.screenshot(handle))[0] == 1024  # WorkerSpec's default
    finally:
        assert Chromium.stop(handle) is False
    assert leftovers(Chromium, handle) == []
    assert not Path(handle.temp_dir).exists()


def test_chromium_whose_chromedriver_was_killed_is_killed_by_stop(origin, started):
    handle = started(Chromium, SETTINGS, WorkerSpec(browser="chromium",
                                                    url=origin.url + "/")).handle
    assert handle.browser_pid != handle.pids[0]
    os.kill(handle.pids[0], signal.SIGKILL)
    assert Chromium.alive(handle) is False  # no driver: no session
    assert processes.alive(handle.browser_pid)  # but Chromium runs on, orphaned
    assert Chromium.stop(handle, timeout=10) is True
    assert leftovers(Chromium, handle) == []


def test_a_chromium_worker_wears_its_fingerprint_in_its_own_profile(origin, started, tmp_path):
    fingerprint = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) BrowserFarmTest/1.0",
                   "languages": "de-DE,de", "timeZone": "Asia/Tokyo"}
    handle = started(Chromium, SETTINGS, WorkerSpec(
        browser="chromium", url=origin.url + "/", fingerprint=fingerprint,
        log_path=tmp_path / "chromedriver.log")).handle
    seen = remote.execute(handle.executor, handle.session, """return [
        navigator.userAgent, navigator.languages,
        Intl.DateTimeFormat().resolvedOptions().timeZone, screen.width, screen.height]""")
    assert seen == [fingerprint["userAgent"], ["de-DE", "de"], "Asia/Tokyo", 1024, 768]
    # Its profile is its own, in a short temporary directory that stop() removes.
    temp_dir = Path(handle.temp_dir)
    assert list(temp_dir.glob("org.chromium.Chromium.*/Default"))
    Chromium.stop(handle)
    assert not temp_dir.exists()


def _status(pid: int) -> dict:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.split() for k, v in (line.split(":", 1) for line in lines)}


def _chromium_processes(handle) -> dict[int, str]:
    """pid -> command line of the worker's processes (Chromium rewrites its argv
    into one string)."""
    return {pid: " ".join(processes.cmdline(pid) or [])
            for pid in processes.in_group(handle.pgid, handle.starts[str(handle.pgid)])}


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, browsers change user")
def test_a_chromium_worker_run_as_root_runs_as_the_browser_user_with_its_sandbox(
        origin, started, monkeypatch):
    user = processes.browser_user(SETTINGS.browser_user)
    monkeypatch.setenv("BROWSERFARM_SECRET_KEY", "not for the browser user")
    handle = started(Chromium, SETTINGS, WorkerSpec(
        browser="chromium", url=origin.url + "/", env={"BROWSERFARM_RUNNER": "mark"})).handle
    assert Chromium.screenshot(handle)[:8] == PNG
    found = _chromium_processes(handle)
    renderers = [pid for pid, line in found.items() if "--type=renderer" in line]
    assert renderers and handle.pids[0] in found and handle.browser_pid in found
    assert not [line for line in found.values() if "--no-sandbox" in line]
    for pid in found:  # chromedriver and all of Chromium: the user, none of root's groups
        assert _status(pid)["Uid"] == [str(user.uid)] * 4, found[pid]
        assert _status(pid)["Groups"] == [], found[pid]
    own_namespace = os.readlink("/proc/self/ns/user")
    for pid in renderers:  # sandboxed: a user namespace of its own, seccomp, no setuid
        assert os.readlink(f"/proc/{pid}/ns/user") != own_namespace
        assert _status(pid)["Seccomp"] == ["2"] and _status(pid)["NoNewPrivs"] == ["1"]
    # Its directory (profile, HOME) is the user's alone; our secrets are not in its
    # environment, the runner's mark is.
    temp_dir = os.stat(handle.temp_dir)
    assert (temp_dir.st_uid, temp_dir.st_mode & 0o777) == (user.uid, 0o700)
    environ = Path(f"/proc/{handle.pids[0]}/environ").read_bytes().split(b"\0")
    assert b"BROWSERFARM_RUNNER=mark" in environ
    assert not [v for v in environ if v.startswith(b"BROWSERFARM_SECRET_KEY")]
    assert b"HOME=" + handle.temp_dir.encode() in environ
    Chromium.stop(handle)
    assert not Path(handle.temp_dir).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, browsers change user")
@needs_firefox()
def test_a_firefox_worker_run_as_root_runs_as_the_browser_user(origin, started, tmp_path,
                                                               monkeypatch):
    """Marionette takes anyone local: a worker's Firefox must read no more than the
    browser user may, not the data dir's secret.key; our environment stays ours."""
    user = processes.browser_user(SETTINGS.browser_user)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_text("the farm's secret key")
    (data / "secret.key").chmod(0o600)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not for the browser user")
    monkeypatch.setenv("BROWSERFARM_SECRET_KEY", "nor this")
    handle = started(Firefox, SETTINGS, WorkerSpec(
        browser="firefox", url=origin.url + "/", env={"BROWSERFARM_RUNNER": "mark"})).handle
    assert Firefox.screenshot(handle)[:8] == PNG
    found = [handle.pid] + [p.pid for p in psutil.Process(handle.pid).children(recursive=True)]
    assert len(found) > 1  # content processes too
    for pid in found:
        assert psutil.Process(pid).uids() == (user.uid,) * 3, pid
        assert _status(pid)["Groups"] == [], pid
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"BROWSERFARM_RUNNER=mark" in environ
        assert not [v for v in environ if v.startswith((b"AWS_", b"BROWSERFARM_SECRET"))]
    profile = os.stat(handle.profile_dir)
    assert (profile.st_uid, profile.st_mode & 0o777) == (user.uid, 0o700)
    assert not Path(handle.profile_dir).is_relative_to(data)

    # Anyone local can drive it, as this test does: its pages cannot read the data
    # dir (its listing shows secret.key to a root Firefox; secret.key itself, no text
    # type, a Firefox would download rather than show).
    client = Firefox.attach(handle, timeout=20)
    try:
        with contextlib.suppress(Exception):  # an error page, or an error
            client.navigate(data.as_uri() + "/")
        assert "secret.key" not in client.execute_script(
            "return document.documentElement.outerHTML")
    finally:
        client.delete_session()
    Firefox.navigate(handle, origin.url + "/")  # still works
    assert Firefox.screenshot(handle)[:8] == PNG
    Firefox.stop(handle)
    assert not Path(handle.profile_dir).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, browsers change user")
def test_chromium_as_root_runs_without_its_sandbox_only_when_told(origin, started):
    as_root = load_settings({"browser_user": "root"}, environ={})
    with pytest.raises(RuntimeError, match="BROWSERFARM_CHROMIUM_NO_SANDBOX=1"):
        Chromium.start_worker(WorkerSpec(browser="chromium", url=origin.url + "/"), as_root)
    with pytest.raises(RuntimeError, match="make setup"):
        Chromium.start_worker(WorkerSpec(browser="chromium", url=origin.url + "/"),
                              load_settings({"browser_user": "bf-nobody-here"}, environ={}))
    told = load_settings({"browser_user": "root", "chromium_no_sandbox": True}, environ={})
    handle = started(Chromium, told, WorkerSpec(browser="chromium",
                                                url=origin.url + "/")).handle
    assert page(handle)[1] == "hello from origin"
    assert "--no-sandbox" in _chromium_processes(handle)[handle.browser_pid]
    assert _status(handle.browser_pid)["Uid"][0] == "0"


NO_NESTED_USER_NAMESPACES = r"""
import ctypes, json, sys
from browserfarm.browsers.backends import WorkerSpec
from browserfarm.config import load_settings
from browserfarm_plugins.chromium import Chromium
assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0  # CLONE_NEWUSER
print("ready", flush=True)
sys.stdin.readline()  # the test mapped every uid and gid to itself: we are root here
with open("/proc/sys/user/max_user_namespaces", "w") as limit:  # of this namespace only
    limit.write("0")
try:
    launched = Chromium.start_worker(WorkerSpec(browser="chromium", url=sys.argv[1]),
                                     load_settings({}, environ={}))
    Chromium.stop(launched.handle)
    print("started")
except RuntimeError as exc:
    print(exc)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="maps uids into a user namespace")
def test_chromium_where_user_namespaces_are_not_allowed_fails_naming_the_setting(origin):
    # In a user namespace that allows no nested ones, as on a host that forbids
    # unprivileged user namespaces: never silently without the sandbox.
    child = subprocess.Popen([sys.executable, "-c", NO_NESTED_USER_NAMESPACES,
                              origin.url + "/"], cwd=ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == "ready\n"
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{child.pid}/{name}").write_text("0 0 4294967295")
        out, _ = child.communicate("go\n", timeout=120)
    finally:
        child.kill()
    assert "user namespaces" in out and "BROWSERFARM_CHROMIUM_NO_SANDBOX=1" in out, out


def test_chromium_arguments():
    args = chromium_args(WorkerSpec(browser="chromium", width=800, height=600,
                                    profile_dir=Path("/p"), relay_port=4321))
    for flag in ("--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-position=0,0", "--window-size=800,599",
                 "--proxy-server=socks5://127.0.0.1:4321"):
        assert flag in args
    # Headed on its own display here (a row less than its screen, which Chromium would
    # shrink both ways); headless only on a Grid's node.
    assert "--headless" not in args
    assert "--headless" in chromium_args(WorkerSpec(browser="chromium"), local=False)
    assert "--no-sandbox" not in args  # only where the operator allows it:
    assert "--no-sandbox" in chromium_args(WorkerSpec(browser="chromium"), sandbox=False)
    # socks5:// already resolves names through the proxy: no resolver rules.
    assert not [a for a in args if a.startswith("--host-resolver-rules")]
    assert not [a for a in chromium_args(WorkerSpec(browser="chromium"))
                if a.startswith(("--proxy-server", "--user-data-dir"))]


def test_the_chromium_catalogue_lists_the_installed_version_as_chromium_and_chrome():
    version = subprocess.run(["chromium", "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    major = re.search(r"(\d+)\.\d+\.\d+", version).group(1)
    codename = re.search(r"^VERSION_CODENAME=(\w+)", Path("/etc/os-release").read_text(),
                         re.M).group(1)
    entry = {"os": "Linux", "os_version": codename, "browser_version": f"{major}.0",
             "device": None, "real_mobile": None}
    assert Chromium.catalogue(SETTINGS) == [entry | {"browser": "chromium"},
                                            entry | {"browser": "chrome"}]
    assert Chromium.unavailable_reason() is None


# ----- selenium-grid ----------------------------------------------------------------

def test_the_grid_catalogue_comes_from_its_slots(selenium_grid):
    # Two slots of one stereotype, no browserVersion: one entry, any version.
    assert SeleniumGrid.catalogue(load_settings({"grid_url": selenium_grid}, environ={})) \
        == [{"os": "Linux", "os_version": "any", "browser": "chrome",
             "browser_version": "latest", "device": None, "real_mobile": None}]


def test_no_grid_or_an_unreachable_one_offers_nothing():
    assert SeleniumGrid.unavailable_reason() is None
    assert SeleniumGrid.catalogue(load_settings({}, environ={})) == []
    began = time.monotonic()
    unreachable = load_settings({"grid_url": f"http://127.0.0.1:{free_port()}"}, environ={})
    assert SeleniumGrid.catalogue(unreachable) == []
    assert time.monotonic() - began < 5
    with pytest.raises(RuntimeError, match="relay"):  # it would go around the proxy
        SeleniumGrid.start_worker(WorkerSpec(browser="chrome", relay_port=1080), unreachable)


def test_grid_platforms_and_capabilities():
    assert v5_os("linux") == v5_os("LINUX") == ("Linux", "any")
    assert v5_os("WIN10") == v5_os("Windows 10") == ("Windows", "10")
    assert v5_os("WIN8_1") == ("Windows", "8.1")
    assert v5_os("HIGH_SIERRA") == ("OS X", "High Sierra")
    assert v5_os("mac") == ("OS X", "any")
    caps = capabilities(WorkerSpec(browser="chrome", browser_version="latest", os="Linux",
                                   os_version="any", width=800, height=600,
                                   profile_dir=Path("/p"), timeout=30))
    assert caps["browserName"] == "chrome" and "browserVersion" not in caps
    assert caps["platformName"] == "linux" and caps["timeouts"] == {"pageLoad": 30000}
    args = caps["goog:chromeOptions"]["args"]
    assert "--headless" in args and "--window-size=800,600" in args
    assert not [a for a in args if a.startswith("--user-data-dir")]  # local paths stay here
    assert capabilities(WorkerSpec(browser="edge", browser_version="120.0"))["browserVersion"] \
        == "120.0"


def test_a_driver_answering_a_byte_a_second_ends_by_the_commands_deadline():
    # Per-read timeouts never fire on a byte a second: the command's own deadline does.
    dribbler = Dribbler(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 120)
    executor = f"http://{dribbler.host}:{dribbler.port}"
    try:
        for _ in range(2):  # and again on the same pool
            started = time.monotonic()
            with pytest.raises(remote.Unreachable, match="no answer within 2 s"):
                remote.status(executor, timeout=2)
            assert time.monotonic() - started < 10  # not the 2 minutes of the dribble
    finally:
        remote.forget(executor)
        dribbler.stop()
