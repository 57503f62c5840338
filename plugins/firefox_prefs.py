"""What a window becomes in Firefox: the prefs (and environment) of its fingerprint and
its relay, and the quiet background every Firefox of the farm starts with."""
from __future__ import annotations

import json

from browserfarm.browsers.backends import LaunchSpec

# Nothing may leave around the window's proxy: every background service is off.
QUIET = {
    "app.update.auto": False, "app.update.disabledForTesting": True,
    "app.update.enabled": False, "app.normandy.enabled": False,
    "app.normandy.api_url": "", "app.shield.optoutstudies.enabled": False,
    "browser.aboutwelcome.enabled": False, "browser.discovery.enabled": False,
    "browser.newtabpage.enabled": False, "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.newtabpage.activity-stream.feeds.snippets": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.ping-centre.telemetry": False, "browser.region.network.url": "",
    "browser.region.update.enabled": False, "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.search.geoip.url": "", "browser.search.update": False,
    "browser.shell.checkDefaultBrowser": False, "browser.startup.homepage_override.mstone": "ignore",
    "browser.tabs.warnOnClose": False, "browser.urlbar.suggest.quicksuggest.sponsored": False,
    "browser.warnOnQuit": False, "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.firstRunURL": "", "extensions.getAddons.cache.enabled": False,
    "extensions.update.enabled": False, "extensions.blocklist.enabled": False,
    "extensions.systemAddon.update.enabled": False, "messaging-system.rsexperimentloader.enabled": False,
    "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True, "network.prefetch-next": False,
    "network.predictor.enabled": False, "nimbus.rollouts.enabled": False,
    # Remote Settings: release builds ignore this pref unless QUIET_ENV allows it (else
    # firefox.settings.services.mozilla.com, ~15 syncs at each start); a file: URL that
    # is not there fails at once (a data: one sends Rust consumers to the real server).
    "services.settings.server": "file:///nonexistent/remote-settings/v1",
    "services.sync.enabled": False,
    "toolkit.telemetry.archive.enabled": False, "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.server": "", "toolkit.telemetry.unified": False,
    "toolkit.telemetry.updatePing.enabled": False, "toolkit.coverage.opt-out": True,
    "geo.provider.use_gpsd": False, "geo.provider.use_geoclue": False,
    "media.gmp-manager.url": "", "media.gmp-gmpopenh264.enabled": False,
    # The Widevine download asks Google (update.googleapis.com) ~20 s after a start.
    "media.gmp-manager.updateEnabled": False, "media.gmp-manager.chromium-update-url": "",
    "media.gmp-widevinecdm.allow-chromium-update": False,
    "browser.startup.page": 0, "startup.homepage_welcome_url": "about:blank",
    "browser.sessionstore.resume_from_crash": False,
}
# Read from Firefox's environment: lets services.settings.server above take effect.
QUIET_ENV = {"MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"}


def firefox_prefs(spec: LaunchSpec) -> dict:
    """The prefs a window's fingerprint and relay become."""
    fp = spec.fingerprint or {}
    prefs = dict(QUIET)
    if spec.relay_port:  # the window's relay: SOCKS5, names resolved by the proxy
        prefs.update({
            "network.proxy.type": 1, "network.proxy.socks": "127.0.0.1",
            "network.proxy.socks_port": spec.relay_port, "network.proxy.socks_version": 5,
            "network.proxy.socks_remote_dns": True, "network.proxy.no_proxies_on": "",
            "network.proxy.allow_hijacking_localhost": True,  # localhost too, not directly
            "network.proxy.share_proxy_settings": False,
            "network.http.http3.enable": False,  # QUIC would go around the proxy
            "network.trr.mode": 5,  # no DNS over HTTPS around it either
            "media.peerconnection.ice.proxy_only_if_behind_proxy": True,
        })
    if spec.relay_port and spec.relay_socket:  # the relay's Unix socket: only we connect
        prefs["network.proxy.socks"] = spec.relay_socket.as_uri()
        prefs["network.proxy.socks_port"] = 0
    if fp.get("userAgent"):
        prefs["general.useragent.override"] = fp["userAgent"]
    platform = {"Win32": ("Win32", "Windows NT 10.0; Win64; x64"),
                "MacIntel": ("MacIntel", "Intel Mac OS X 10.15"),
                "Linux x86_64": ("Linux x86_64", "Linux x86_64")}.get(fp.get("os", ""))
    if platform:
        prefs["general.platform.override"], prefs["general.oscpu.override"] = platform
    if fp.get("languages"):
        prefs["intl.accept_languages"] = fp["languages"]
    if fp.get("displayLanguages"):
        prefs["intl.locale.requested"] = fp["displayLanguages"]
    web_rtc = str(fp.get("webRTC", "0"))
    if web_rtc == "2":  # disable
        prefs["media.peerconnection.enabled"] = False
    elif web_rtc in ("0", "3"):  # replace / privacy: never the real local addresses
        prefs.update({"media.peerconnection.ice.default_address_only": True,
                      "media.peerconnection.ice.no_host": True,
                      "media.peerconnection.ice.proxy_only": bool(spec.relay_port)})
    position = str(fp.get("position", "0"))
    prefs["permissions.default.geo"] = {"0": 0, "1": 1, "2": 2}.get(position, 0)
    if fp.get("lat") is not None and fp.get("lng") is not None:
        location = {"location": {"lat": float(fp["lat"]), "lng": float(fp["lng"])},
                    "accuracy": float(fp.get("precisionData") or 100)}
        prefs["geo.provider.network.url"] = "data:application/json," + json.dumps(location)
        prefs["geo.provider.testing"] = True
    if fp.get("devicePixelRatio"):
        prefs["layout.css.devPixelsPerPx"] = str(fp["devicePixelRatio"])
    if fp.get("hardwareConcurrency"):
        prefs["dom.maxHardwareConcurrency"] = int(fp["hardwareConcurrency"])
    if str(fp.get("doNotTrack", "")) in ("1", "true", "True"):
        prefs["privacy.donottrackheader.enabled"] = True
    prefs.update(spec.extra_prefs or {})
    return prefs


def window_size(fingerprint: dict) -> tuple[int, int]:
    if fingerprint.get("openWidth") and fingerprint.get("openHeight"):
        return int(fingerprint["openWidth"]), int(fingerprint["openHeight"])
    width, _, height = str(fingerprint.get("resolution", "")).replace(" ", "").partition("x")
    if width.isascii() and width.isdigit() and height.isascii() and height.isdigit():
        return int(width), int(height)
    return 1280, 800
