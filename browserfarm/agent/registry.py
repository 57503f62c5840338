"""The windows open on this desktop, in memory and on disk.

Owns, under one lock: the open windows by uuid, and ``open-windows.json``, written from
them whenever they change, so that a restarted agent can adopt what a dead one left.
Threads never reach the dict itself: they ask for copies. Also owns the per-window
locks (one open, close or reset of a window at a time) and the agent's claim on its
data dir (one agent per data dir)."""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from browserfarm.browsers.handles import Handle, LocalHandle
from browserfarm.datadir import DataDir
from browserfarm.errors import FarmError
from browserfarm.net.relay import Relay


@dataclass
class OpenWindow:
    uuid: str
    id: int
    pid: int
    handle: LocalHandle
    relay: Relay  # its proxy's settings are the window's proxy
    profile_dir: Path
    config_path: Path
    sync_cookies: bool = False
    opened_at: float = field(default_factory=time.time)
    warnings: list = field(default_factory=list)  # the start's (not kept on disk)

    def entry(self) -> dict:
        """Its entry on disk. It holds the proxy's credentials: the relay is rebuilt
        from them, so an adopted window keeps the very proxy it was opened with."""
        return {"id": self.id, "pid": self.pid, "handle": self.handle.to_json(),
                "profileDir": str(self.profile_dir), "configPath": str(self.config_path),
                "syncCookies": self.sync_cookies, "openedAt": self.opened_at,
                "relay": {"port": self.relay.port, "path": self.relay.path,
                          "proxy": vars(self.relay.proxy.settings),
                          "allowUdp": self.relay.limits.allow_udp}}

    @classmethod
    def from_entry(cls, uuid: str, entry: dict, relay: Relay) -> "OpenWindow":
        """The window an entry describes, with its relay started again."""
        return cls(uuid=uuid, id=entry["id"], pid=entry["pid"],
                   handle=Handle.from_json(entry["handle"]), relay=relay,
                   profile_dir=Path(entry["profileDir"]),
                   config_path=Path(entry["configPath"]),
                   sync_cookies=entry.get("syncCookies", False),
                   opened_at=entry.get("openedAt", time.time()))


class Registry:
    """The open windows of this agent (see the module's docstring)."""

    def __init__(self, data: DataDir):
        self.data = data
        self._windows: dict[str, OpenWindow] = {}
        self._guard = threading.Lock()  # the windows, and the file written from them
        self._window_locks: dict[str, threading.Lock] = {}
        self._claim: int | None = None

    # ----- the windows ------------------------------------------------------------------

    def lock(self, uuid: str) -> threading.Lock:
        """Held while a window is opened, closed or reset: concurrent opens of one
        window start one browser."""
        with self._guard:
            return self._window_locks.setdefault(uuid, threading.Lock())

    def get(self, uuid: str) -> OpenWindow | None:
        with self._guard:
            return self._windows.get(uuid)

    def find(self, ref: dict) -> OpenWindow | None:
        """The open window a reference (its ``uuid``, ``id`` or both) names."""
        for window in self.windows():
            if ref.get("uuid", window.uuid) == window.uuid and \
                    str(ref.get("id", window.id)) == str(window.id):
                return window
        return None

    def windows(self) -> list[OpenWindow]:
        with self._guard:
            return list(self._windows.values())

    def __contains__(self, uuid: str) -> bool:
        with self._guard:
            return uuid in self._windows

    def add(self, window: OpenWindow) -> None:
        with self._guard:
            self._windows[window.uuid] = window
            self._save()

    def remove(self, uuid: str) -> OpenWindow | None:
        """The window, no longer open here (None if it wasn't)."""
        with self._guard:
            window = self._windows.pop(uuid, None)
            self._save()
            return window

    # ----- on disk ----------------------------------------------------------------------

    def left_behind(self) -> dict[str, dict]:
        """The entries the last agent of this data dir saved, by uuid."""
        path = self.data.open_windows
        return json.loads(path.read_text()) if path.exists() else {}

    def restore(self, adopted: list[OpenWindow]) -> None:
        """After a restart: the windows taken over are the open ones, on disk too (the
        others' entries go)."""
        with self._guard:
            self._windows.update((window.uuid, window) for window in adopted)
            self._save()

    def _save(self) -> None:
        entries = {uuid: window.entry() for uuid, window in self._windows.items()}
        self.data.write_private(self.data.open_windows, json.dumps(entries))

    # ----- the data dir's claim ---------------------------------------------------------

    def claim(self) -> None:
        """One agent per data dir: a second one would take the first one's windows
        for orphans and close them. The lock goes with the process, even at kill -9."""
        if self._claim is not None:
            return
        self.data.create()
        fd = os.open(self.data.agent_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FarmError(f"another agent runs with the data dir {self.data.root}"
                            ) from None
        self._claim = fd

    def release(self) -> None:
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None
