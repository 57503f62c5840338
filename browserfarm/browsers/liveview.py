"""The live view: a VNC server (Debian's x11vnc) on a browser's own virtual display,
reached by the dashboard's viewer (noVNC) through a WebSocket the app bridges to it.

One x11vnc per display, started when its first viewer comes rather than with every
display: a browser nobody watches costs nothing, and no backend's start or stop changes.
It ends by itself, so there is nothing to reap after a crash: when its last viewer
leaves (no ``-forever``; a dashboard killed closes its viewers' connections), when no
viewer comes within START_TIMEOUT, and when its display goes.

Security: x11vnc listens on a Unix socket only (no TCP port another local user could
reach), in the data dir's 0700 ``live-view/`` folder, and is made 0600; it reaches the
display with the display's own cookie file. Only the app (the dashboard's signed-in
session, or a share link) bridges a viewer to it.

``Target`` is what a bridge connects to: a display on this machine (``LocalDisplay``),
or one on an agent's machine reached through the agent's own outbound connection
(``browserfarm.services.live_tunnel``).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from browserfarm.datadir import DataDir

log = logging.getLogger(__name__)

START_TIMEOUT = 20  # seconds x11vnc waits for its first viewer before it ends
CHUNK = 64 * 1024
ALLOWED_EVERY = 5.0  # s between looks at whether a view may go on (its token revoked?)
# A viewer's CPU follows its frame rate (docs/benchmarks.md, liveview), and the VNC
# server sends one update per request of the viewer's. So the dashboard's bridge gives
# a view nobody has taken over at most one update every FRAME_EVERY s: it holds the
# viewer's request that long after the one before. A change on a still screen is not
# delayed (its request already waits at the server); input lifts the cap for
# TAKEN_OVER_FOR s.
FRAME_EVERY = 1 / 12
TAKEN_OVER_FOR = 3.0


class Unavailable(RuntimeError):
    """No live view of this browser: no display here, x11vnc missing or failing."""


class Target(Protocol):
    """Where a viewer's bytes go: a connected stream to an RFB (VNC) server."""

    def connect(self, timeout: float = 10.0) -> socket.socket: ...


@dataclass(frozen=True)
class LocalDisplay:
    """A virtual display on this machine (browserfarm.browsers.display), by what a
    handle records: its name (":N") and cookie file."""
    display: str
    xauthority: str | None
    data: DataDir

    @classmethod
    def of(cls, handle, data: DataDir) -> "LocalDisplay | None":
        """The display a browser's handle records; None for a browser without one
        (headless, a desktop's, a Grid's)."""
        name = getattr(handle, "display", None)
        return cls(name, getattr(handle, "xauthority", None), data) if name else None

    @property
    def socket_path(self):
        # The cookie file is new for every display, so a display number used again
        # later never reaches an x11vnc left on an earlier one's socket.
        key = hashlib.blake2s(f"{self.display}\0{self.xauthority}".encode(),
                              digest_size=8).hexdigest()
        return self.data.live_view_socket(key)

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A connection to this display's x11vnc, started if none runs. Viewers of one
        display share one x11vnc; a lock file keeps two starts (gunicorn's workers,
        threads) from racing."""
        path = self.socket_path
        self.data.make_folder(path.parent)
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = _connect(path)
            if sock is None:
                path.unlink(missing_ok=True)  # an ended x11vnc's
                self._start(path, timeout)
                sock = _connect(path)
            if sock is None:
                raise Unavailable(f"the VNC server of display {self.display} does not answer")
            return sock

    def _start(self, path, timeout: float) -> None:
        if shutil.which("x11vnc") is None:
            raise Unavailable("x11vnc is not installed (Debian's x11vnc; make setup)")
        env = dict(os.environ, DISPLAY=self.display)
        env.pop("XAUTHORITY", None)
        region = browser_window(self.display, self.xauthority)
        command = ["x11vnc", "-display", self.display,
                   *(["-auth", self.xauthority] if self.xauthority else []),
                   # Only the browser's window: its screen (the fingerprint's, up to
                   # 8K) is mostly empty around it, and a whole-screen view scaled into
                   # a page made the window a small rectangle in a corner. x11vnc
                   # shifts the viewer's pointer by the region's offset itself.
                   *(["-clip", region] if region else []),
                   "-unixsock", str(path),
                   "-rfbport", "0", "-rfbportv6", "-1", "-no6",  # no TCP at all
                   "-shared", "-timeout", str(START_TIMEOUT),  # no -forever: see above
                   "-nopw", "-norc", "-noremote", "-nocmds", "-quiet",
                   # Xvfb may run as the browsers' user: its shared memory is not ours
                   "-noshm",
                   # ms between screen polls, and from a change to its update. With
                   # the bridge's frame cap (FRAME_EVERY) x11vnc's polling is most of a
                   # viewer's cost (bench/liveview.py, an animating page): 25/15 gave
                   # 6.4-7.0% of a core, 40/15 5.2-5.7%, a change seen 96 ms later (p50)
                   # instead of 72
                   "-wait", "40", "-defer", "15"]
        log_path = self.data.prepare(self.data.logs / "live-view.log")
        with open(log_path, "ab") as out:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=out, env=env, start_new_session=True)
        threading.Thread(target=process.wait, daemon=True,  # reaped when it ends
                         name=f"x11vnc-{process.pid}").start()
        deadline = time.monotonic() + timeout
        while not path.exists():
            if process.poll() is not None:
                raise Unavailable(f"x11vnc on display {self.display} exited at start "
                                  f"(code {process.returncode}; see {log_path})")
            if time.monotonic() > deadline:
                process.kill()
                raise Unavailable(f"x11vnc on display {self.display} did not start "
                                  f"within {timeout:g} s")
            time.sleep(0.02)
        os.chmod(path, 0o600)


# `xwininfo -root -children`: a child's line ends with its size, its position in its
# parent, and its absolute one ("1200x800+0+0  +0+0"; negatives as "+-100").
_CHILD = re.compile(r"(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)\s*$", re.M)
_ROOT_SIZE = re.compile(r"^\s*Width: (\d+)\s*^\s*Height: (\d+)", re.M)


def browser_window(display: str, xauthority: str | None) -> str | None:
    """The part of ``display``'s screen its browser's window covers, as x11vnc's
    ``-clip`` takes it ("WxH+X+Y"): the largest top-level window (a browser's others
    are unmapped 10x10 ones), within the screen. None when that is the whole screen,
    or it is not known (x11-utils' xwininfo missing, no window yet): the whole screen
    is shown then."""
    if shutil.which("xwininfo") is None:
        log.warning("xwininfo is not installed (Debian's x11-utils): the live view of "
                    "display %s shows its whole screen", display)
        return None
    env = {"PATH": os.environ.get("PATH", ""), "DISPLAY": display,
           **({"XAUTHORITY": xauthority} if xauthority else {})}
    try:
        root, children = (subprocess.run(
            ["xwininfo", "-root", *extra], env=env, capture_output=True, text=True,
            timeout=10, check=True).stdout for extra in ([], ["-children"]))
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("no window geometry on display %s: %s", display, error)
        return None
    screen = _ROOT_SIZE.search(root)
    windows = [tuple(map(int, found)) for found in _CHILD.findall(children)]
    if not screen or not windows:
        return None
    screen_width, screen_height = map(int, screen.groups())
    width, height, x, y = max(windows, key=lambda w: w[0] * w[1])
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + width, screen_width), min(y + height, screen_height)
    if right - left < 100 or bottom - top < 100:  # no browser window on the screen
        return None
    if (left, top, right, bottom) == (0, 0, screen_width, screen_height):
        return None
    return f"{right - left}x{bottom - top}+{left}+{top}"


def _connect(path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _is_update_request(data: bytes) -> bool:
    """An RFB FramebufferUpdateRequest (type 3), incremental: noVNC asks for the next
    update with one after each it drew, alone in a WebSocket message."""
    return len(data) == 10 and data[0] == 3 and data[1] == 1


def bridge(receive: Callable[[float], bytes | str | None], send: Callable[[bytes], None],
           sock: socket.socket, until: float | None = None,
           allowed: Callable[[], bool] | None = None,
           frame_every: float | None = None) -> None:
    """Carry bytes between a viewer (``receive(timeout)`` -> bytes, None when nothing
    came within it, raising when the viewer left; ``send(bytes)``) and the VNC server
    ``sock`` until either side ends, ``until`` (a time.time()) passes (a share link's
    view ends with the link), or ``allowed()``, asked every ALLOWED_EVERY seconds, says
    no more (the token behind the view was revoked). With ``frame_every`` (the hop
    facing the viewer) a view not taken over gets an update at most that often."""
    done = threading.Event()

    def server_to_viewer():
        try:
            while not done.is_set():
                data = sock.recv(CHUNK)
                if not data:
                    break
                send(data)
        except Exception:  # noqa: BLE001 - either side gone: the view ends
            pass
        finally:
            done.set()

    pump = threading.Thread(target=server_to_viewer, daemon=True, name="live-view")
    pump.start()
    next_look = time.monotonic() + ALLOWED_EVERY
    last_request = full_rate_until = 0.0
    try:
        while not done.is_set() and (until is None or time.time() < until):
            if allowed is not None and time.monotonic() >= next_look:
                if not allowed():
                    break
                next_look = time.monotonic() + ALLOWED_EVERY
            data = receive(1.0)
            if data is None:
                continue
            if isinstance(data, str):
                data = data.encode()
            if frame_every and _is_update_request(data):
                now = time.monotonic()
                if now >= full_rate_until:
                    time.sleep(max(0.0, last_request + frame_every - now))
                last_request = time.monotonic()
            else:  # input (or the handshake): a person at the controls
                full_rate_until = time.monotonic() + TAKEN_OVER_FOR
            sock.sendall(data)
    except Exception:  # noqa: BLE001 - the viewer left, or the server did
        pass
    finally:
        done.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        pump.join(5)
