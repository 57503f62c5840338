"""A virtual X display (Debian's Xvfb) owned by one browser: its screen is the size and
colour depth the browser claims, so what a page measures (screen, media queries, window
geometry, WebGL through Mesa) is real rather than headless Firefox's 1366x768.

A small launcher of our own rather than PyVirtualDisplay, which cannot give what we
need: it starts Xvfb without ``-auth`` (any local user may connect; its cookie is only
written for clients), sets XAUTHORITY in our own environment even with
manage_global_env=False, cannot run Xvfb as another user, and kills it with SIGKILL,
leaving its socket behind.

Security: no TCP (``-nolisten tcp``); Xvfb runs as the browser's user and admits only
clients that show the cookie in its Xauthority file, a 0600 file of that user's.
"""
from __future__ import annotations

import os
import re
import select
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from browserfarm.browsers import processes

# Xvfb ends this long after its last client (the browser) goes: a browser that crashed
# leaves no display behind, while a start's short-lived probes (Firefox's GL test) may
# come and go before the browser itself connects.
LINGER = 5
XAUTH_PREFIX = "browserfarm-xauth-"  # our cookie files, in TMPDIR: how our Xvfb is known
X11_DIR = Path("/tmp/.X11-unix")  # where every X server puts its socket (fixed by X)
# Xvfb allocates its whole framebuffer at start (8000x8000 took 307 MiB; its 32767x32767
# limit ~4 GiB): no display larger than an 8K screen's pixels (7680x4320: 127 MiB at
# depth 24), nor a side longer than 8K's, whatever resolution x devicePixelRatio asks.
MAX_SIDE = 7680
MAX_PIXELS = 7680 * 4320


class TooLarge(ValueError):
    """A display larger than MAX_SIDE / MAX_PIXELS was asked for."""


def parse_size(text) -> tuple[int, int] | None:
    """``"1920x1080"`` (spaces allowed around the ``x``) -> (1920, 1080); None when
    ``text`` is not a size written that way. The one reader of BitBrowser's
    ``resolution`` and v5's resolutions."""
    found = re.fullmatch(r"\s*([0-9]+)\s*x\s*([0-9]+)\s*", str(text or ""))
    return (int(found[1]), int(found[2])) if found else None


def client_env(name: str, xauthority: str | None = None) -> dict:
    """What an X client's environment needs to reach display ``name`` (":N")."""
    return {"DISPLAY": name} | ({"XAUTHORITY": xauthority} if xauthority else {})


def fits(width: int, height: int) -> bool:
    """Whether a screen of ``width`` x ``height`` device pixels is within the limits."""
    return 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS


@dataclass(frozen=True)
class VirtualDisplay:
    name: str  # ":N", DISPLAY's value
    pid: int  # Xvfb's
    xauthority: str | None = None  # the cookie file a client needs

    @classmethod
    def start(cls, width: int, height: int, depth: int = 24,
              user: processes.User | None = None, log_path: Path | None = None,
              timeout: float = 10.0, env: dict | None = None) -> "VirtualDisplay":
        """An Xvfb with one screen of ``width`` x ``height`` x ``depth``, run as ``user``
        (None: ourselves), on the first free display number (Xvfb picks it, so
        concurrent starts never race for one). ``env``: what its environment gains (a
        runner's mark, by which a restarted runner finds it). Raises TooLarge for a
        screen beyond MAX_SIDE / MAX_PIXELS (device pixels)."""
        if not fits(width, height):
            raise TooLarge(f"a {width}x{height} display is too large: at most {MAX_SIDE} "
                           f"pixels a side and {MAX_PIXELS} in all (7680x4320), counting "
                           "devicePixelRatio")
        xauthority = _cookie_file(user)
        read, write = os.pipe()
        process = None
        try:
            log = open(log_path, "ab") if log_path else subprocess.DEVNULL
            try:
                process = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(write), "-nolisten", "tcp",
                     "-terminate", str(LINGER),
                     "-auth", xauthority, "-screen", "0", f"{width}x{height}x{depth}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write,),
                    start_new_session=True,  # not hit by signals meant for our group
                    **processes.popen_as(user, env))
            finally:
                if log is not subprocess.DEVNULL:
                    log.close()
                os.close(write)
            number = _read_number(read, process, timeout)
        except BaseException:
            if process is not None:
                stop_display(process.pid)
            Path(xauthority).unlink(missing_ok=True)
            raise
        finally:
            os.close(read)
        return cls(name=f":{number}", pid=process.pid, xauthority=xauthority)

    def env(self) -> dict:
        """What a browser's environment needs to use this display."""
        return client_env(self.name, self.xauthority)

    def stop(self) -> None:
        stop_display(self.pid, self.xauthority, self.name)


def stop_display(pid: int, xauthority: str | None = None, name: str | None = None,
                 timeout: float = 5.0) -> bool:
    """Stop the Xvfb ``pid`` and remove its cookie file and socket, if it is one of ours
    (its ``-auth`` is one of our cookie files; ``xauthority``, when given, that one): a
    pid reused since by another process is left alone. Also for a display a dead agent
    or runner left. ``xauthority`` is removed even when its Xvfb ended by itself, and so
    is the socket of display ``name`` (":N") when no server listens on it any more (an
    Xvfb killed from outside, e.g. by the OOM killer, cannot remove it).
    Returns whether there was one of ours to stop."""
    if xauthority and _is_cookie_file(Path(xauthority)):
        Path(xauthority).unlink(missing_ok=True)  # Xvfb read it at its start
    running = _our_cookie(pid)
    if running is None or (xauthority and running != xauthority):
        processes.wait_gone([pid], 0)  # reaped, if it was our child
        if running is None and name:
            _remove_stale_socket(name)
        return False
    sockets = _sockets(pid)
    Path(running).unlink(missing_ok=True)  # first: whoever sees the display gone sees this gone
    processes.send(pid, 15)  # Xvfb removes its socket itself
    if processes.wait_gone([pid], timeout):
        processes.send(pid, 9)
        processes.wait_gone([pid], timeout)
    for leftover in sockets:  # killed: it could not
        leftover.unlink(missing_ok=True)
    return True


def _cookie_file(user: processes.User | None) -> str:
    """A new Xauthority file with a random MIT-MAGIC-COOKIE-1, readable only by ``user``
    (or us). Its entries name no display number: written before Xvfb picks one. The
    server takes every cookie in it; clients match the local entry (python-xlib) or the
    wildcard one (libXau: Firefox, Chromium), whatever the host name becomes."""
    cookie = os.urandom(16)

    def entry(family: int, address: bytes) -> bytes:
        fields = (address, b"", b"MIT-MAGIC-COOKIE-1", cookie)
        return struct.pack(">H", family) + b"".join(
            struct.pack(">H", len(f)) + f for f in fields)

    fd, path = tempfile.mkstemp(prefix=XAUTH_PREFIX)  # 0600
    with os.fdopen(fd, "wb") as out:
        out.write(entry(256, socket.gethostname().encode())  # FamilyLocal
                  + entry(0xFFFF, b""))  # FamilyWild
    if user is not None:
        os.chown(path, user.uid, user.gid)
    _ensure_x11_dir()
    return path


def _ensure_x11_dir() -> None:
    """Xvfb run as an ordinary user cannot create /tmp/.X11-unix: made as X makes it."""
    if not X11_DIR.exists() and os.geteuid() == 0:
        X11_DIR.mkdir(mode=0o1777, exist_ok=True)
        X11_DIR.chmod(0o1777)


def _read_number(fd: int, process: subprocess.Popen, timeout: float) -> int:
    """The display number Xvfb writes on -displayfd once it accepts clients."""
    text, deadline = b"", time.monotonic() + timeout
    while not text.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"Xvfb did not start within {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        chunk = os.read(fd, 16) if ready else None
        if chunk == b"" or (chunk is None and process.poll() is not None):
            raise RuntimeError(f"Xvfb exited at start (code {process.wait()})")
        text += chunk or b""
    return int(text)


def _our_cookie(pid: int) -> str | None:
    """The cookie file of our Xvfb ``pid``; None when ``pid`` is not one (gone, a zombie,
    another program)."""
    if not processes.alive(pid):
        return None
    try:
        process = psutil.Process(pid)
        argv = process.cmdline()
        if process.name() != "Xvfb" or "-auth" not in argv[:-1]:
            return None
    except psutil.Error:
        return None
    path = Path(argv[argv.index("-auth") + 1])
    return str(path) if _is_cookie_file(path) else None


def _is_cookie_file(path: Path) -> bool:
    """One of _cookie_file's files (what an Xvfb of ours has as its -auth)."""
    return path.parent == Path(tempfile.gettempdir()) and path.name.startswith(XAUTH_PREFIX)


def _sockets(pid: int) -> list[Path]:
    """The socket files of the X server ``pid`` (with -displayfd it takes no lock file)."""
    try:
        paths = [c.laddr for c in psutil.Process(pid).net_connections(kind="unix")]
    except psutil.Error:
        return []
    return [Path(p) for p in paths if p and Path(p).parent == X11_DIR]


def _remove_stale_socket(name: str) -> None:
    """Remove display ``name``'s socket file if nothing listens on it: a live server's
    (another display that took the number since) is left alone."""
    number = name.removeprefix(":")
    if not number.isascii() or not number.isdigit():
        return
    path = X11_DIR / f"X{number}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # refused: a socket file no server holds
        except OSError:
            return  # not a socket, not ours to read, or busy: leave it
        else:
            return  # a server answers on it
    if path.is_socket():
        path.unlink(missing_ok=True)
