"""Complete, consistent, frozen fingerprints by default (issue 13 item 5): a window
created with an empty or partial browserFingerPrint gets the rest drawn once from
real-world data (browserforge), for the installed Firefox, and keeps it."""
import dataclasses
import json
import os
import re

import pytest

from browserfarm.config import load_settings
from browserfarm.services.fingerprints import (CORES, DRAWN, complete, newest_firefox,
                                                version_warning)
from browserfarm_plugins.firefox import Firefox
from tests.conftest import needs_firefox
from tests.test_local import agent, cloud, cloud_call, local, window_handle  # noqa: F401

firefox = needs_firefox()


@pytest.fixture
def window_display():
    """Not headless as in other tests (conftest): a window shows its fingerprint as
    users run it."""
    return "virtual"
# What a user agent says of each navigator.platform (and Firefox's oscpu for it).
UA_OF_PLATFORM = {"Win32": "(Windows NT 10.0; Win64; x64;", "MacIntel": "(Macintosh;",
                  "Linux x86_64": "Linux x86_64"}


def create(caller, **fields):
    answer = caller("/browser/update", fields)
    assert answer.code == 0, answer.body
    return answer.data


def engine_major() -> str | None:
    return None if Firefox.unavailable_reason() else Firefox.version().split(".")[0]


def screen(fingerprint) -> tuple[int, int]:
    width, height = re.fullmatch(r"(\d+) x (\d+)", fingerprint["resolution"]).groups()
    return int(width), int(height)


def assert_consistent(fp: dict, major: str):
    assert fp["version"] == fp["coreVersion"] == major
    assert f"rv:{major}.0) Gecko/20100101 Firefox/{major}.0" in fp["userAgent"]
    assert UA_OF_PLATFORM[fp["os"]] in fp["userAgent"]
    width, height = screen(fp)
    assert 0 < fp["openWidth"] <= width and 0 < fp["openHeight"] <= height
    assert 0.25 <= fp["devicePixelRatio"] <= 10
    assert CORES[0] <= fp["hardwareConcurrency"] <= CORES[1]
    assert fp["webGLManufacturer"] and fp["webGLRender"]
    assert not re.search("llvmpipe|swiftshader|mesa", fp["webGLRender"], re.I)
    assert fp["languages"] == "en-US,en" and fp["ostype"] == "PC"
    assert fp["resolutionType"] == "1"


def test_an_empty_fingerprint_is_completed_for_the_installed_firefox(owner):
    windows = [create(owner) for _ in range(6)] + [create(owner, browserFingerPrint={})]
    for window in windows:
        fp = window["browserFingerPrint"]
        assert set(DRAWN) <= fp.keys()
        # The installed Firefox's major; the newest in the data, where none is installed.
        assert_consistent(fp, engine_major() or newest_firefox())
        assert "timeZone" not in fp and "lat" not in fp  # the host's, or the IP's (flags)
    # Each window is its own device: drawn apart.
    assert len({json.dumps(w["browserFingerPrint"], sort_keys=True) for w in windows}) > 1


def test_each_os_is_consistent_with_its_user_agent(owner):
    for platform in UA_OF_PLATFORM:
        fp = create(owner, browserFingerPrint={"os": platform})["browserFingerPrint"]
        assert fp["os"] == platform and UA_OF_PLATFORM[platform] in fp["userAgent"]
    mac_ua = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:140.0) Gecko/20100101 "
              "Firefox/140.0")
    fp = create(owner, browserFingerPrint={"userAgent": mac_ua})["browserFingerPrint"]
    assert (fp["userAgent"], fp["os"], fp["version"]) == (mac_ua, "MacIntel", "140")


def test_the_fingerprint_is_frozen(owner):
    window = create(owner)
    details = [owner("/browser/detail", {"id": window["id"]}).data for _ in range(2)]
    listed = owner("/browser/list", {"pageSize": 10}).data["list"][0]
    assert details[0]["browserFingerPrint"] == details[1]["browserFingerPrint"] \
        == listed["browserFingerPrint"] == window["browserFingerPrint"]
    # A partial update merges into it: the drawn fields stay.
    owner("/browser/update/partial", {"ids": [window["id"]],
                                      "browserFingerPrint": {"doNotTrack": "1"}})
    after = owner("/browser/detail", {"id": window["id"]}).data["browserFingerPrint"]
    assert after == {**window["browserFingerPrint"], "doNotTrack": "1"}


def test_fields_the_user_gave_are_kept_and_steer_the_rest(owner):
    given = {"os": "MacIntel", "resolution": "1280 x 800", "hardwareConcurrency": 1,
             "languages": "fr-FR,fr", "webGLRender": "Custom GPU", "openWidth": 1000,
             "timeZone": "Asia/Tokyo", "userAgent": ""}
    fp = create(owner, browserFingerPrint=given)["browserFingerPrint"]
    assert {k: fp[k] for k in given if k != "userAgent"} == {
        k: v for k, v in given.items() if k != "userAgent"}
    assert "(Macintosh;" in fp["userAgent"]  # "" is not a value: drawn, for the os given
    assert fp["openHeight"] <= 800
    assert "webGLManufacturer" not in fp  # one GPU string given: the other not guessed
    # An edit that replaces the fingerprint keeps what it gives and completes the rest.
    edited = owner("/browser/update", {"id": create(owner)["id"],
                                       "browserFingerPrint": {"os": "Linux x86_64"}}).data
    assert edited["browserFingerPrint"]["os"] == "Linux x86_64"
    assert "Linux x86_64" in edited["browserFingerPrint"]["userAgent"]


def test_the_computers_screen_when_asked(owner):
    fp = create(owner, browserFingerPrint={"resolutionType": "0"})["browserFingerPrint"]
    assert fp["resolutionType"] == "0" and fp["userAgent"]
    assert not {"resolution", "openWidth", "openHeight", "devicePixelRatio"} & fp.keys()


def test_the_ip_flags_leave_their_fields_to_the_proxy(owner):
    fp = create(owner, browserFingerPrint={"isIpCreateLanguage": True,
                                           "isIpCreateTimeZone": True})["browserFingerPrint"]
    assert "languages" not in fp and "timeZone" not in fp and fp["userAgent"]


def test_a_given_screen_steers_the_draw():
    for platform in UA_OF_PLATFORM:
        for resolution in ("1920 x 1080", "1280 x 800", "1234 x 567"):
            fp = complete({"os": platform, "resolution": resolution}, "153.0")
            assert fp["resolution"] == resolution and fp["os"] == platform
            assert_consistent(fp, "153")


def test_the_devices_fitting_a_screen_are_found_once_and_drawn_among_at_random():
    """Finding them walks browserforge's whole network (5-60 ms); the draw among them
    stays random, and a draw leaves them as found for the next."""
    from browserfarm.services.fingerprints import _generator
    complete({"resolution": "1440 x 900"}, "153.0")
    walks = _generator()._fitting.cache_info().misses
    drawn = [complete({"resolution": "1440 x 900"}, "153.0") for _ in range(30)]
    assert _generator()._fitting.cache_info().misses == walks
    assert {fp["resolution"] for fp in drawn} == {"1440 x 900"}
    assert len({(fp["userAgent"], fp["devicePixelRatio"], fp["webGLRender"])
                for fp in drawn}) > 1


def test_hardware_concurrency_is_a_real_devices_whatever_the_clouds_cores():
    """Windows run on other desktops than the cloud that draws them: the counts are the
    data's (mostly 8 and more), not capped by this machine's cores."""
    counts = [complete({}, "153.0")["hardwareConcurrency"] for _ in range(40)]
    assert set(counts) <= set(range(CORES[0], CORES[1] + 1))
    assert len(set(counts)) > 1 and max(counts) >= 8


def test_a_given_core_version_steers_the_version_and_is_told_at_open():
    for given in ({"coreVersion": "118"}, {"version": "118"},
                  {"userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:118.0) Gecko/20100101 "
                                "Firefox/118.0"}):
        fp = complete(given, "153.0")
        assert fp["version"] == "118" and "Firefox/118.0" in fp["userAgent"], given
        assert "rv:118.0)" in fp["userAgent"]
        assert "Firefox 118" in version_warning(fp, "153.8.0esr")
    assert complete({"coreVersion": "118"}, "153.0")["coreVersion"] == "118"  # kept


def test_the_firefox_windows_are_drawn_for_is_a_setting(farm, owner, monkeypatch):
    assert load_settings(environ={"BROWSERFARM_FIREFOX_VERSION": "149.0"}
                         ).firefox_version == "149"
    with pytest.raises(SystemExit, match="BROWSERFARM_FIREFOX_VERSION"):
        load_settings(environ={"BROWSERFARM_FIREFOX_VERSION": "latest"})
    monkeypatch.setattr(farm, "settings", dataclasses.replace(farm.settings,
                                                              firefox_version="149"))
    for fp in (create(owner)["browserFingerPrint"],
               create(owner, browserFingerPrint={"os": "Win32"})["browserFingerPrint"]):
        assert_consistent(fp, "149")
    fp = create(owner, browserFingerPrint={"coreVersion": "148"})["browserFingerPrint"]
    assert (fp["coreVersion"], fp["version"]) == ("148", "148")
    assert "Firefox/148.0" in fp["userAgent"]


def test_a_version_that_no_longer_matches_the_engine_is_told():
    fp = complete({}, "152.0.1esr")
    assert version_warning(fp, "152.3.0esr") is None
    warning = version_warning(fp, "153.8.0esr")
    assert "Firefox 152" in warning and "Firefox 153" in warning
    assert "Firefox/152.0" in fp["userAgent"]  # told, never changed


# ----- real Firefox, through the Local API ----------------------------------------------

@firefox
def test_a_window_shows_its_stored_fingerprint_and_is_told_of_an_old_version(
        local, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]
    stored = window["browserFingerPrint"]
    opened = local("/browser/open", {"uuid": window["uuid"]})
    assert opened.code == 0, opened.body
    assert opened.data["warnings"] == []
    client = Firefox.attach(window_handle(opened.data))
    seen = client.execute_script("""return [navigator.userAgent, navigator.platform,
        navigator.oscpu, navigator.hardwareConcurrency, navigator.languages.join(",")]""")
    client.delete_session()
    assert seen[:2] == [stored["userAgent"], stored["os"]]
    assert seen[2] in stored["userAgent"]  # oscpu as the user agent says it
    # The stored count, or this desktop's cores where it has fewer (Firefox's cap),
    # and then the detail says it is not applied.
    cores = os.cpu_count()
    assert seen[3:] == [min(stored["hardwareConcurrency"], cores), stored["languages"]]
    not_applied = cloud_call(cloud, "/browser/detail", {"id": window["id"]})["data"][
        "notApplied"]
    assert ("browserFingerPrint.hardwareConcurrency" in not_applied) \
        == (stored["hardwareConcurrency"] > cores)
    assert local("/browser/close", {"uuid": window["uuid"]}).code == 0

    # Made for an older Firefox (or before an upgrade): kept, and said at open.
    old = cloud_call(cloud, "/browser/update", {"browserFingerPrint": {"version": "140"}})
    assert "Firefox/140.0" in old["data"]["browserFingerPrint"]["userAgent"]
    opened = local("/browser/open", {"uuid": old["data"]["uuid"]})
    assert opened.code == 0, opened.body
    assert len(opened.data["warnings"]) == 1 and "Firefox 140" in opened.data["warnings"][0]
    client = Firefox.attach(window_handle(opened.data))
    assert "Firefox/140.0" in client.execute_script("return navigator.userAgent")
    client.delete_session()
    assert local("/browser/close", {"uuid": old["data"]["uuid"]}).code == 0


def test_random_fingerprint_draws_the_drawn_fields_anew_at_each_open(owner):
    """BitBrowser's randomFingerprint: each launch configuration an agent gets holds a
    fresh draw on the window's OS; what is stored stays; fields outside the draw too."""
    major = engine_major()
    window = create(owner, randomFingerprint=True,
                    browserFingerPrint={"timeZone": "Asia/Tokyo", "os": "Win32"})
    launched = [owner("/browser/launch", {"id": window["id"]}).data["window"][
        "browserFingerPrint"] for _ in range(4)]
    assert len({json.dumps(fp, sort_keys=True) for fp in launched}) > 1
    for fp in launched:
        assert_consistent(fp, major or fp["version"])
        assert fp["timeZone"] == "Asia/Tokyo" and fp["os"] == "Win32"
    stored = owner("/browser/detail", {"id": window["id"]}).data["browserFingerPrint"]
    assert stored == window["browserFingerPrint"]
    # The fields the user gave are kept at each open; only the drawn ones are redrawn,
    # also on a window whose drawn field was edited since (then given).
    given = {"os": "Win32", "languages": "fr-FR,fr", "hardwareConcurrency": 4, "webGLManufacturer": "Intel Inc.",
             "webGLRender": "Intel Iris"}
    window = create(owner, randomFingerprint=True, browserFingerPrint=given)
    owner("/browser/update/partial", {"ids": [window["id"]],
                                      "browserFingerPrint": {"openWidth": 1001}})
    launched = [owner("/browser/launch", {"id": window["id"]}).data["window"][
        "browserFingerPrint"] for _ in range(6)]
    for fp in launched:
        assert {k: fp[k] for k in given} == given and fp["openWidth"] == 1001
    assert len({(fp["resolution"], fp["openHeight"], fp["devicePixelRatio"])
                for fp in launched}) > 1
    # Without it, every open gets the stored one.
    plain = create(owner)
    assert owner("/browser/launch", {"id": plain["id"]}).data["window"][
        "browserFingerPrint"] == plain["browserFingerPrint"]
