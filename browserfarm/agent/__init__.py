"""The Local API agent: opens and closes real browser windows on this desktop for the
account it is logged into, following the spec's "Execution Behavior".

One agent per desktop, one process. It is a client of the cloud: it reads launch
configurations and reports open status there. Flask-free: ``browserfarm.api.local``
puts HTTP in front of it.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from pathlib import Path

import requests

from browserfarm.agent import profile_sync
from browserfarm.browsers.backends import LaunchSpec
from browserfarm.browsers.handles import Handle, LocalHandle
from browserfarm.errors import FarmError, InvalidInput, UpstreamError
from browserfarm.net.geo import follow_ip
from browserfarm.net.proxy import ProxyFailure, ProxyOptions, ProxySettings, failure_from
from browserfarm.net.relay import RelayHub, RelayLimits
from browserfarm.services.proxies import ask_through

log = logging.getLogger(__name__)

UUID_ALIASES = ("uuid", "config_uuid", "browserUuid", "browser_uuid")
ID_ALIASES = ("id", "browserId", "browser_id")


@dataclass
class Login:
    """The agent's login, kept in ``<data dir>/agent.json`` (0600)."""
    server: str = ""
    token: str = ""
    local_token: str = ""

    @classmethod
    def load(cls, data_dir: Path) -> "Login":
        path = data_dir / "agent.json"
        login = cls(**json.loads(path.read_text())) if path.exists() else cls()
        if not login.local_token:  # made once per data dir, kept across logins
            login.local_token = secrets.token_urlsafe(24)
            login.save(data_dir)
        return login

    def save(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "agent.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(vars(self), handle, indent=2)

    @property
    def logged_in(self) -> bool:
        return bool(self.server and self.token)


class Cloud:
    """The cloud API, as the agent's login calls it. Every call has a timeout."""

    def __init__(self, login: Login, timeout: float = 30.0):
        self.login = login
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # the cloud is reached directly, never via a proxy

    def call(self, path: str, body: dict) -> dict:
        """The ``data`` of a successful answer; a ``UpstreamError`` otherwise."""
        answer = self.forward(path, body)
        status, payload = answer
        if payload.get("code") != 0:
            raise UpstreamError(payload.get("code", 500), payload.get("msg", "cloud error"),
                             payload.get("data"), status)
        return payload.get("data") or {}

    def send_bytes(self, path: str, params: dict, data: bytes) -> dict:
        try:
            response = self.session.post(
                self.login.server.rstrip("/") + path, params=params, data=data,
                timeout=self.timeout, headers={"Authorization": f"Bearer {self.login.token}",
                                               "Content-Type": "application/octet-stream"})
            payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError(500, f"the cloud is unreachable: {exc.__class__.__name__}"
                             ) from None
        if payload.get("code") != 0:
            raise UpstreamError(payload.get("code", 500), payload.get("msg", "cloud error"))
        return payload["data"]

    def receive_bytes(self, path: str, params: dict) -> bytes:
        try:
            response = self.session.post(
                self.login.server.rstrip("/") + path, params=params, json={},
                timeout=self.timeout, headers={"Authorization": f"Bearer {self.login.token}"})
        except requests.RequestException as exc:
            raise UpstreamError(500, f"the cloud is unreachable: {exc.__class__.__name__}"
                             ) from None
        if response.status_code != 200:
            raise UpstreamError(response.status_code, f"chunk not delivered "
                                                   f"(HTTP {response.status_code})")
        return response.content

    def forward(self, path: str, body) -> tuple[int, dict]:
        """POST ``body`` as is; the cloud's status and envelope, unchanged."""
        try:
            response = self.session.post(
                self.login.server.rstrip("/") + path, json=body, timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.login.token}"})
            return response.status_code, response.json()
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError(500, f"the cloud at {self.login.server} is unreachable: "
                                  f"{exc.__class__.__name__}") from None


@dataclass
class OpenWindow:
    uuid: str
    id: int
    pid: int
    handle: LocalHandle
    relay: object
    profile_dir: Path
    config_path: Path
    sync_cookies: bool = False
    opened_at: float = field(default_factory=time.time)
    proxy: dict = field(default_factory=dict)  # its relay's upstream (ProxySettings)


class Agent:
    """The windows open on this desktop, and the two things done to them."""

    def __init__(self, data_dir: Path, plugins, login: Login | None = None,
                 options: ProxyOptions | None = None, name: str = "",
                 ip_check_urls: dict | None = None):
        self.data_dir = Path(data_dir).absolute()  # the paths it answers, and Firefox's
        self.ip_check_urls = ip_check_urls or {}
        self.plugins = plugins
        self.login = login or Login.load(data_dir)
        self.cloud = Cloud(self.login)
        self.options = options or ProxyOptions(
            ssh_known_hosts=data_dir / "ssh_known_hosts")
        self.name = name or f"{os.uname().nodename}:{os.getpid()}"
        self.relays = RelayHub()
        self.open: dict[str, OpenWindow] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._registry = self.data_dir / "open-windows.json"
        self._data_dir_lock: int | None = None

    # ----- the spec's two calls -------------------------------------------------------

    def open_window(self, body: dict) -> dict:
        ref = self._reference(body)
        detail = self.cloud.call("/browser/detail", ref)  # 1. read window details
        uuid = detail["uuid"]
        with self._lock(uuid):  # concurrent opens of one window start one browser
            running = self.open.get(uuid)
            if running and self._alive(running):
                return self._opened(running, detail, already=True)
            if running:  # the browser died (crashed, or closed by hand): tidy up
                self._forget(running)
            before = {"status": detail.get("openStatus", "closed")}
            self._report(uuid, "opening")
            try:
                config = self.cloud.call("/browser/launch", {"uuid": uuid})  # 2. and 3.
                window = self._launch(config, _wants_headless(body))  # 4. and 5.
            except Exception:
                self._report(uuid, "closed")
                raise
            self.open[uuid] = window
            self._save_registry()
            after = self._report(uuid, "opened", window.pid)  # 6. sync open status
            answer = self._opened(window, detail, already=False)
            answer["openedStatus"] = {"beforeStart": before, "afterStart": after}
            return answer

    def close_window(self, body: dict) -> dict:
        """Closes even when the cloud is unreachable: the browser stops, the profile
        waits here for the cloud, and the status is reported when it can be."""
        ref = self._reference(body)
        try:
            detail = self.cloud.call("/browser/detail", ref)  # 1. read window details
        except UpstreamError as exc:
            local = self._local(ref)
            if exc.code != 500 or local is None:
                raise
            detail = {"id": local.id, "uuid": local.uuid, "openStatus": "unknown"}
        uuid = detail["uuid"]
        with self._lock(uuid):
            window = self.open.pop(uuid, None)
            self._save_registry()
            before = {"status": detail.get("openStatus", "closed")}
            self._report_if_possible(uuid, "closing")  # 2.
            killed, archive, cookies = False, {}, {}
            if window is not None:
                backend = self.plugins.window_backends.get(window.handle.backend)
                jar = self._cookies_of(window, backend)
                killed = backend.stop(window.handle)  # 3. close the browser
                self.relays.stop(window.relay)
                archive = self._archive(uuid, window.profile_dir)  # 4.
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
        self._claim_data_dir()
        adopted, closed = [], []
        entries = json.loads(self._registry.read_text()) if self._registry.exists() else {}
        for uuid, entry in entries.items():
            window = self._adopt(uuid, entry)
            if window is not None:
                self.open[uuid] = window
                self._report_if_possible(uuid, "opened", window.pid)
                adopted.append(uuid)
                continue
            handle = Handle.from_json(entry["handle"])
            backend = self.plugins.window_backends.get(handle.backend)
            if backend is not None and backend.alive(handle):
                backend.stop(handle)  # quit cleanly: its profile is written
            pending = self.data_dir / "pending-uploads" / uuid
            pending.parent.mkdir(parents=True, exist_ok=True)
            pending.touch()
            self._report_if_possible(uuid, "closed")
            closed.append(uuid)
        self._save_registry()
        self._upload_pending()
        return {"adopted": adopted, "closed": closed}

    def pids(self) -> dict:
        return {uuid: w.pid for uuid, w in self.open.items() if self._alive(w)}

    def ports(self) -> dict:
        return {uuid: {"marionettePort": w.handle.marionette_port,
                       "ws": w.handle.ws, "relayPort": w.relay.port}
                for uuid, w in self.open.items()}

    def close_all(self) -> dict:
        closed = []
        for uuid in list(self.open):
            self.close_window({"uuid": uuid})
            closed.append(uuid)
        return {"closed": closed}

    def reset(self, body: dict) -> dict:
        """For a window stuck in "opening"/"closing" (e.g. an agent died): stop what
        runs here for it and report it closed."""
        ref = self._reference(body)
        detail = self.cloud.call("/browser/detail", ref)
        uuid = detail["uuid"]
        with self._lock(uuid):
            window = self.open.pop(uuid, None)
            if window is not None:
                self._forget(window)
            self._save_registry()
            return {"uuid": uuid, "before": detail.get("openStatus"),
                    "after": self._report(uuid, "closed")["status"]}

    def cookies(self, body: dict) -> dict:
        """The cookies of an open window, read from its running browser."""
        ref = self._reference(body)
        window = self._local(ref) or self._local(
            {"uuid": self.cloud.call("/browser/detail", ref)["uuid"]})
        if window is None:
            raise InvalidInput("uuid", "the window is not open on this agent")
        backend = self.plugins.window_backends.get(window.handle.backend)
        client = backend.attach(window.handle)
        try:
            return {"uuid": window.uuid, "cookies": client.get_cookies()}
        finally:
            client.delete_session()

    def shutdown(self) -> None:
        """Close every window this agent opened (agent stopping)."""
        for uuid in list(self.open):
            try:
                self.close_window({"uuid": uuid})
            except Exception:  # noqa: BLE001 - close the others anyway
                log.exception("closing %s at shutdown failed", uuid)
        self.relays.close()
        if self._data_dir_lock is not None:
            os.close(self._data_dir_lock)
            self._data_dir_lock = None

    # ----- internals ------------------------------------------------------------------

    def _launch(self, config: dict, headless: bool) -> OpenWindow:
        window, proxy = config["window"], config["proxy"]
        fingerprint = window.get("browserFingerPrint") or {}
        backend_name = fingerprint.get("coreProduct") or "firefox"
        backend = self.plugins.window_backends.get(backend_name)
        if backend is None:
            raise InvalidInput("browserFingerPrint.coreProduct",
                               f"no browser backend {backend_name!r} on this machine")
        proxy_type = self.plugins.proxy_types.get(proxy["type"])
        if proxy_type is None:
            raise InvalidInput("proxyType", f"proxy type {proxy['type']!r} is not "
                                            "available on this machine")
        settings = ProxySettings(proxy["type"], proxy["host"] or "", proxy["port"],
                                 proxy["username"] or "", proxy["password"] or "")
        relay = self.relays.start(proxy_type(settings, self.options),
                                  RelayLimits(allow_udp=bool(config.get("allowUdp"))))
        try:
            followed = self._follow_ip(window, fingerprint, relay)
            if followed is fingerprint:  # no IP check ran: still try the proxy once
                self._probe(relay, config.get("url") or "")
            fingerprint = followed
        except ProxyFailure as failure:  # the proxy doesn't work: no browser starts
            self.relays.stop(relay)
            raise FarmError(f"the window's proxy failed: {failure}",
                            {"kind": failure.kind}) from None
        uuid = window["uuid"]
        profile_dir = self.data_dir / "firefox-profiles" / uuid
        blank = False
        if not profile_dir.exists() or not any(profile_dir.iterdir()):
            profile_dir.mkdir(parents=True, exist_ok=True)
            # From another machine; with no archive anywhere, it starts blank.
            blank = not profile_sync.pull(self.cloud, uuid, profile_dir)
        self._upload_pending()
        config_path = self.data_dir / "firefox-launch-configs" / f"{uuid}.json"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps({"window": uuid, "fingerprint": fingerprint,
                                           "relayPort": relay.port,
                                           "proxy": settings.redacted()}, indent=2))
        spec = LaunchSpec(profile_dir=profile_dir, fingerprint=fingerprint,
                          relay_port=relay.port, start_url=config.get("url") or "",
                          headless=headless,  # and the backend when there is no display
                          extra_prefs=self.plugins.browser_preferences(window, backend_name),
                          log_path=self.data_dir / "logs" / f"{uuid}.log")
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            launched = backend.launch(spec)
        except Exception as exc:
            self.relays.stop(relay)
            raise FarmError(f"the browser did not start: {exc}") from exc
        if blank and config.get("cookies"):
            # A first open: the window's synced or imported cookies seed the profile.
            refused = backend.set_cookies(launched.handle, config["cookies"])
            for reason in refused:
                log.warning("cookie of %s not imported: %s", uuid, reason)
        return OpenWindow(uuid=uuid, id=window["id"], pid=launched.pid,
                          handle=launched.handle, relay=relay, profile_dir=profile_dir,
                          config_path=config_path,
                          sync_cookies=bool(window.get("syncCookies")),
                          proxy=vars(settings))

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

    def _archive(self, uuid: str, profile_dir: Path) -> dict:
        """Zip the profile (the spec's close answer) and sync it to the cloud. When
        the cloud can't be reached the profile waits here, marked, and is sent by a
        later open or close: nothing is lost."""
        zip_path = self.data_dir / "uploaded-profile-zips" / f"{uuid}.zip"
        size = profile_sync.zip_profile(profile_dir, zip_path)
        pending = self.data_dir / "pending-uploads" / uuid
        pending.parent.mkdir(parents=True, exist_ok=True)
        pending.touch()
        synced = self._upload_pending()
        return {"profileZipPath": str(zip_path), "profileZipName": zip_path.name,
                "profileZipSize": size, "synced": uuid in synced}

    def _upload_pending(self) -> list[str]:
        """Send every profile still waiting for the cloud; the ones sent."""
        sent = []
        folder = self.data_dir / "pending-uploads"
        for marker in sorted(folder.glob("*")) if folder.exists() else ():
            uuid = marker.name
            if uuid in self.open:
                continue  # in use: sent at its close
            try:
                profile_sync.push(self.cloud, uuid, self.data_dir / "firefox-profiles" / uuid,
                                  self.name)
            except UpstreamError as exc:
                log.warning("profile %s waits for the cloud: %s", uuid, exc.msg)
                continue
            marker.unlink()
            sent.append(uuid)
        return sent

    def _follow_ip(self, window: dict, fingerprint: dict, relay) -> dict:
        """Time zone, language and position from the exit IP, where the window's
        isIpCreate* flags ask for them (checked through the window's own relay)."""
        if not any(fingerprint.get(flag) for flag in (
                "isIpCreateTimeZone", "isIpCreatePosition", "isIpCreateLanguage",
                "isIpCreateDisplayLanguage")):
            return fingerprint
        name = window.get("ipCheckService") or "ip-api"
        service = self.plugins.ip_check_services.get(name)
        if service is None:
            raise InvalidInput("ipCheckService", f"no IP-check service {name!r} here")
        url = self.ip_check_urls.get(name) or service.base_url
        return follow_ip(fingerprint, ask_through(relay, service, url,
                                                   self.options.connect_timeout))

    def _probe(self, relay, url: str) -> None:
        """Reach the start page's host through the proxy once, so a proxy that is down
        or refuses the credentials fails the open with its kind. Without a start page,
        the proxy itself is reached (down, not its credentials, is what that tells)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            proxy = relay.proxy.settings
            if proxy.type == "direct" or not proxy.host:
                return

            async def reach():
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(proxy.host, proxy.port),
                    self.options.connect_timeout)
                writer.close()
            try:
                self.relays.call(reach(), timeout=self.options.connect_timeout + 5)
            except Exception as exc:  # noqa: BLE001 - its kind is the answer
                raise failure_from(exc) from None
            return

        async def connect():
            _, writer = await relay.proxy.open_connection(
                parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            writer.close()

        self.relays.call(connect(), timeout=self.options.connect_timeout + 5)

    def _opened(self, window: OpenWindow, detail: dict, already: bool) -> dict:
        return {"id": str(detail["id"]), "browserId": str(detail["id"]), "uuid": window.uuid,
                "pid": window.pid, "alreadyStarted": already,
                "profileDir": str(window.profile_dir), "configPath": str(window.config_path),
                "marionettePort": window.handle.marionette_port,
                "ws": window.handle.ws,
                "openedStatus": {"beforeStart": {}, "afterStart": {}}}

    def _alive(self, window: OpenWindow) -> bool:
        backend = self.plugins.window_backends.get(window.handle.backend)
        return backend is not None and backend.alive(window.handle)

    def _report(self, uuid: str, status: str, pid: int | None = None) -> dict:
        return self.cloud.call("/browser/status", {"uuid": uuid, "status": status,
                                                   "pid": pid, "agent": self.name})

    def _forget(self, window: OpenWindow) -> None:
        backend = self.plugins.window_backends.get(window.handle.backend)
        if backend is not None and backend.alive(window.handle):
            backend.stop(window.handle)
        self.relays.stop(window.relay)
        self.open.pop(window.uuid, None)

    def _save_registry(self) -> None:
        """What is open here, on disk, so a restarted agent can adopt it. 0600: it
        holds the proxies' credentials (the relay is rebuilt from them, so an adopted
        window keeps the very proxy it was opened with)."""
        entries = {uuid: {"id": w.id, "pid": w.pid, "handle": w.handle.to_json(),
                          "profileDir": str(w.profile_dir), "configPath": str(w.config_path),
                          "syncCookies": w.sync_cookies, "openedAt": w.opened_at,
                          "relay": {"port": w.relay.port, "proxy": w.proxy,
                                    "allowUdp": w.relay.limits.allow_udp}}
                   for uuid, w in self.open.items()}
        self._registry.parent.mkdir(parents=True, exist_ok=True)
        partial = self._registry.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle)
        os.replace(partial, self._registry)

    def _claim_data_dir(self) -> None:
        """One agent per data dir: a second one would take the first one's windows
        for orphans and close them. The lock goes with the process, even at kill -9."""
        if self._data_dir_lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FarmError(f"another agent runs with the data dir {self.data_dir}"
                            ) from None
        self._data_dir_lock = fd

    def _adopt(self, uuid: str, entry: dict) -> OpenWindow | None:
        """The window a dead agent left, taken over if its browser still runs and
        answers. Its relay died with that agent, so it is started again on the port
        the browser's prefs name; if that port is taken, None (closed and synced)."""
        handle, relay_entry = Handle.from_json(entry["handle"]), entry.get("relay")
        backend = self.plugins.window_backends.get(handle.backend)
        if not relay_entry or backend is None or not backend.adoptable(handle):
            return None
        proxy, port = relay_entry["proxy"], relay_entry["port"]
        proxy_type = self.plugins.proxy_types.get(proxy["type"])
        if proxy_type is None:
            return None
        try:
            relay = self.relays.start(proxy_type(ProxySettings(**proxy), self.options),
                                      RelayLimits(allow_udp=relay_entry["allowUdp"]),
                                      port=port)
        except OSError as exc:
            log.warning("window %s not adopted: its relay port %s: %s", uuid, port, exc)
            return None
        return OpenWindow(uuid=uuid, id=entry["id"], pid=entry["pid"], handle=handle,
                          relay=relay, profile_dir=Path(entry["profileDir"]),
                          config_path=Path(entry["configPath"]),
                          sync_cookies=entry.get("syncCookies", False),
                          opened_at=entry.get("openedAt", time.time()), proxy=proxy)

    def _report_if_possible(self, uuid: str, status: str, pid: int | None = None) -> dict:
        try:
            return self._report(uuid, status, pid)
        except UpstreamError as exc:
            log.warning("status %s of %s not reported: %s", status, uuid, exc.msg)
            return {"status": status, "reported": False}

    def _local(self, ref: dict) -> OpenWindow | None:
        for window in self.open.values():
            if ref.get("uuid") == window.uuid or str(ref.get("id")) == str(window.id):
                return window
        return None

    def _lock(self, uuid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(uuid, threading.Lock())

    @staticmethod
    def _reference(body: dict) -> dict:
        """The one window a call names, under any of the spec's aliases."""
        if not isinstance(body, dict):
            raise InvalidInput("body", "Request body must be a JSON object")
        given = {k: body[k] for k in UUID_ALIASES + ID_ALIASES
                 if body.get(k) not in (None, "")}
        for key, value in given.items():
            if isinstance(value, (list, tuple)) or (isinstance(value, str) and "," in value):
                raise InvalidInput(key, "one window per call")
        uuids = {str(v) for k, v in given.items() if k in UUID_ALIASES}
        ids = {str(v) for k, v in given.items() if k in ID_ALIASES}
        if len(uuids) > 1 or len(ids) > 1:
            raise InvalidInput("uuid", "one window per call")
        if not given:
            raise InvalidInput("uuid", "uuid or id is required")
        return {"uuid": uuids.pop()} if uuids else {"id": ids.pop()}


def _wants_headless(body: dict) -> bool:
    """The open request's ``headless`` (true, "true", 1), or BitBrowser's way of
    asking: ``--headless`` among its ``args``."""
    value = body.get("headless")
    if isinstance(value, str):
        value = value.strip().lower() in ("1", "true", "yes")
    args = body.get("args")
    return bool(value) or (isinstance(args, list) and "--headless" in args)
