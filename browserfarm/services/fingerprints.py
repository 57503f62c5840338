"""Complete, consistent fingerprints by default.

A window created with an empty or partial ``browserFingerPrint`` gets the rest drawn
once from real-world data and stored with it: the same on every open and on every
desktop. The draw is browserforge's (Bayesian networks over Apify's fingerprint
datapoints, which ship in the ``apify_fingerprint_datapoints`` wheel: nothing is
downloaded at run time), asked for desktop Firefox on Windows, macOS or Linux in their
real-world shares, so the user agent, platform, screen, window size, pixel ratio, cores
and GPU strings come from one real device. Only the version is ours: the user agent
says the Firefox major windows are drawn for (``Settings.firefox_version``, else the
cloud's installed Firefox, else the newest in the data), whatever the data's.

Fields the user gave are never changed, and they steer the draw (a given ``os`` or
``userAgent`` picks the OS; a given ``version``, ``userAgent`` or ``coreVersion`` the
Firefox major the user agent says). Time zone, language and position are left to the
``isIpCreate*`` flags when they are set (taken from the proxy's IP at each open).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re

from browserfarm.browsers import display

#: The browser these fingerprints are for: what a window's ``coreProduct`` names.
ENGINE = "firefox"
#: The fields a draw fills.
DRAWN = ("coreVersion", "version", "userAgent", "ostype", "os", "resolutionType",
         "resolution", "openWidth", "openHeight", "devicePixelRatio",
         "hardwareConcurrency", "webGLManufacturer", "webGLRender", "languages")
#: What ``randomFingerprint`` draws anew at each open: all but the kind of device.
REDRAWN = tuple(k for k in DRAWN if k not in ("coreVersion", "ostype", "os",
                                              "resolutionType"))
# The screen's fields, left to the computer's screen by BitBrowser's resolutionType "0".
SCREEN = ("resolution", "openWidth", "openHeight", "devicePixelRatio")
# Firefox's navigator.languages for its en-US build (the data has en-US only).
DEFAULT_LANGUAGES = "en-US,en"
# navigator.platform -> browserforge's name of the OS, and how a user agent says it.
OS_OF_PLATFORM = {"Win32": "windows", "MacIntel": "macos", "Linux x86_64": "linux"}
OS_IN_USER_AGENT = (("Windows", "windows"), ("Macintosh", "macos"), ("Linux", "linux"))
MIN_WINDOW = 400  # a drawn window never smaller than this (CSS pixels), screen allowing
# What real devices report in the data. Windows run on other desktops than the one that
# draws them, so no machine's cores cap the draw: a count above a desktop's is reported
# there (not applied: Firefox shows at most the cores it runs on).
CORES = (2, 32)
_VERSION_IN_UA = re.compile(r"(rv:|Firefox/)\d+(?:\.\d+)*")


def complete(fingerprint: dict, engine_version: str) -> dict:
    """``fingerprint`` with every missing field of ``DRAWN`` filled from one real-world
    Firefox device; the given fields as they are. ``engine_version``: the Firefox the
    windows are drawn for ("153.8.0esr"); empty: the data's, device by device."""
    given = {k: v for k, v in fingerprint.items() if v not in (None, "")}
    given_screen = display.parse_size(given.get("resolution"))
    drawn = _draw(_wanted_os(given), given_screen)
    navigator, screen = drawn.navigator, drawn.screen
    # The first that names a major: what the user asked for, then the engine.
    major = _major(given.get("version")) or _firefox_major(given.get("userAgent")) \
        or _major(given.get("coreVersion")) or _major(engine_version) \
        or _firefox_major(navigator.userAgent)
    width, height = given_screen or (screen.width, screen.height)
    # The data's window can overhang its screen by the borders of a maximized window.
    avail_height = min(screen.availHeight, height) or height
    found = {
        "coreVersion": _major(engine_version) or major,
        "version": major,
        "userAgent": _VERSION_IN_UA.sub(rf"\g<1>{major}.0", navigator.userAgent),
        "ostype": "PC",
        "os": navigator.platform,
        "resolutionType": "1",  # the resolution below, not the computer's screen
        "resolution": f"{width} x {height}",
        "openWidth": _within(screen.outerWidth, width),
        "openHeight": _within(screen.outerHeight, avail_height),
        "devicePixelRatio": screen.devicePixelRatio,
        "hardwareConcurrency": min(max(navigator.hardwareConcurrency or 0, CORES[0]),
                                   CORES[1]),
    }
    if given.get("resolutionType") == "0":  # asked for the computer's screen
        for field in SCREEN:
            del found[field]
    if drawn.videoCard and not ({"webGLManufacturer", "webGLRender"} & given.keys()):
        found["webGLManufacturer"] = drawn.videoCard.vendor
        found["webGLRender"] = drawn.videoCard.renderer
    if not fingerprint.get("isIpCreateLanguage"):  # else the proxy's IP says, at open
        found["languages"] = DEFAULT_LANGUAGES
    # An empty field is one not given (BitBrowser's scripts send "" for "default").
    return {**fingerprint, **{k: v for k, v in found.items() if k not in given}}


def drawn_values(given: dict, completed: dict) -> dict:
    """What ``complete`` filled in ``given``: kept with the window, so that
    ``randomFingerprint`` redraws only that."""
    return {k: v for k, v in completed.items() if given.get(k) != v}


def redrawn(fingerprint: dict, drawn: dict | None, engine_version: str) -> dict:
    """BitBrowser's ``randomFingerprint``: the fields of ``REDRAWN`` that were drawn
    (``drawn``: their values then; a field since edited to another value counts as
    given) drawn anew for one open, on the stored OS; the given ones, and the others,
    as stored. ``drawn`` None: not known (a window stored before it was kept), all of
    ``REDRAWN`` are drawn anew."""
    def was_drawn(field):
        return drawn is None or (field in drawn and drawn[field] == fingerprint.get(field))
    kept = {k: v for k, v in fingerprint.items() if k not in REDRAWN or not was_drawn(k)}
    return complete(kept, engine_version)


def version_warning(fingerprint: dict, engine_version: str) -> str | None:
    """Why a window's stored version no longer matches the engine it opens with (a
    Firefox upgraded since it was made), or None. The stored fingerprint is kept, so the
    window stays the device it was; the caller tells, nothing changes it."""
    engine = _major(engine_version)
    claimed = _major(fingerprint.get("version")) or _firefox_major(fingerprint.get("userAgent"))
    if not engine or not claimed or claimed == engine:
        return None
    return (f"browserFingerPrint.version says Firefox {claimed} but this desktop runs "
            f"Firefox {engine}: the window keeps its stored user agent, and pages that "
            f"test features can tell the engine's version apart")


@functools.cache
def newest_firefox() -> str:
    """The newest Firefox major in browserforge's data ("151"): what windows are drawn
    for where neither a setting nor an installed Firefox says."""
    from apify_fingerprint_datapoints import get_browser_helper_file
    browsers = json.loads(get_browser_helper_file().read_text())  # "firefox/151.0|2", ...
    majors = {int(_major(b.split("/", 1)[1])) for b in browsers if b.startswith("firefox/")}
    return str(max(majors))


@functools.cache
def _generator():
    """browserforge, imported and set up at the first draw (it reads its networks then)."""
    from browserforge.fingerprints import FingerprintGenerator, Screen

    class Generator(FingerprintGenerator):
        """browserforge's, remembering which devices fit a screen: finding them walks the
        whole network (5-60 ms a draw), and the network never changes. The draw itself
        stays random, as browserforge's."""

        def partial_csp(self, strict, screen, filtered_values):
            if not (screen and screen.is_set()):
                return None
            values, found = self._fitting(strict, dataclasses.astuple(screen))
            filtered_values.update(copy.deepcopy(values))  # copies: the cache's stay as found
            return copy.deepcopy(found)

        @functools.lru_cache(maxsize=256)  # bounded: the screens are the callers' to choose
        def _fitting(self, strict, screen: tuple):
            values: dict = {}
            found = super().partial_csp(strict, Screen(*screen), values)
            return values, found

    return Generator(browser="firefox", device="desktop", os=tuple(OS_OF_PLATFORM.values()))


def _draw(wanted_os: str | None, screen: tuple[int, int] | None):
    """One device: of ``wanted_os`` and with that screen where the data has one (its
    pixel ratio and window then fit the screen), else any."""
    from browserforge.fingerprints import Screen
    options = {"os": wanted_os} if wanted_os else {}
    if screen:
        width, height = screen
        try:
            return _generator().generate(**options, screen=Screen(
                min_width=width, max_width=width, min_height=height, max_height=height))
        except ValueError:  # the data has no such device of that OS
            pass
    return _generator().generate(**options)


def _wanted_os(given: dict) -> str | None:
    if given.get("os") in OS_OF_PLATFORM:
        return OS_OF_PLATFORM[given["os"]]
    user_agent = str(given.get("userAgent", ""))
    return next((name for word, name in OS_IN_USER_AGENT if word in user_agent), None)


def _major(version) -> str:
    """ "153.8.0esr" -> "153"; "" when it names none."""
    found = re.match(r"\s*(\d+)", str(version or ""))
    return found.group(1) if found else ""


def _firefox_major(user_agent) -> str:
    found = re.search(r"Firefox/(\d+)", str(user_agent or ""))
    return found.group(1) if found else ""


def _within(size: int, limit: int) -> int:
    return min(max(size or 0, MIN_WINDOW), limit)
