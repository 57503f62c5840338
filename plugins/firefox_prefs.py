"""What a window becomes in Firefox: the prefs (and environment) of its fingerprint and
its relay, and the quiet background every Firefox of the farm starts with."""
from __future__ import annotations

import json

from browserfarm.pluginapi import LaunchSpec, parse_size

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
    prefs.update(_rendering_prefs(fp))
    prefs.update(spec.extra_prefs or {})
    return prefs


# A GPU a page may see for each platform when the fingerprint names none: never the
# host's (a server's software renderer, llvmpipe, says "not a desktop").
DEFAULT_GPU = {
    "Win32": ("Google Inc. (Intel)",
              "ANGLE (Intel, Intel(R) HD Graphics 400 Direct3D11 vs_5_0 ps_5_0, D3D11)"),
    "MacIntel": ("Apple", "Apple M1"),
    "Linux x86_64": ("Intel", "Intel(R) HD Graphics 400"),
}


def _driver_renderer(renderer: str) -> str:
    """The renderer string to give Firefox so that pages see ``renderer``.

    Firefox shows a page the driver's string reduced to a family ("ANGLE (NVIDIA,
    NVIDIA GeForce GTX 980 Direct3D11 vs_5_0 ps_5_0), or similar"), as every Firefox
    does (webgl.sanitize-unmasked-renderer), and turns a string already in that form
    into "Generic Renderer"; so a shown form goes back to the driver form it comes from.
    A driver string (Chrome's form) stays as given: pages see it as Firefox on that GPU
    shows it."""
    shown = renderer.removesuffix(", or similar")
    if shown != renderer and shown.startswith("ANGLE (") and shown.endswith(")"):
        return shown[:-1] + ", D3D11)"
    return shown


def _rendering_prefs(fp: dict) -> dict:
    """GPU strings, and the noise Firefox's fingerprinting protection can add."""
    prefs = {}
    # webGLMeta: "0" (default) custom strings, "1" off: the host's real ones.
    if str(fp.get("webGLMeta", "0")) != "1":
        vendor, renderer = DEFAULT_GPU.get(fp.get("os", ""), DEFAULT_GPU["Win32"])
        prefs["webgl.override-unmasked-vendor"] = fp.get("webGLManufacturer") or vendor
        prefs["webgl.override-unmasked-renderer"] = _driver_renderer(
            fp.get("webGLRender") or renderer)
    # canvas / webGL (image): "0" (default) noise, "1" off. Firefox keys the noise with
    # a random key per browser start and site: distinct across windows, new at each open.
    targets = [target for field, target in (("canvas", "CanvasRandomization"),
                                            ("webGL", "WebGLRandomization"))
               if str(fp.get(field, "0")) != "1"]
    if targets:  # only these targets, none of the defaults of Firefox's strict mode
        prefs["privacy.fingerprintingProtection"] = True
        prefs["privacy.fingerprintingProtection.overrides"] = ",".join(
            ["-AllTargets"] + ["+" + target for target in targets])
    # fontType "1" (custom): only the given installed fonts; "0"/"2": the host's.
    if str(fp.get("fontType", "")) == "1" and fp.get("font"):
        prefs["font.system.whitelist"] = str(fp["font"])
    return prefs


def window_size(fingerprint: dict) -> tuple[int, int]:
    screen = parse_size(fingerprint.get("resolution"))
    if fingerprint.get("openWidth") and fingerprint.get("openHeight"):
        width, height = int(fingerprint["openWidth"]), int(fingerprint["openHeight"])
        if screen and fingerprint.get("windowSizeLimit"):  # BitBrowser: within the screen
            return min(width, screen[0]), min(height, screen[1])
        return width, height
    return screen or (1280, 800)


# ----- what Firefox does not apply (the window detail's notApplied) ------------------
# Kept beside firefox_prefs(): a field it (or the launch) starts to apply leaves here.

def _given(value) -> bool:
    return value not in (None, "", False, 0)


_NO_CLIENT_HINTS = "Chrome's user-agent client hints: Firefox sends none"
_NO_GENERATOR = "BitBrowser's fingerprint generation: nothing generates fingerprints here"
_NOT_VISIBLE = "not visible to web pages in Firefox (nor is the real one)"
_HOST_FONTS = "pages see the fonts installed on the agent's machine"
_NO_AUTOFILL = "not given to Firefox: no autofill of the platform account"
_OWN_NOISE_KEY = "Firefox keys its canvas/WebGL noise itself (per site, new at each open)"

# browserFingerPrint field -> (the values that ask for something, or _given; why
# Firefox does not do it). Fields applied as asked are not listed (see firefox_prefs,
# window_size, the window's virtual display and the launch's TZ): coreProduct,
# userAgent, isIpCreateTimeZone, timeZone, webRTC, position, isIpCreatePosition, lat,
# lng, precisionData, isIpCreateLanguage, languages, isIpCreateDisplayLanguage,
# displayLanguages, openWidth, openHeight, resolutionType, resolution and
# devicePixelRatio (the virtual display's screen; a desktop display, or headless, has
# its own: the agent's setting, which the cloud answering this does not know),
# windowSizeLimit (window_size), colorDepth 24, doNotTrack, canvas, webGL, webGLMeta,
# webGLManufacturer, webGLRender, fontType "0"/"1" (_rendering_prefs); and, checked in
# not_applied(), font, hardwareConcurrency, coreVersion and version.
FINGERPRINT_NOT_APPLIED = {
    "ostype": (("Android", "IOS"), "Firefox for desktop: no mobile device (touch, "
                                   "mobile screen and user agent)"),
    "os": (("iPhone", "Linux armv81", "Linux armv8l"),
           "platform and oscpu are overridden for Win32, MacIntel and Linux x86_64 only"),
    "osVersion": (_given, "the OS version pages see is fixed per os (Windows NT 10.0, "
                          "Intel Mac OS X 10.15) or taken from userAgent"),
    "timeZoneOffset": (_given, "pages see the offset of timeZone (its own rules, "
                               "daylight saving included)"),
    "ignoreHttpsErrors": (_given, "Firefox checks certificates as usual"),
    # Firefox reports the display's depth, but on Xvfb's 16- and 30-bit screens it has
    # no WebGL (measured with Debian's Xvfb and Firefox ESR): a 24-bit display it is.
    "colorDepth": (lambda depth: _given(depth) and depth != 24,
                   "pages see 24 (the virtual display's depth: at 16 or 30 bits Firefox "
                   "has no WebGL on it)"),
    "fontType": (("2",), "no random fonts: " + _HOST_FONTS),
    "canvasValue": (_given, _OWN_NOISE_KEY),
    "webGLValue": (_given, _OWN_NOISE_KEY),
    "webgpu": (_given, "WebGPU's adapter is Firefox's own"),
    "audioContext": (("0",), "no AudioContext noise"),
    "audioContextValue": (_given, "no AudioContext noise"),
    "mediaDevice": (("0",), "media devices are the host's"),
    "mediaDeviceValue": (_given, "media devices are the host's"),
    "speechVoices": (("0",), "speech synthesis voices are the host's"),
    "speechVoicesValue": (_given, "speech synthesis voices are the host's"),
    "deviceMemory": (_given, "Firefox has no navigator.deviceMemory"),
    "clientRectNoiseEnabled": ((True,), "no ClientRects noise"),
    "clientRectNoiseValue": (_given, "no ClientRects noise"),
    "portScanProtect": (("0",), "Firefox has no port-scan protection of its own"),
    "portWhiteList": (_given, "Firefox has no port-scan protection of its own"),
    "deviceInfoEnabled": ((True,), _NOT_VISIBLE),
    "computerName": (_given, _NOT_VISIBLE),
    "macAddr": (_given, _NOT_VISIBLE),
    "hostIP": (_given, _NOT_VISIBLE),
    "totalDiskSpace": (_given, "storage estimates are Firefox's own"),
    "disableSslCipherSuitesFlag": ((True,), "Firefox's TLS cipher suites are its own"),
    "disableSslCipherSuites": (_given, "Firefox's TLS cipher suites are its own"),
    "enablePlugins": ((True,), "navigator.plugins is Firefox's own (its PDF viewer)"),
    "plugins": (_given, "navigator.plugins is Firefox's own (its PDF viewer)"),
    "launchArgs": (_given, "not passed to Firefox: arguments could turn off the "
                           "window's proxy or profile"),
    "platformVersion": (_given, _NO_CLIENT_HINTS),
    "architecture": (_given, _NO_CLIENT_HINTS),
    "uamodel": (_given, _NO_CLIENT_HINTS),
    "randomPlatformVersion": (_given, _NO_GENERATOR),
    "batchRandom": (_given, _NO_GENERATOR),
    "batchUpdateFingerPrint": (_given, _NO_GENERATOR),
}
FINGERPRINT_APPLIED = {
    "coreProduct", "coreVersion", "userAgent", "isIpCreateTimeZone", "timeZone", "webRTC",
    "position", "isIpCreatePosition", "lat", "lng", "precisionData", "isIpCreateLanguage",
    "languages", "isIpCreateDisplayLanguage", "displayLanguages", "openWidth",
    "openHeight", "resolutionType", "resolution", "windowSizeLimit", "devicePixelRatio",
    "doNotTrack", "hardwareConcurrency",
    "version", "canvas", "webGL", "webGLMeta", "webGLManufacturer", "webGLRender",
    "fontType", "font"}

# Window (top-level) fields: the same, for those asking the browser for something.
WINDOW_NOT_APPLIED = {
    "platform": (_given, "not opened at start (the start page is url)"),
    "userName": (_given, _NO_AUTOFILL),
    "password": (_given, _NO_AUTOFILL),
    "faSecretKey": (_given, _NO_AUTOFILL),
    "workbench": (("localserver",), "no workbench page: the window opens at its url"),
    "isIpv6": (_given, "the proxy is reached at whatever address its host has"),
    "country": (_given, "a dynamic proxy's region: the proxy is used as configured"),
    "province": (_given, "a dynamic proxy's region: the proxy is used as configured"),
    "city": (_given, "a dynamic proxy's region: the proxy is used as configured"),
    "isGlobalProxyInfo": (_given, "the window's own proxy settings are used"),
    "duplicateCheck": (_given, "an extracted IP is not checked against other windows'"),
    "abortImage": (_given, "images load"),
    "abortImageMaxSize": (_given, "images load"),
    "abortMedia": (_given, "media autoplay is Firefox's default"),
    "muteAudio": (_given, "audio is not muted"),
    "stopWhileNetError": (_given, "the window opens without checking the network first"),
    "stopWhileIpChange": (_given, "the window opens whatever its exit IP"),
    "stopWhileCountryChange": (_given, "the window opens whatever its exit IP's country"),
    "syncBookmarks": (_given, "stored only (a profile's data files travel together)"),
    "syncAuthorization": (_given, "stored only (a profile's data files travel together)"),
    "syncHistory": (_given, "stored only (a profile's data files travel together)"),
    "syncSessions": (_given, "stored only (a profile's data files travel together)"),
    "syncExtensions": (_given, "extensions and their data never travel with a profile"),
    "syncUserExtensions": (_given, "extensions and their data never travel with a "
                                   "profile"),
    "syncPaymentsAndAddress": (_given, "stored only (a profile's data files travel "
                                       "together)"),
    "credentialsEnableService": (_given, "Firefox offers to save passwords as usual"),
    "isValidUsername": (_given, "no duplicate-account check"),
    "allowedSignin": (_given, "signing in to the browser with Google is Chrome's"),
    "clearCacheFilesBeforeLaunch": (_given, "the profile opens as it was left"),
    "clearCacheWithoutExtensions": (_given, "the profile opens as it was left"),
    "clearCookiesBeforeLaunch": (_given, "the profile opens as it was left"),
    "clearHistoriesBeforeLaunch": (_given, "the profile opens as it was left"),
    "disableGpu": (_given, "hardware acceleration is Firefox's default"),
    "disableTranslatePopup": (_given, "Firefox offers translations as usual"),
    "disableNotifications": (_given, "sites may ask to show notifications"),
    "disableClipboard": (_given, "Firefox's clipboard rules as usual"),
    "memorySaver": (_given, "Firefox's own memory handling"),
    "enableBackgroundMode": (_given, "stored only"),
}


def _asks(rule, value) -> bool:
    values, _ = rule
    return values(value) if callable(values) else value in values


def not_applied(window: dict, cores: int | None, version: str = "") -> dict[str, str]:
    """The window's fields (as the API shows it) that Firefox does not apply, and why;
    ``cores``: the machine's, which navigator.hardwareConcurrency cannot exceed;
    ``version``: the installed Firefox's, if known."""
    fp = window.get("browserFingerPrint") or {}
    found = {field: rule[1] for field, rule in WINDOW_NOT_APPLIED.items()
             if _asks(rule, window.get(field))}
    for field, value in fp.items():
        path = f"browserFingerPrint.{field}"
        if field in FINGERPRINT_NOT_APPLIED:
            if _asks(FINGERPRINT_NOT_APPLIED[field], value):
                found[path] = FINGERPRINT_NOT_APPLIED[field][1]
        elif field not in FINGERPRINT_APPLIED:  # e.g. stored before fields were checked
            found[path] = "not a field Firefox's backend reads"
    if fp.get("font") and str(fp.get("fontType", "")) != "1":
        found["browserFingerPrint.font"] = "used with fontType 1 (custom) only: " + \
            _HOST_FONTS
    concurrency = fp.get("hardwareConcurrency")
    if cores and isinstance(concurrency, int) and concurrency > cores:
        found["browserFingerPrint.hardwareConcurrency"] = (
            f"above this machine's {cores} cores: Firefox reports at most the cores it "
            "runs on")
    installed = version.split(".")[0]
    for field in ("coreVersion", "version"):  # the engine's, and the one pages are told
        wanted = str(fp.get(field) or "").split(".")[0].strip()
        if wanted and installed and wanted != installed:
            found[f"browserFingerPrint.{field}"] = (
                f"the window runs the installed Firefox {version} (userAgent, if given, "
                "is what pages are told)")
    return found
