"""The open and close flows of the spec's "Execution Behavior", and what else the
Local API does to this desktop's windows (cookies, pids, ports, close all, reset,
adoption after a restart).

``Agent`` puts the agent's parts together: the cloud client (cloud.py), the open
windows (registry.py), their relays (relays.py), starting a browser (launch.py) and
the profiles on their way to the cloud (uploads.py). It owns no state of its own: a
window's state is in the registry, under the registry's lock."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from browserfarm.agent.cloud import Cloud, Login
from browserfarm.agent.commands import Commands
from browserfarm.agent.launch import Launcher
from browserfarm.agent.registry import OpenWindow, Registry
from browserfarm.agent.relays import WindowRelays
from browserfarm.agent.uploads import Uploads
from browserfarm.browsers.handles import Handle
from browserfarm.datadir import DataDir
from browserfarm.errors import InvalidInput, UpstreamError
from browserfarm.net.proxy import ProxyOptions, ProxySettings
from browserfarm.services import fingerprints

log = logging.getLogger(__name__)

UUID_ALIASES = ("uuid", "config_uuid", "browserUuid", "browser_uuid")
ID_ALIASES = ("id", "browserId", "browser_id")


def default_name(data_dir: Path) -> str:
    """``<host>:<8 hex>``, the same at every start of the agent of this data dir (a
    restarted agent keeps its name, its row in the agents list and its windows)."""
    return f"{os.uname().nodename}:{hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]}"


class Agent:
    """The windows open on this desktop, and the two things done to them. One agent
    per desktop and data dir; Flask-free (``browserfarm.api.local`` serves it)."""

    def __init__(self, data_dir: Path, plugins, login: Login | None = None,
                 options: ProxyOptions | None = None, name: str = "",
                 ip_check_urls: dict | None = None, window_display: str = "auto"):
        self.data = DataDir(Path(data_dir).absolute())  # the paths it answers, and Firefox's
        self.plugins = plugins
        self.login = login or Login.load(data_dir)
        self.cloud = Cloud(self.login)
        self.name = name or default_name(self.data.root)
        self.windows = Registry(self.data)
        self.relays = WindowRelays(plugins, options or ProxyOptions(
            ssh_known_hosts=self.data.ssh_known_hosts), ip_check_urls)
        self.uploads = Uploads(self.data, self.cloud, self.name, in_use=self.windows)
        self.launcher = Launcher(self.data, plugins, self.cloud, self.relays, self.uploads,
                                 window_display)
        self.commands = Commands(self)  # the cloud's commands: started by whoever runs it

    # ----- the spec's two calls -------------------------------------------------------

    def open_window(self, body: dict) -> dict:
        headless = wants_headless(body)
        ref = window_reference(body)
        detail = self.cloud.detail(ref)  # 1. read window details
        uuid = detail["uuid"]
        with self.windows.lock(uuid):
            running = self.windows.get(uuid)
            if running and self._alive(running):
                return self._opened(running, detail, already=True)
            if running:  # the browser died (crashed, or closed by hand): tidy up
                self._forget(running)
            before = {"status": detail.get("openStatus", "closed")}
            self._report(uuid, "opening")
            try:
                config = self.cloud.launch_config(uuid)  # 2. and 3.
                window = self.launcher.launch(config, headless)  # 4. and 5.
            except Exception:  # a cloud that is down must not hide why the open failed
                self._report_if_possible(uuid, "closed")
                raise
            self.windows.add(window)
            after = self._report(uuid, "opened", window.pid)  # 6. sync open status
            answer = self._opened(window, detail, already=False)
            answer["openedStatus"] = {"beforeStart": before, "afterStart": after}
            return answer

    def close_window(self, body: dict) -> dict:
        """Closes even when the cloud is unreachable: the browser stops, the profile
        waits here for the cloud, and the status is reported when it can be."""
        ref = window_reference(body)
        try:
            detail = self.cloud.detail(ref)  # 1. read window details
        except UpstreamError as exc:
            local = self.windows.find(ref)
            if exc.code != 500 or local is None:
                raise
            detail = {"id": local.id, "uuid": local.uuid, "openStatus": "unknown"}
        uuid = detail["uuid"]
        with self.windows.lock(uuid):
            window = self.windows.remove(uuid)
            before = {"status": detail.get("openStatus", "closed")}
            self._report_if_possible(uuid, "closing")  # 2.
            killed, archive, cookies = False, {}, {}
            backend = window and self.plugins.window_backends.get(window.handle.backend)
            if window is not None and backend is None:
                # Its backend was disabled since the open: nothing here can stop the
                # browser, so its live profile is only marked to be sent (as reconcile
                # does); the relay goes, and the window is reported closed.
                self.relays.stop(window.relay)
                self.uploads.mark(uuid)
            elif window is not None:
                jar = self._cookies_of(window, backend)
                killed = backend.stop(window.handle)  # 3. close the browser
                self.relays.stop(window.relay)
                archive = self.uploads.archive(uuid, window.profile_dir)  # 4.
                if jar is not None:  # 5. syncCookies
                    cookies = self._sync_cookies(uuid, jar)
            after = self._report_if_possible(uuid, "closed")  # 6. and 7.
        return {"id": str(detail["id"]), "browserId": str(detail["id"]), "uuid": uuid,
                "close": {"error": 0, "killed": killed, **archive},
                "cookies": cookies, "backendClose": {},
                "openedStatus": {"beforeClose": before, "afterClose": after}}

    # ----- the desktop's runtime -----------------------------------------------------

    def reconcile(self) -> dict:
        """After a restart (or a crash of the agent): a browser still running is
        adopted, so the window the user works in survives; the others (gone, or not
        adoptable) are stopped, their profiles synced and their windows reported
        closed. Nothing a user stored is lost either way."""
        self.windows.claim()
        adopted, closed = [], []
        for uuid, entry in self.windows.left_behind().items():
            window = self._adopt(uuid, entry)
            if window is not None:
                self._report_if_possible(uuid, "opened", window.pid)
                adopted.append(window)
                continue
            handle = Handle.from_json(entry["handle"])
            backend = self.plugins.window_backends.get(handle.backend)
            if backend is not None:  # quit cleanly: its profile is written; and what
                backend.stop(handle)  # outlived it (its display) goes
            self.uploads.mark(uuid)
            self._report_if_possible(uuid, "closed")
            closed.append(uuid)
        self.windows.restore(adopted)
        self.uploads.send_pending()
        return {"adopted": [window.uuid for window in adopted], "closed": closed}

    def pids(self) -> dict:
        return {w.uuid: w.pid for w in self.windows.windows() if self._alive(w)}

    def ports(self) -> dict:
        return {w.uuid: {"marionettePort": w.handle.marionette_port,
                         "ws": w.handle.ws, "relayPort": w.relay.port}
                for w in self.windows.windows()}

    def close_all(self) -> dict:
        closed = []
        for window in self.windows.windows():
            self.close_window({"uuid": window.uuid})
            closed.append(window.uuid)
        return {"closed": closed}

    def reset(self, body: dict) -> dict:
        """For a window stuck in "opening"/"closing" (e.g. an agent died): stop what
        runs here for it and report it closed."""
        ref = window_reference(body)
        detail = self.cloud.detail(ref)
        uuid = detail["uuid"]
        with self.windows.lock(uuid):
            window = self.windows.get(uuid)
            if window is not None:
                self._forget(window)
            return {"uuid": uuid, "before": detail.get("openStatus"),
                    "after": self._report(uuid, "closed")["status"]}

    def cookies(self, body: dict) -> dict:
        """The cookies of an open window, read from its running browser."""
        ref = window_reference(body)
        window = self.windows.find(ref) or self.windows.find(
            {"uuid": self.cloud.detail(ref)["uuid"]})
        if window is None:
            raise InvalidInput("uuid", "the window is not open on this agent")
        backend = self.plugins.window_backends.get(window.handle.backend)
        if backend is None:  # disabled since the window opened
            raise InvalidInput("browserFingerPrint.coreProduct", f"no browser backend "
                               f"{window.handle.backend!r} on this machine")
        # Every cookie of the window, as close syncs them (not only the page shown).
        return {"uuid": window.uuid, "cookies": backend.get_cookies(window.handle)}

    def shutdown(self) -> None:
        """Close every window this agent opened (agent stopping)."""
        self.commands.stop()  # first: no command opens one meanwhile
        for window in self.windows.windows():
            try:
                self.close_window({"uuid": window.uuid})
            except Exception:  # noqa: BLE001 - close the others anyway
                log.exception("closing %s at shutdown failed", window.uuid)
        self.relays.close()
        self.windows.release()
        self.cloud.close()

    # ----- internals ------------------------------------------------------------------

    def _adopt(self, uuid: str, entry: dict) -> OpenWindow | None:
        """The window a dead agent left, taken over if its browser still runs and
        answers. Its relay died with that agent, so it is started again on the socket
        or port the browser's prefs name; if that port is taken, None (closed and
        synced)."""
        handle, saved = Handle.from_json(entry["handle"]), entry.get("relay")
        backend = self.plugins.window_backends.get(handle.backend)
        if not saved or backend is None or not backend.adoptable(handle):
            return None
        try:
            path = saved.get("path")  # a private relay: its browser uses the socket
            relay = self.relays.start(ProxySettings(**saved["proxy"]), saved["allowUdp"],
                                      port=0 if path else saved["port"],
                                      path=path and self.data.prepare(Path(path)))
        except InvalidInput:  # its proxy type is not available here (any more)
            return None
        except OSError as exc:
            log.warning("window %s not adopted: its relay port %s: %s", uuid,
                        saved["port"], exc)
            return None
        return OpenWindow.from_entry(uuid, entry, relay)

    def _forget(self, window: OpenWindow) -> None:
        """Stop what runs for a window, with no archive or cookies (its browser died,
        or it is reset)."""
        backend = self.plugins.window_backends.get(window.handle.backend)
        if backend is not None:  # also when the browser died: what outlived it goes
            backend.stop(window.handle)
        self.relays.stop(window.relay)
        self.windows.remove(window.uuid)

    def _cookies_of(self, window: OpenWindow, backend) -> list | None:
        if not window.sync_cookies or not backend.alive(window.handle):
            return None
        try:
            return backend.get_cookies(window.handle)
        except Exception:  # noqa: BLE001 - the profile archive keeps them anyway
            log.exception("cookies of %s could not be read", window.uuid)
            return None

    def _sync_cookies(self, uuid: str, jar: list) -> dict:
        try:
            self.cloud.call("/browser/cookies/sync", {"uuid": uuid, "cookies": jar})
        except UpstreamError as exc:
            return {"synced": 0, "error": exc.msg}
        return {"synced": len(jar)}

    def _opened(self, window: OpenWindow, detail: dict, already: bool) -> dict:
        return {"id": str(detail["id"]), "browserId": str(detail["id"]), "uuid": window.uuid,
                "pid": window.pid, "alreadyStarted": already,
                "profileDir": str(window.profile_dir), "configPath": str(window.config_path),
                "marionettePort": window.handle.marionette_port,
                "ws": window.handle.ws,
                "openedStatus": {"beforeStart": {}, "afterStart": {}},
                "warnings": self._warnings(window, detail)}

    def _warnings(self, window: OpenWindow, detail: dict) -> list[str]:
        """What the user should know about this open: what its start told, and a stored
        version that no longer matches this desktop's Firefox (told, never changed: the
        window stays itself)."""
        backend = self.plugins.window_backends.get(window.handle.backend)
        if backend is None or window.handle.backend != fingerprints.ENGINE:
            return list(window.warnings)
        warning = fingerprints.version_warning(detail.get("browserFingerPrint") or {},
                                               backend.version())
        return window.warnings + ([warning] if warning else [])

    def _alive(self, window: OpenWindow) -> bool:
        backend = self.plugins.window_backends.get(window.handle.backend)
        return backend is not None and backend.alive(window.handle)

    def _report(self, uuid: str, status: str, pid: int | None = None) -> dict:
        return self.cloud.call("/browser/status", {"uuid": uuid, "status": status,
                                                   "pid": pid, "agent": self.name})

    def _report_if_possible(self, uuid: str, status: str, pid: int | None = None) -> dict:
        try:
            return self._report(uuid, status, pid)
        except UpstreamError as exc:
            log.warning("status %s of %s not reported: %s", status, uuid, exc.msg)
            return {"status": status, "reported": False}


def window_reference(body: dict) -> dict:
    """The one window a call names, under any of the spec's aliases: its uuid, its
    id, or both (the cloud then checks they name one window, code 211 otherwise).
    Any ``ids`` (even ``[]`` or null: the key is enough), a list, or aliases naming
    different windows are code 211."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "Request body must be a JSON object")
    if "ids" in body:
        raise InvalidInput("ids", "one window per call: give uuid or id, not ids")
    given = {k: body[k] for k in UUID_ALIASES + ID_ALIASES if body.get(k) not in (None, "")}
    for key, value in given.items():
        if isinstance(value, (list, tuple, dict)) or (isinstance(value, str) and "," in value):
            raise InvalidInput(key, "one window per call")
    ref = {}
    for name, aliases in (("uuid", UUID_ALIASES), ("id", ID_ALIASES)):
        values = {str(v) for k, v in given.items() if k in aliases}
        if len(values) > 1:
            raise InvalidInput(name, "one window per call: its aliases name different "
                                     "windows")
        if values:
            ref[name] = values.pop()
    if not ref:
        raise InvalidInput("uuid", "uuid or id is required")
    return ref


def wants_headless(body: dict) -> bool:
    """The open request's ``headless`` (true, "true", 1), or BitBrowser's way of
    asking: ``--headless`` among its ``args`` (a list of strings). Anything else in
    either is refused, naming it, before anything starts."""
    value = body.get("headless", False)
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        value = _FLAGS[value.strip().lower()]
    if value is None or value in (0, 1) and not isinstance(value, float):
        value = bool(value)
    if not isinstance(value, bool):
        raise InvalidInput("headless", "must be true or false")
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise InvalidInput("args", "must be a list of strings")
    return value or "--headless" in args


_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False,
          "": False}
