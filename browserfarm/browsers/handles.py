"""Handles: how any process reaches a browser again (ports, executor URL and session id,
pids). A backend returns one from a start; the runner stores it as JSON in the
database (``Worker.handle``) and the agent in its registry on disk.

The JSON keeps the shape handles had before they were typed (camelCase keys, a
``backend``), plus a ``kind``; JSON without a ``kind`` (stored before the upgrade) is
read by its keys, so a restarted runner or agent still reaches what an older one left.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


def _key(name: str) -> str:
    """The JSON key of a field: ``marionette_port`` -> ``marionettePort``."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class Handle:
    """What every handle has: its backend's name, and the session keeper of the runner
    that holds its automation session (browserfarm.browsers.keeper), if one does."""
    backend: str
    keeper: str | None = None
    keeper_key: str = ""

    kind = ""  # its JSON's "kind"
    remote = False  # the browser runs on another machine (a Grid's node)

    def kept_by(self, reference: dict) -> "Handle":
        """This handle with a keeper's reference (what ``SessionKeeper.add`` returns)."""
        return replace(self, keeper=reference["keeper"], keeper_key=reference["keeperKey"])

    @property
    def keeper_reference(self) -> dict | None:
        """For ``browserfarm.browsers.keeper.ask``; None when no keeper holds it."""
        return {"keeper": self.keeper, "keeperKey": self.keeper_key} if self.keeper else None

    def to_json(self) -> dict:
        values = {_key(name): value for name, value in asdict(self).items()
                  if not (name.startswith("keeper") and not value)}
        return {"kind": self.kind} | values

    @staticmethod
    def from_json(data: dict) -> "Handle":
        kind = data.get("kind") or _old_kind(data)
        cls = next(c for c in _KINDS if c.kind == kind)
        keys = {_key(f.name): f.name for f in fields(cls)}
        return cls(**{keys[k]: v for k, v in data.items() if k in keys})


@dataclass(frozen=True)
class LocalHandle(Handle):
    """A browser process on this machine driven over Marionette (Firefox): windows and
    workers alike."""
    pid: int = 0
    marionette_port: int | None = None
    ws: str | None = None  # WebDriver BiDi, for a user's own client
    profile_dir: str | None = None  # absolute, as on its command line
    # Its own virtual display (browserfarm.browsers.display), stopped with it: DISPLAY's
    # value, Xvfb's pid, the cookie file. None when it shows on a desktop or headless.
    display: str | None = None
    display_pid: int | None = None
    xauthority: str | None = None

    kind = "local"


@dataclass(frozen=True)
class WebDriverHandle(Handle):
    """A WebDriver session: the executor's URL and the session's id."""
    executor: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class RemoteHandle(WebDriverHandle):
    """A WebDriver session on another machine (a Grid's node): nothing here to reap."""

    kind = "remote"
    remote = True


@dataclass(frozen=True)
class DriverHandle(WebDriverHandle):
    """A WebDriver session of a driver this machine started (chromedriver), with the
    processes to reap when the session can't be ended politely: each pid with its
    start time (a pid the kernel gave to another process since is never signalled)."""
    pids: list = field(default_factory=list)  # the driver's
    pgid: int | None = None  # the driver's process group (Chromium's helpers are in it)
    browser_pid: int | None = None
    starts: dict = field(default_factory=dict)  # str(pid) -> start time
    temp_dir: str | None = None
    # Its own virtual display, as LocalHandle's: stopped with it.
    display: str | None = None
    display_pid: int | None = None
    xauthority: str | None = None

    kind = "driver"


_KINDS = (LocalHandle, DriverHandle, RemoteHandle)


def _old_kind(data: dict) -> str:
    """The kind of a handle stored before handles were typed, by its keys."""
    if "marionettePort" in data:
        return LocalHandle.kind
    if "pids" in data or "tempDir" in data:
        return DriverHandle.kind
    return RemoteHandle.kind
