"""What a page sees in a window: GPU strings, canvas, audio, fonts and the detectors'
verdicts, measured with real Firefox windows opened by the agent on virtual displays,
at a loopback page running FingerprintJS and BotD (tests/identity.py)."""
from pathlib import Path

import pytest

from browserfarm.browsers.backends import LaunchSpec
from browserfarm_plugins.firefox_prefs import DEFAULT_GPU, _driver_renderer, firefox_prefs
from tests.conftest import needs_firefox
from tests.identity import identity_page  # noqa: F401 (a fixture)
from tests.test_local import agent, cloud, cloud_call, second_agent  # noqa: F401 (fixtures)

firefox = needs_firefox()


@pytest.fixture
def window_display():
    """Not headless as in other tests (conftest): what pages see of the device
    includes its screen."""
    return "virtual"


def prefs_of(fingerprint: dict) -> dict:
    return firefox_prefs(LaunchSpec(profile_dir=Path("/nonexistent"), fingerprint=fingerprint))


# ----- the prefs (no browser) -------------------------------------------------------

@pytest.mark.parametrize("os_name", ["Win32", "MacIntel", "Linux x86_64", ""])
def test_without_gpu_strings_a_window_gets_plausible_ones_not_the_hosts(os_name):
    prefs = prefs_of({"os": os_name} if os_name else {})
    vendor, renderer = DEFAULT_GPU[os_name or "Win32"]
    assert prefs["webgl.override-unmasked-vendor"] == vendor
    assert prefs["webgl.override-unmasked-renderer"] == renderer


def test_gpu_strings_are_given_to_firefox_and_webglmeta_1_keeps_the_real_ones():
    given = {"webGLManufacturer": "Google Inc. (NVIDIA)",
             "webGLRender": "ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 "
                            "ps_5_0, D3D11)"}
    prefs = prefs_of(given)
    assert prefs["webgl.override-unmasked-vendor"] == given["webGLManufacturer"]
    assert prefs["webgl.override-unmasked-renderer"] == given["webGLRender"]
    real = prefs_of({**given, "webGLMeta": "1"})
    assert not any(name.startswith("webgl.override") for name in real)


@pytest.mark.parametrize("shown, driver", [
    # Firefox's own (sanitized) forms go back to a driver string it sanitizes to them
    ("ANGLE (NVIDIA, NVIDIA GeForce GTX 980 Direct3D11 vs_5_0 ps_5_0), or similar",
     "ANGLE (NVIDIA, NVIDIA GeForce GTX 980 Direct3D11 vs_5_0 ps_5_0, D3D11)"),
    ("Apple M1, or similar", "Apple M1"),
    ("Intel(R) HD Graphics 400, or similar", "Intel(R) HD Graphics 400"),
    # driver strings stay as given
    ("ANGLE (AMD, AMD Radeon(TM) Graphics Direct3D11 vs_5_0 ps_5_0, D3D11)",
     "ANGLE (AMD, AMD Radeon(TM) Graphics Direct3D11 vs_5_0 ps_5_0, D3D11)"),
    ("Mesa Intel(R) UHD Graphics 620 (KBL GT2)", "Mesa Intel(R) UHD Graphics 620 (KBL GT2)"),
])
def test_a_renderer_in_firefoxs_shown_form_is_given_as_its_driver_string(shown, driver):
    assert _driver_renderer(shown) == driver


def test_canvas_and_webgl_noise_use_only_their_fingerprinting_protection_targets():
    assert prefs_of({})["privacy.fingerprintingProtection.overrides"] == \
        "-AllTargets,+CanvasRandomization,+WebGLRandomization"
    assert prefs_of({"canvas": "1"})["privacy.fingerprintingProtection.overrides"] == \
        "-AllTargets,+WebGLRandomization"
    off = prefs_of({"canvas": "1", "webGL": "1"})
    assert not any(name.startswith("privacy.fingerprintingProtection") for name in off)


def test_custom_fonts_restrict_the_system_fonts():
    assert prefs_of({"fontType": "1", "font": "DejaVu Sans,DejaVu Serif"})[
        "font.system.whitelist"] == "DejaVu Sans,DejaVu Serif"
    for fingerprint in ({"fontType": "0", "font": "DejaVu Sans"},
                        {"fontType": "2", "font": "DejaVu Sans"}, {"fontType": "1"}):
        assert "font.system.whitelist" not in prefs_of(fingerprint)


# ----- real windows -----------------------------------------------------------------

@pytest.fixture
def no_desktop(monkeypatch):
    """As on a server (`make run` here): each window on a virtual display of its own."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


WINDOWS = {
    "a": {"os": "Win32", "languages": "de-DE,de", "timeZone": "Europe/Berlin",
          "devicePixelRatio": 1.25,
          "hardwareConcurrency": 2, "webGLManufacturer": "Google Inc. (NVIDIA)",
          "webGLRender": "ANGLE (NVIDIA, NVIDIA GeForce GTX 980 Direct3D11 vs_5_0 ps_5_0),"
                         " or similar"},
    "b": {"os": "MacIntel", "languages": "en-GB,en", "timeZone": "Europe/London",
          "devicePixelRatio": 1,
          "hardwareConcurrency": 1, "webGLManufacturer": "Apple",
          "webGLRender": "Apple M1, or similar", "canvas": "1", "webGL": "1"},
    "c": {"os": "MacIntel", "languages": "en-GB,en", "timeZone": "Europe/London",
          "devicePixelRatio": 1,
          "hardwareConcurrency": 1, "webGLManufacturer": "Apple",
          "webGLRender": "Apple M1, or similar", "canvas": "1", "webGL": "1"},
}
# c, restricted to the given fonts (fontType 1, custom)
WINDOWS["d"] = {**WINDOWS["c"], "fontType": "1", "font": "DejaVu Serif"}
NO_IP_LOOKUP = {"isIpCreateTimeZone": False, "isIpCreateLanguage": False,
                "isIpCreatePosition": False}


@firefox
def test_what_pages_see_across_windows_and_opens(no_desktop, agent, second_agent,
                                                 cloud, identity_page):
    """Measured: what a page sees in two windows, and in one window opened twice (and a
    third time on another desktop)."""
    windows = {name: cloud_call(cloud, "/browser/update", {
        "name": name, "url": identity_page.url_for(name),
        "browserFingerPrint": {**NO_IP_LOOKUP, **fingerprint}})["data"]
        for name, fingerprint in WINDOWS.items()}

    def visit(name, n=1, on=agent):
        on.open_window({"uuid": windows[name]["uuid"]})
        try:
            return identity_page.report(name, n)
        finally:
            on.close_window({"uuid": windows[name]["uuid"]})

    a, b, c, d, a2 = visit("a"), visit("b"), visit("c"), visit("d"), visit("a", 2)
    a3 = visit("a", 3, on=second_agent)
    for report in (a, b, c, d, a2, a3):
        assert report["errors"] == [], report["errors"]
        assert report["canvas"] == report["canvasAgain"]
        # detectors see an ordinary browser
        assert report["page"]["webdriver"] is False
        assert report["botd"] == {"bot": False}

    # What the page, its worker and its request headers see is the stored fingerprint.
    for report, name in ((a, "a"), (b, "b"), (a2, "a"), (a3, "a")):
        stored = cloud_call(cloud, "/browser/detail", {"id": windows[name]["id"]})[
            "data"]["browserFingerPrint"]
        page, worker, headers = report["page"], report["worker"], report["headers"]
        assert page["platform"] == stored["os"]
        assert page["languages"] == stored["languages"].split(",")
        assert page["timezone"] == stored["timeZone"]
        assert page["hardwareConcurrency"] == stored["hardwareConcurrency"]
        for field in ("userAgent", "platform", "languages", "hardwareConcurrency",
                      "timezone", "timezoneOffset"):  # workers have no oscpu
            assert worker[field] == page[field], field
        assert headers["User-Agent"] == page["userAgent"]
        assert headers["Accept-Language"].startswith(stored["languages"].split(",")[0])
        # WebGL: the given vendor and renderer, in the page and its worker alike
        for webgl in (page["webgl"], worker["webgl"]):
            assert webgl["unmaskedVendor"] == stored["webGLManufacturer"]
            assert webgl["unmaskedRenderer"] == stored["webGLRender"]
            assert webgl["renderer"] == stored["webGLRender"]
            assert "llvmpipe" not in str(webgl) and "Mesa" not in str(webgl)
        # FingerprintJS reads RENDERER (in Firefox it skips the deprecated debug info)
        assert report["fingerprintjs"]["webGlBasics"]["renderer"] == stored["webGLRender"]

    # Distinct windows look distinct to FingerprintJS; one window reopened, the same.
    assert a["fingerprintjs"]["visitorId"] != b["fingerprintjs"]["visitorId"]
    assert a2["fingerprintjs"]["visitorId"] == a["fingerprintjs"]["visitorId"] == \
        a3["fingerprintjs"]["visitorId"]
    # FingerprintJS skips canvas images in Firefox >= 120 (its own randomization)
    assert a["fingerprintjs"]["canvas"]["text"] == "skipped"

    # Canvas and WebGL image noise ("0"): Firefox keys it per browser start and site, so
    # a window's canvas differs from other windows' and changes at each open; off ("1"):
    # the host's rendering, the same in every window, at every open.
    assert len({a["canvas"], a2["canvas"], b["canvas"]}) == 3
    assert b["canvas"] == c["canvas"]
    assert len({a["webglImage"], a2["webglImage"], b["webglImage"]}) == 3
    assert b["webglImage"] == c["webglImage"]
    # Audio and fonts are the host's: the same in every window, every time; client
    # rects too, for one devicePixelRatio (no noise: layout is the host's fonts).
    assert a["audio"] == a2["audio"] == b["audio"] == c["audio"]
    assert a["fingerprintjs"]["fonts"] == b["fingerprintjs"]["fonts"] == \
        a2["fingerprintjs"]["fonts"]
    assert a["clientRect"] == a2["clientRect"] and b["clientRect"] == c["clientRect"]
    # fontType 1: pages find only the given fonts among the installed ones
    assert d["fingerprintjs"]["fonts"] != c["fingerprintjs"]["fonts"]
    assert set(d["fingerprintjs"]["fonts"]) < set(c["fingerprintjs"]["fonts"])
    assert d["fingerprintjs"]["visitorId"] != c["fingerprintjs"]["visitorId"]
