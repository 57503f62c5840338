"""What the core knows of browser backends: the two contracts a plugin's backend
declares by inheriting them (``WindowBackend``, ``WorkerBackend``), and what a start
takes (``LaunchSpec``, ``WorkerSpec``) and returns (``Launched``)."""
from __future__ import annotations

import contextlib
import functools
import re
import shutil
import socket
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path

from browserfarm.browsers.handles import Handle


DEFAULT_WINDOW_BACKEND = "firefox"  # a window whose coreProduct names none


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (for a browser's own servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def installed_version(executable: str) -> str:
    """The version an executable prints for ``--version`` ("Mozilla Firefox 128.5.0esr",
    "Chromium 156.0.8078.79 built on Debian ..."): asked once per process."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    found = re.search(r"\b\d+(\.\d+)+", out)
    return found.group(0) if found else ""


@functools.cache
def host_os_version() -> str:
    """This machine's OS release as v5's os_version: Debian's codename, "bookworm"."""
    try:
        with open("/etc/os-release") as release:
            fields = dict(line.rstrip("\n").split("=", 1) for line in release if "=" in line)
    except OSError:
        return "unknown"
    return (fields.get("VERSION_CODENAME") or fields.get("VERSION_ID") or "unknown").strip('"')


def major_version(version: str) -> str:
    """v5 lists browser versions as "<major>.0": "128.5.0esr" -> "128.0"."""
    major = "".join(ch for ch in version.split(".")[0] if ch.isdigit())
    return f"{major}.0" if major else version


@dataclass
class LaunchSpec:
    """What a backend needs to start one browser."""
    profile_dir: Path
    fingerprint: dict = field(default_factory=dict)
    relay_port: int | None = None  # the window's SOCKS5 relay on 127.0.0.1
    # The same relay's Unix socket, for a browser that can use one (Firefox): only this
    # user may connect to it; its port then asks for a login the browser doesn't know.
    relay_socket: Path | None = None
    start_url: str = ""
    headless: bool = True
    # Where a browser that is not headless shows: "auto", the desktop's display if there
    # is one, else a virtual display of its own; "virtual", always its own.
    display: str = "auto"
    extra_prefs: dict = field(default_factory=dict)  # from browserfarm_browser_preferences
    timeout: float = 60.0
    log_path: Path | None = None
    env: dict = field(default_factory=dict)  # added to the browser's environment
    keep_session: bool = False  # see WorkerSpec.keep_session


@dataclass
class WorkerSpec:
    """What a v5 worker asks of a backend: one short-lived browser at ``url``."""
    browser: str
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    url: str = "about:blank"
    width: int = 1024
    height: int = 768
    profile_dir: Path | None = None  # a fresh, throw-away directory
    fingerprint: dict = field(default_factory=dict)  # a bound window's, else empty
    relay_port: int | None = None  # a bound window's relay on 127.0.0.1
    extra_prefs: dict = field(default_factory=dict)  # from browserfarm_browser_preferences
    timeout: float = 60.0  # to start and load the page
    log_path: Path | None = None
    # Added to the environment of every process started for it (browser, driver):
    # the runner's mark, by which a restarted runner finds what a crash left.
    env: dict = field(default_factory=dict)
    # Asked by a runner that keeps sessions (browserfarm.browsers.keeper): a backend with hold()
    # may return the session it started with as Launched.session.
    keep_session: bool = False


@dataclass
class Launched:
    pid: int
    handle: Handle  # how any process reaches the browser again (JSON: to_json())
    # What hold() would return, kept open from the start itself: the runner keeps it
    # rather than opening another (a Marionette session costs ~10-30 ms).
    session: object = None
    warnings: list = field(default_factory=list)  # for the user, in words: the open went on


class Backend(ABC):
    """What every browser backend has. A backend declares what it runs by inheriting
    a contract: ``WindowBackend`` (a user's windows, on the agent) and/or
    ``WorkerBackend`` (v5 workers, on a runner). All methods are classmethods: a
    backend is a class, registered by a plugin, never instantiated."""

    name = ""  # what a window's ``coreProduct`` or a worker's backend names
    executables: tuple[str, ...] = ()  # the first one found on PATH is used
    local = True  # its browsers run on this machine (they can use a window's relay)

    @classmethod
    def executable(cls) -> str | None:
        for candidate in cls.executables:
            path = shutil.which(candidate)
            if path:
                return path
        return None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if cls.executables and cls.executable() is None:
            return f"none of {', '.join(cls.executables)} is installed"
        return None

    @classmethod
    def version(cls) -> str:
        """The installed browser's version: "156.0.8078.79", "128.5.0"."""
        return installed_version(cls.executable())

    @classmethod
    @abstractmethod
    def alive(cls, handle: Handle) -> bool:
        """The browser still runs (and is the one the handle names)."""

    @classmethod
    @abstractmethod
    def stop(cls, handle: Handle, timeout: float = 20.0) -> bool:
        """End the browser and everything started for it (drivers); True when
        something had to be killed. Safe to call on a browser already gone."""


class WindowBackend(Backend):
    """Runs a user's windows: a persistent profile, a display (or headless, as
    ``LaunchSpec.headless`` asks), a client attaching to it, its cookies, and adoption
    by an agent restarted while the window stayed open."""

    @classmethod
    @abstractmethod
    def launch(cls, spec: LaunchSpec) -> Launched:
        """Start a browser on ``spec.profile_dir`` (kept between opens)."""

    @classmethod
    @abstractmethod
    def attach(cls, handle: Handle, timeout: float = 60.0):
        """A client with a session on the running window (``get_cookies()``,
        ``delete_session()``); the caller ends its session."""

    @classmethod
    @abstractmethod
    def get_cookies(cls, handle: Handle) -> list[dict]:
        """Every cookie of the profile, in BitBrowser's shape (name, value, domain,
        path, secure, httpOnly, expirationDate, sameSite)."""

    @classmethod
    @abstractmethod
    def set_cookies(cls, handle: Handle, cookies: list[dict]) -> list[str]:
        """Add cookies of that shape for any site; the reasons of refusals."""

    @classmethod
    @abstractmethod
    def adoptable(cls, handle: Handle) -> bool:
        """A window a dead agent left can be taken over: it runs and answers (without
        starting a session: a user's may be open)."""

    @classmethod
    def not_applied(cls, window: dict) -> dict[str, str]:
        """The window's stored fields this backend does not apply, each with why, for
        ``/browser/detail``'s ``notApplied``: a fingerprint field as
        ``browserFingerPrint.<name>``, a window field by its name. ``window``: as the
        API shows it. Default: nothing reported."""
        return {}

    @classmethod
    def accepts_version(cls, core_version: str) -> bool:
        """Whether a window's ``coreVersion`` can open here: lenient, as the version
        is the one the window was made with, maybe elsewhere: empty, not a number, or
        a major up to the installed browser's (any, when none is installed here)."""
        found = re.match(r"\s*(\d+)", str(core_version or ""))
        if not found or cls.unavailable_reason():
            return True
        installed = re.match(r"\d+", cls.version())
        return installed is None or int(found.group(1)) <= int(installed.group(0))


class WorkerBackend(Backend):
    """Runs v5 workers: short-lived browsers, reached through a handle stored in the
    database, so any process reaches the browser again: a screenshot never depends on
    who started it."""

    # Serves one automation session at a time (see hold()): commands to one browser
    # wait their turn across processes. WebDriver backends take concurrent ones.
    one_session = True

    @classmethod
    @abstractmethod
    def catalogue(cls, settings) -> list[dict]:
        """The browsers this backend runs, as v5's flat entries: os, os_version,
        browser, browser_version, device, real_mobile. Empty: no workers."""

    @classmethod
    @abstractmethod
    def start_worker(cls, spec: WorkerSpec, settings) -> Launched:
        """Start a browser, sized ``width`` x ``height``, with ``url`` loaded; every
        process started for it gets ``spec.env`` in its environment."""

    @classmethod
    @abstractmethod
    def navigate(cls, handle: Handle, url: str, timeout: float = 60.0) -> None:
        """Load ``url``; a page that fails to load is what the browser shows, not an
        error."""

    @classmethod
    @abstractmethod
    def screenshot(cls, handle: Handle, timeout: float = 30.0) -> bytes:
        """The viewport as PNG bytes."""

    @classmethod
    def hold(cls, handle: Handle):
        """For backends that serve one automation session at a time: a session the
        runner keeps (``screenshot()``, ``navigate(url, timeout)``, ``close()``) and
        serves to every process (browserfarm.browsers.keeper). None: commands go
        through the handle directly."""
        return None


class BrowserBackend(WorkerBackend):
    """The single contract backends had before the two were declared, kept for plugins
    written for it: the worker side only, as it was (it never declared windows), with
    its old defaults (no catalogue, the rest unimplemented). New backends inherit the
    contracts they implement instead."""

    @classmethod
    def catalogue(cls, settings) -> list[dict]:
        return []

    @classmethod
    def start_worker(cls, spec: WorkerSpec, settings) -> Launched:
        raise NotImplementedError

    @classmethod
    def navigate(cls, handle: Handle, url: str, timeout: float = 60.0) -> None:
        raise NotImplementedError

    @classmethod
    def screenshot(cls, handle: Handle, timeout: float = 30.0) -> bytes:
        raise NotImplementedError

    @classmethod
    def alive(cls, handle: Handle) -> bool:
        raise NotImplementedError

    @classmethod
    def stop(cls, handle: Handle, timeout: float = 20.0) -> bool:
        raise NotImplementedError


def start_worker(backend: type[WorkerBackend], spec: WorkerSpec, settings) -> Launched:
    """``backend.start_worker``, its handle typed: a backend written for the old
    contract returns a dict, read as stored handles are (``Handle.from_json``); one
    that fits no handle type is refused (and its browser stopped): typed, it would lose
    what reaches the browser again."""
    launched = backend.start_worker(spec, settings)
    if isinstance(launched.handle, Handle):
        return launched
    if not isinstance(launched.handle, dict):
        raise TypeError(f"backend {backend.name!r} returned a handle of type "
                        f"{type(launched.handle).__name__}, not a pluginapi Handle")
    stored = {"backend": backend.name} | launched.handle
    handle = Handle.from_json(stored)
    lost = set(stored) - set(handle.to_json())
    if lost:
        with contextlib.suppress(Exception):  # the browser must not stay: stopped
            backend.stop(launched.handle)  # as the backend knows it
        raise TypeError(f"backend {backend.name!r} returned a handle as a dict that fits "
                        f"no handle type (it would lose {', '.join(sorted(lost))}): "
                        "return a pluginapi Handle")
    return replace(launched, handle=handle)
