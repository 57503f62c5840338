"""Virtual X displays (browserfarm.browsers.display): a real Xvfb of the size and colour
depth asked, that only holders of its cookie may use, gone without a trace at stop."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from browserfarm.agent import Agent, Login
from browserfarm.browsers import processes
from browserfarm.browsers.backends import LaunchSpec
from browserfarm.browsers.display import (LINGER, X11_DIR, XAUTH_PREFIX, TooLarge,
                                          VirtualDisplay, stop_display)
from browserfarm.browsers.handles import Handle
from browserfarm.config import Settings, load_settings
from browserfarm.datadir import DataDir
from browserfarm.plugins import load_plugins
from browserfarm_plugins.firefox import Firefox
from tests.conftest import free_port, needs_firefox, require_executable
# The Local API's fixtures: a cloud on a real server, an agent, a caller of its API.
from tests.test_local import (AgentProcess, agent, cloud, cloud_call, local,  # noqa: F401
                              window_handle)

firefox = needs_firefox()


@pytest.fixture
def window_display():
    """Not headless as in other tests (conftest): the default, end to end (here, with no
    DISPLAY, a display of each window's own)."""
    return "auto"


def _x_screen(display: VirtualDisplay, monkeypatch, xauthority: str | None = None):
    """(width, height, depth) of the display's screen, as an X client sees it."""
    from Xlib import display as xlib_display
    monkeypatch.setenv("XAUTHORITY", xauthority or display.xauthority)
    client = xlib_display.Display(display.name)
    try:
        screen = client.screen()
        return screen.width_in_pixels, screen.height_in_pixels, screen.root_depth
    finally:
        client.close()


def _traces(display: VirtualDisplay) -> list:
    """What a display leaves on the machine: its process, socket, cookie file."""
    number = display.name.lstrip(":")
    return [what for what, there in (
        ("process", processes.alive(display.pid)),
        ("socket", (X11_DIR / f"X{number}").exists()),
        ("cookie", Path(display.xauthority).exists())) if there]


def test_a_display_has_the_size_asked_and_stops_without_a_trace(monkeypatch):
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(1600, 900, 24)
    try:
        assert display.name.startswith(":") and display.env() == {
            "DISPLAY": display.name, "XAUTHORITY": display.xauthority}
        assert _x_screen(display, monkeypatch) == (1600, 900, 24)
        # No TCP: only the local socket.
        assert not psutil.Process(display.pid).net_connections(kind="inet")
        # Without its cookie a client is refused (any other local user).
        with pytest.raises(Exception, match="(?i)authori"):
            _x_screen(display, monkeypatch, xauthority="/nonexistent")
        other = VirtualDisplay.start(800, 600)
        try:
            assert other.name != display.name
            assert _x_screen(other, monkeypatch) == (800, 600, 24)
        finally:
            other.stop()
        assert _traces(other) == []
    finally:
        display.stop()
    assert _traces(display) == []


def test_a_killed_display_is_reaped_by_pid_and_only_ours():
    """A display whose agent died: stop_display(pid) stops it and removes its files, even
    when it must be killed; a pid that is not one of our Xvfb is left alone."""
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(1024, 768)
    os.kill(display.pid, 19)  # SIGSTOP: deaf to SIGTERM, so SIGKILL it is
    assert stop_display(display.pid, timeout=1) is True
    assert _traces(display) == []
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert stop_display(sleeper.pid) is False
        assert processes.alive(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_display_killed_from_outside_leaves_no_socket():
    """An Xvfb SIGKILLed by someone else (the OOM killer) cannot remove its socket:
    stopping it by its stored pid, cookie and name removes it, as nothing listens."""
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(1024, 768)
    os.kill(display.pid, 9)
    assert processes.wait_gone([display.pid], 5) == []  # reaped
    assert _traces(display) == ["socket", "cookie"]
    assert stop_display(display.pid, display.xauthority, display.name) is False
    assert _traces(display) == []


def test_a_live_display_socket_is_never_removed_as_stale():
    """The name alone (a display whose pid is gone) removes no socket a server holds."""
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(640, 480)
    try:
        sleeper = subprocess.Popen(["sleep", "30"])
        sleeper.kill()
        sleeper.wait()
        assert stop_display(sleeper.pid, None, display.name) is False
        assert (X11_DIR / f"X{display.name[1:]}").is_socket()
    finally:
        display.stop()
    assert _traces(display) == []


@pytest.mark.parametrize("width,height", [(7681, 1000), (1000, 7681), (7680, 4321),
                                          (5000, 7000), (32767, 32767), (0, 600)])
def test_a_giant_framebuffer_is_refused_before_any_xvfb(width, height):
    """Xvfb allocates its framebuffer at start: beyond 8K's pixels, a clear error."""
    before = psutil.Process().children()
    with pytest.raises(TooLarge, match="too large"):
        VirtualDisplay.start(width, height)
    assert psutil.Process().children() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="run as root, browsers change user")
def test_a_display_for_the_browser_user_is_its_own(monkeypatch):
    """Run as the browser user (as workers are, when we are root), the display's Xvfb
    and its cookie file are that user's, the file readable by no one else."""
    user = processes.browser_user(Settings().browser_user)
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(1280, 1024, user=user)
    try:
        assert psutil.Process(display.pid).uids().real == user.uid
        info = os.stat(display.xauthority)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (user.uid, 0o600)
        assert _x_screen(display, monkeypatch) == (1280, 1024, 24)
    finally:
        display.stop()
    assert _traces(display) == []


def test_a_display_ends_soon_after_its_last_client(monkeypatch):
    """A browser that crashed leaves no display running: Xvfb ends LINGER seconds after
    its last client goes (not before a first one came); stop() then removes the cookie."""
    require_executable("Xvfb", "Xvfb")
    display = VirtualDisplay.start(800, 600)
    try:
        time.sleep(LINGER + 1)
        assert processes.alive(display.pid)  # no client yet: waiting for its browser
        _x_screen(display, monkeypatch)  # a client comes and goes
        assert processes.wait_gone([display.pid], LINGER + 5) == []
        assert _traces(display) == ["cookie"]
    finally:
        display.stop()
    assert _traces(display) == []


# ----- windows: each on a display of its own (the Local API, real Firefox) -------------

SCREEN = """
const gl = document.createElement('canvas').getContext('webgl');
return {screen: [screen.width, screen.height], avail: [screen.availWidth, screen.availHeight],
        depth: screen.colorDepth, outer: [outerWidth, outerHeight], ratio: devicePixelRatio,
        fits: matchMedia(`(width: ${innerWidth}px) and (device-width: ${screen.width}px)
                          and (device-height: ${screen.height}px)`).matches,
        wider: matchMedia(`(min-device-width: ${screen.width + 1}px)`).matches,
        webgl: gl !== null}
"""


def _seen(answer: dict) -> dict:
    client = Firefox.attach(window_handle(answer))
    try:
        return client.execute_script(SCREEN)
    finally:
        client.delete_session()


def _our_displays() -> set[int]:
    """Our Xvfb processes running now."""
    return {p.pid for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "Xvfb" and any(XAUTH_PREFIX in a for a in p.info["cmdline"])}


@firefox
def test_each_window_has_a_display_of_its_own_at_its_resolution(local, agent, cloud,
                                                                  monkeypatch):
    """No desktop display here: each window gets its own Xvfb, so a page measures the
    window's resolution (not headless Firefox's 1366x768), its colour depth, media
    queries that agree, the window at openWidth x openHeight (within the screen with
    windowSizeLimit), and WebGL (Mesa). With a devicePixelRatio the screen keeps its size
    in CSS pixels. Close stops the display."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    before = _our_displays()
    wide, retina, limited = (
        cloud_call(cloud, "/browser/update", {"browserFingerPrint": fp})["data"]
        for fp in ({"resolution": "1600 x 900", "openWidth": 1200, "openHeight": 700,
                    "devicePixelRatio": 1},
                   {"resolution": "1440 x 900", "openWidth": 1440, "openHeight": 900,
                    "devicePixelRatio": 2},
                   {"resolution": "1024 x 768", "openWidth": 1400, "openHeight": 700,
                    "devicePixelRatio": 1, "windowSizeLimit": True}))
    opened = {w["uuid"]: local("/browser/open", {"uuid": w["uuid"]}).data
              for w in (wide, retina, limited)}
    handles = {uuid: agent.windows.get(uuid).handle for uuid in opened}
    assert _seen(opened[wide["uuid"]]) == {
        "screen": [1600, 900], "avail": [1600, 900], "depth": 24, "outer": [1200, 700],
        "ratio": 1, "fits": True, "wider": False, "webgl": True}
    assert _seen(opened[retina["uuid"]]) == {
        "screen": [1440, 900], "avail": [1440, 900], "depth": 24, "outer": [1440, 900],
        "ratio": 2, "fits": True, "wider": False, "webgl": True}
    assert _seen(opened[limited["uuid"]])["outer"] == [1024, 700]  # BitBrowser's limit
    displays = {h.display for h in handles.values()}
    assert len(displays) == 3 and None not in displays  # one display each
    assert _our_displays() - before == {h.display_pid for h in handles.values()}
    # The display is Firefox's: its DISPLAY and cookie, nothing of a desktop.
    environ = psutil.Process(opened[wide["uuid"]]["pid"]).environ()
    assert environ["DISPLAY"] == handles[wide["uuid"]].display
    assert environ["XAUTHORITY"] == handles[wide["uuid"]].xauthority

    for uuid in opened:
        local("/browser/close", {"uuid": uuid})
    assert _our_displays() == before
    for handle in handles.values():
        assert not Path(handle.xauthority).exists()


@firefox
@pytest.mark.parametrize("setting, shown", [("auto", "desktop"), ("virtual", "own"),
                                            ("headless", "headless")])
def test_the_window_display_setting(tmp_path, cloud, monkeypatch, setting, shown):
    """On a desktop (DISPLAY set), windows show there by default; the setting puts them
    on displays of their own, or headless."""
    desktop = VirtualDisplay.start(1024, 768)  # the desktop's display
    monkeypatch.setenv("DISPLAY", desktop.name)
    monkeypatch.setenv("XAUTHORITY", desktop.xauthority)
    url, token = cloud
    agent = Agent(tmp_path / "agent", load_plugins(), login=Login(server=url, token=token),
                  window_display=setting)
    try:
        window = cloud_call(cloud, "/browser/update", {
            "browserFingerPrint": {"resolution": "1280 x 1024", "devicePixelRatio": 1}})
        assert "data" in window, window
        window = window["data"]
        opened = agent.open_window({"uuid": window["uuid"]})
        handle = agent.windows.get(window["uuid"]).handle
        environ = psutil.Process(opened["pid"]).environ()
        seen = _seen(opened)
        if shown == "desktop":
            assert handle.display is None and environ["DISPLAY"] == desktop.name
            assert seen["screen"] == [1024, 768]
        elif shown == "own":
            assert handle.display not in (None, desktop.name)
            assert environ["DISPLAY"] == handle.display and seen["screen"] == [1280, 1024]
        else:
            assert handle.display is None and environ.get("MOZ_HEADLESS") == "1"
            assert seen["screen"] == [1366, 768]  # headless Firefox's tell
    finally:
        agent.shutdown()
        desktop.stop()


def test_the_window_display_setting_is_checked_when_read():
    assert load_settings(environ={"BROWSERFARM_WINDOW_DISPLAY": "virtual"}
                         ).window_display == "virtual"
    with pytest.raises(SystemExit, match="BROWSERFARM_WINDOW_DISPLAY"):
        load_settings(environ={"BROWSERFARM_WINDOW_DISPLAY": "xvfb"})


@firefox
def test_a_failed_start_stops_its_display(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    before = _our_displays()
    spec = LaunchSpec(profile_dir=tmp_path / "profile", headless=False, timeout=0.01,
                      fingerprint={"resolution": "800 x 600"})
    with pytest.raises(Exception):
        Firefox.launch(spec)
    assert _our_displays() == before


@firefox
def test_a_restarted_agent_reaps_or_keeps_the_displays_its_windows_left(tmp_path, cloud,
                                                                         monkeypatch):
    """kill -9 of the agent: the window still running is adopted with its display (gone
    at its close); the display of a window whose Firefox died meanwhile is stopped at
    the restart, even while a client still holds it."""
    monkeypatch.delenv("DISPLAY", raising=False)
    url, token = cloud
    data_dir = tmp_path / "desk"
    Login(server=url, token=token, local_token="t").save(data_dir)
    kept, crashed = (cloud_call(cloud, "/browser/update", {})["data"]["uuid"]
                     for _ in range(2))
    agent = AgentProcess(data_dir, free_port())
    try:
        agent.start()
        pids = {uuid: agent.call("/browser/open", {"uuid": uuid})["data"]["pid"]
                for uuid in (kept, crashed)}
        handles = {uuid: Handle.from_json(entry["handle"]) for uuid, entry in json.loads(
            DataDir(data_dir).open_windows.read_text()).items()}
        holder = _hold(handles[crashed], monkeypatch)  # keeps that display in use
        agent.kill()
        os.kill(pids[crashed], 9)
        assert processes.wait_gone([pids[crashed]], 10) == []
        time.sleep(LINGER + 1)
        assert processes.alive(handles[crashed].display_pid)  # held: it outlived Firefox
        assert agent.start()["data"] == {kept: pids[kept]}  # adopted, the other closed
        assert not processes.alive(handles[crashed].display_pid)
        assert not Path(handles[crashed].xauthority).exists()
        with pytest.raises(Exception):  # its server went
            holder.close()
        assert processes.alive(handles[kept].display_pid)
        assert agent.call("/browser/close", {"uuid": kept})["code"] == 0
        assert not processes.alive(handles[kept].display_pid)
        assert not Path(handles[kept].xauthority).exists()
    finally:
        agent.stop()
        for pid in pids.values() if "pids" in locals() else ():
            processes.send(pid, 9)


def _hold(handle, monkeypatch):
    """An X client of the display of ``handle``, kept connected."""
    from Xlib import display as xlib_display
    monkeypatch.setenv("XAUTHORITY", handle.xauthority)
    return xlib_display.Display(handle.display)
