"""Virtual X displays (browserfarm.browsers.display): a real Xvfb of the size and colour
depth asked, that only holders of its cookie may use, gone without a trace at stop."""
from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from browserfarm.browsers import processes
from browserfarm.config import Settings
from browserfarm.browsers.display import LINGER, X11_DIR, VirtualDisplay, stop_display
from tests.conftest import require_executable


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
