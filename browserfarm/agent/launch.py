"""Starting one window's browser from its launch configuration (the spec's open,
steps 4 and 5): its relay and the proxy's check, its profile (fetched from the cloud
when this desktop has none), its launch file, the browser, and, at a first open, the
window's cookies.

Owns nothing that lives on: what it starts becomes an ``OpenWindow`` for the
registry, or is stopped again when the open fails."""
from __future__ import annotations

import json
import logging

from browserfarm.agent import profile_sync
from browserfarm.agent.cloud import Cloud
from browserfarm.agent.registry import OpenWindow
from browserfarm.agent.relays import WindowRelays
from browserfarm.agent.uploads import Uploads
from browserfarm.browsers.backends import DEFAULT_WINDOW_BACKEND, LaunchSpec
from browserfarm.datadir import DataDir
from browserfarm.errors import FarmError, InvalidInput
from browserfarm.net.proxy import ProxySettings

log = logging.getLogger(__name__)


class Launcher:
    def __init__(self, data: DataDir, plugins, cloud: Cloud, relays: WindowRelays,
                 uploads: Uploads, display: str = "auto"):
        self.data, self.plugins, self.cloud = data, plugins, cloud
        self.relays, self.uploads = relays, uploads
        self.display = display  # Settings.window_display

    def launch(self, config: dict, headless: bool) -> OpenWindow:
        """The window of ``config`` (``/browser/launch``'s answer), running."""
        window, proxy = config["window"], config["proxy"]
        fingerprint = window.get("browserFingerPrint") or {}
        backend_name = fingerprint.get("coreProduct") or DEFAULT_WINDOW_BACKEND
        backend = self.plugins.window_backends.get(backend_name)
        if backend is None:
            raise InvalidInput("browserFingerPrint.coreProduct",
                               f"no browser backend {backend_name!r} on this machine")
        settings = ProxySettings(proxy["type"], proxy["host"] or "", proxy["port"],
                                 proxy["username"] or "", proxy["password"] or "")
        socket = self.data.relay_socket(window["uuid"])  # only this user may connect
        relay = self.relays.start(settings, allow_udp=bool(config.get("allowUdp")),
                                  path=socket and self.data.prepare(socket))
        launched = None
        try:
            fingerprint = self.relays.check(relay, window, fingerprint,
                                             config.get("url") or "")
            uuid = window["uuid"]
            profile_dir, blank = self._profile(uuid)
            self.uploads.send_pending()
            config_path = self.data.prepare(self.data.launch_config(uuid))
            config_path.write_text(json.dumps({"window": uuid, "fingerprint": fingerprint,
                                               "relayPort": relay.port,
                                               "proxy": settings.redacted()}, indent=2))
            spec = LaunchSpec(
                profile_dir=profile_dir, fingerprint=fingerprint, relay_port=relay.port,
                relay_socket=socket,
                start_url=config.get("url") or "",
                headless=headless or self.display == "headless",
                display="auto" if self.display == "headless" else self.display,
                extra_prefs=self.plugins.browser_preferences(window, backend_name),
                log_path=self.data.prepare(self.data.window_log(uuid)))
            try:
                launched = backend.launch(spec)
            except Exception as exc:
                raise FarmError(f"the browser did not start: {exc}") from exc
            if blank and config.get("cookies"):
                # A first open: the window's synced or imported cookies seed the profile.
                refused = backend.set_cookies(launched.handle, config["cookies"])
                for reason in refused:
                    log.warning("cookie of %s not imported: %s", uuid, reason)
        except BaseException:
            if launched is not None:  # no registry entry will ever name this browser
                try:
                    backend.stop(launched.handle)
                except Exception:  # noqa: BLE001 - the first error is the one to tell
                    log.exception("browser of %s not stopped", window.get("uuid"))
            self.relays.stop(relay)  # no browser uses it
            raise
        return OpenWindow(uuid=uuid, id=window["id"], pid=launched.pid,
                          handle=launched.handle, relay=relay, profile_dir=profile_dir,
                          config_path=config_path, warnings=launched.warnings,
                          sync_cookies=bool(window.get("syncCookies")))

    def _profile(self, uuid: str):
        """The window's profile folder, and whether it starts blank: one from another
        machine is fetched from the cloud; with no archive anywhere, it starts blank."""
        profile_dir = self.data.window_profile(uuid)
        if profile_dir.exists() and any(profile_dir.iterdir()):
            return profile_dir, False
        self.data.make_folder(profile_dir)
        return profile_dir, not profile_sync.pull(self.cloud, uuid, profile_dir)
