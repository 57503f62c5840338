"""BitBrowser's whole window and fingerprint vocabulary: every field its
/browser/update accepts is kept and answered, garbage in any of them is a 211 naming
it, the platform account's secrets are encrypted at rest and shown only to tokens that
may reveal them, and the detail says which stored fields Firefox does not apply."""
import os

import peewee as pw
import pytest

from browserfarm.api.windows import FingerprintSchema, WindowUpdateArgs
from browserfarm.browsers.backends import WindowBackend
from browserfarm.models import Window
from tests.conftest import in_db

# A valid value for every field of browserFingerPrint.
FINGERPRINT = {
    "coreProduct": "firefox", "coreVersion": "128", "ostype": "PC", "os": "Win32",
    "osVersion": "11,10", "version": "128", "userAgent": "Mozilla/5.0 (Windows NT 10.0; "
    "Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "isIpCreateTimeZone": False,
    "timeZone": "Europe/Berlin", "timeZoneOffset": 60, "webRTC": "3",
    "ignoreHttpsErrors": False, "position": "1", "isIpCreatePosition": False, "lat": 52.52,
    "lng": 13.405, "precisionData": 100.0, "isIpCreateLanguage": False,
    "languages": "de-DE,de;q=0.9", "isIpCreateDisplayLanguage": False,
    "displayLanguages": "de-DE", "resolutionType": "1", "resolution": "1920 x 1080",
    "openWidth": 1280, "openHeight": 720, "windowSizeLimit": True, "devicePixelRatio": 1.5,
    "colorDepth": 24, "fontType": "2", "font": "Arial,Calibri", "canvas": "0",
    "canvasValue": 687534, "webGL": "0", "webGLValue": 76433, "webGLMeta": "0",
    "webGLManufacturer": "Google Inc. (Intel)",
    "webGLRender": "ANGLE (Intel, Intel(R) HD Graphics 3000 Direct3D11 vs_5_0 ps_5_0)",
    "webgpu": {"vendor": "intel", "architecture": "gen-6"}, "audioContext": "0",
    "audioContextValue": 52, "mediaDevice": "1", "mediaDeviceValue": None,
    "speechVoices": "0", "speechVoicesValue": '[{"name": "Google Deutsch"}]',
    "hardwareConcurrency": 4, "deviceMemory": 8.0, "doNotTrack": "1",
    "clientRectNoiseEnabled": True, "clientRectNoiseValue": 34307, "portScanProtect": "0",
    "portWhiteList": "8080, 9222", "deviceInfoEnabled": True,
    "computerName": "DESKTOP-E9N2HJQP", "macAddr": "74-29-AF-3A-E9-63",
    "hostIP": "192.0.2.7", "totalDiskSpace": "4082286592",
    "disableSslCipherSuitesFlag": False, "disableSslCipherSuites": None,
    "enablePlugins": False, "plugins": "", "launchArgs": "--incognito",
    "platformVersion": "10.0.0", "architecture": "x86", "uamodel": "",
    "randomPlatformVersion": 0, "batchRandom": False, "batchUpdateFingerPrint": False,
}
# A valid value for every other BitBrowser window field (the proxy's: test_windows.py).
SETTINGS = {
    "platform": "https://www.facebook.com", "platformIcon": "facebook", "userName": "bob",
    "password": "hunter2-platform", "faSecretKey": "JBSWY3DPEHPK3PXP", "isSynOpen": 0,
    "workbench": "disable", "country": "de", "province": "be", "city": "berlin",
    "isIpv6": True, "isGlobalProxyInfo": True, "duplicateCheck": 1, "abortImage": True,
    "abortImageMaxSize": 10, "abortMedia": True, "muteAudio": True,
    "stopWhileNetError": True, "stopWhileIpChange": True, "stopWhileCountryChange": True,
    "syncBookmarks": True, "syncAuthorization": True, "syncHistory": True,
    "syncSessions": True, "syncExtensions": True, "syncUserExtensions": True,
    "syncPaymentsAndAddress": True, "credentialsEnableService": True,
    "isValidUsername": True, "allowedSignin": True, "clearCacheFilesBeforeLaunch": True,
    "clearCacheWithoutExtensions": True, "clearCookiesBeforeLaunch": True,
    "clearHistoriesBeforeLaunch": True, "randomFingerprint": False, "disableGpu": True,
    "disableTranslatePopup": True, "disableNotifications": True, "disableClipboard": True,
    "memorySaver": True, "enableBackgroundMode": True,
}
SECRETS = {"password": "hunter2-platform", "faSecretKey": "JBSWY3DPEHPK3PXP"}


def create(caller, **fields):
    answer = caller("/browser/update", fields)
    assert answer.code == 0, answer.body
    return answer.data


def test_the_test_values_cover_every_field():
    assert set(FINGERPRINT) == set(FingerprintSchema().fields)
    assert set(SETTINGS) <= set(WindowUpdateArgs().fields)


def test_every_field_round_trips_create_detail_list(owner):
    window = create(owner, browserFingerPrint=FINGERPRINT, **SETTINGS)
    detail = owner("/browser/detail", {"id": window["id"]}).data
    listed = owner("/browser/list", {}).data["list"][0]
    for shown in (window, detail, listed):
        assert {k: shown[k] for k in SETTINGS} == SETTINGS
        # Kept as given (what a window leaves out may be drawn for it).
        assert {k: shown["browserFingerPrint"].get(k) for k in FINGERPRINT} == FINGERPRINT


def test_a_partial_update_sets_every_field(owner):
    """All fingerprint fields at once, too: SQLite's json_set takes 63 keys a call."""
    window = create(owner)
    answer = owner("/browser/update/partial", {"ids": [window["id"]], **SETTINGS,
                                                "browserFingerPrint": FINGERPRINT})
    assert answer.code == 0, answer.body
    detail = owner("/browser/detail", {"id": window["id"]}).data
    assert {k: detail[k] for k in SETTINGS} == SETTINGS
    assert {k: detail["browserFingerPrint"].get(k) for k in FINGERPRINT} == FINGERPRINT


def test_a_new_window_gets_bitbrowsers_defaults(owner):
    window = create(owner)
    assert (window["workbench"], window["isSynOpen"], window["muteAudio"],
            window["password"], window["abortImageMaxSize"]) == ("localserver", 1, False,
                                                                 "", None)


@pytest.mark.parametrize("fingerprint, field", [
    ({"bogus": 1}, "bogus"),  # unknown, like unknown top-level fields
    ({"os": "Windows 95"}, "os"), ({"ostype": "Desktop"}, "ostype"),
    ({"osVersion": "eleven"}, "osVersion"), ({"version": "v128"}, "version"),
    ({"timeZoneOffset": 5000}, "timeZoneOffset"), ({"languages": "english!"}, "languages"),
    ({"languages": "de-DE\n"}, "languages"), ({"displayLanguages": 7}, "displayLanguages"),
    ({"resolutionType": "2"}, "resolutionType"), ({"colorDepth": 0}, "colorDepth"),
    ({"fontType": "9"}, "fontType"), ({"canvas": "2"}, "canvas"),
    ({"canvasValue": "lots"}, "canvasValue"), ({"webGLMeta": "yes"}, "webGLMeta"),
    ({"webGLRender": "x" * 600}, "webGLRender"), ({"webgpu": "intel"}, "webgpu"),
    ({"audioContextValue": 101}, "audioContextValue"), ({"deviceMemory": 3}, "deviceMemory"),
    ({"doNotTrack": "maybe"}, "doNotTrack"), ({"clientRectNoiseValue": -1},
                                              "clientRectNoiseValue"),
    ({"portScanProtect": "on"}, "portScanProtect"), ({"portWhiteList": "80,99999"},
                                                     "portWhiteList"),
    ({"portWhiteList": "http"}, "portWhiteList"), ({"computerName": "bad name!"},
                                                   "computerName"),
    ({"macAddr": "74:29"}, "macAddr"), ({"hostIP": "999.1.1.1"}, "hostIP"),
    ({"totalDiskSpace": "lots"}, "totalDiskSpace"), ({"platformVersion": "ten"},
                                                     "platformVersion"),
    ({"architecture": "mips"}, "architecture"), ({"randomPlatformVersion": 2},
                                                 "randomPlatformVersion"),
    ({"batchRandom": "perhaps"}, "batchRandom"), ({"hardwareConcurrency": 0},
                                                  "hardwareConcurrency"),
    ({"ignoreHttpsErrors": "sometimes"}, "ignoreHttpsErrors"),
    ({"launchArgs": "x" * 5000}, "launchArgs"), ({"speechVoicesValue": 5}, "speechVoicesValue"),
    # Xvfb allocates a window's display whole: no screen beyond 8K (7680 x 4320).
    ({"resolution": "32767 x 32767"}, "resolution"), ({"resolution": "8000 x 8000"},
                                                     "resolution"),
    ({"resolution": "7681 x 1000"}, "resolution"), ({"resolution": "7680 x 7680"},
                                                    "resolution"),
    ({"resolution": "100 x 100"}, "resolution"), ({"openWidth": 20000}, "openWidth"),
    ({"openHeight": 7681}, "openHeight"), ({"openWidth": 7680, "openHeight": 7680},
                                           "openWidth"),
    ({"resolution": "3840 x 2160", "devicePixelRatio": 3}, "devicePixelRatio"),
    ({"lat": "north"}, "lat"), ({"lng": 200}, "lng"), ({"lat": True}, "lat"),
])
def test_fingerprint_garbage_is_211_naming_the_field(owner, fingerprint, field):
    before = owner("/browser/list", {}).data["totalNum"]
    answer = owner("/browser/update", {"browserFingerPrint": fingerprint})
    assert (answer.status, answer.code) == (400, 211), answer.body
    assert answer.data["field"] == f"browserFingerPrint.{field}"
    assert owner("/browser/list", {}).data["totalNum"] == before


def test_large_screens_that_fit_are_kept(owner):
    """8K, portrait, and 4K at devicePixelRatio 2: within the display limit."""
    for fingerprint in ({"resolution": "7680 x 4320"}, {"resolution": "1080x1920"},
                        {"resolution": "3840 x 2160", "devicePixelRatio": 2},
                        {"openWidth": 7680, "openHeight": 4320}):
        shown = create(owner, browserFingerPrint=fingerprint)["browserFingerPrint"]
        assert {k: shown[k] for k in fingerprint} == fingerprint


BLANKS = ("lat", "lng", "precisionData", "devicePixelRatio", "deviceMemory",
          "timeZoneOffset", "openWidth", "openHeight", "colorDepth", "hardwareConcurrency")


def test_blank_numbers_are_unset_as_bitbrowser_clients_send_them(owner):
    """BitBrowser's clients send "" for a number they leave unset: accepted, no value."""
    window = create(owner, browserFingerPrint={field: "" for field in BLANKS})
    shown = owner("/browser/detail", {"id": window["id"]}).data["browserFingerPrint"]
    assert all(shown.get(field) in (None, "") for field in ("lat", "lng")), shown
    partial = owner("/browser/update/partial", {"ids": [window["id"]],
                                                "browserFingerPrint": {"lat": "52.5",
                                                                       "lng": ""}})
    assert partial.code == 0, partial.body
    shown = owner("/browser/detail", {"id": window["id"]}).data["browserFingerPrint"]
    assert shown["lat"] == 52.5 and shown.get("lng") in (None, "")


@pytest.mark.parametrize("body, field", [
    ({"workbench": "on"}, "workbench"), ({"isSynOpen": 2}, "isSynOpen"),
    ({"faSecretKey": "not base32!"}, "faSecretKey"), ({"password": "x" * 2000}, "password"),
    ({"duplicateCheck": 5}, "duplicateCheck"), ({"abortImageMaxSize": -1},
                                                "abortImageMaxSize"),
    ({"muteAudio": "loud"}, "muteAudio"), ({"platform": "x" * 3000}, "platform"),
    ({"country": "x" * 65}, "country"), ({"userName": ["bob"]}, "userName"),
])
def test_window_field_garbage_is_211_naming_the_field(owner, body, field):
    answer = owner("/browser/update", body)
    assert (answer.status, answer.code, answer.data["field"]) == (400, 211, field)
    window = create(owner)
    answer = owner("/browser/update/partial", {"ids": [window["id"]], **body})
    assert (answer.code, answer.data["field"]) == (211, field)


def test_an_unknown_fingerprint_field_is_refused_by_every_write(owner):
    window = create(owner)
    for path, body in (("/browser/update", {"id": window["id"]}),
                       ("/browser/update/partial", {"ids": [window["id"]]})):
        answer = owner(path, {**body, "browserFingerPrint": {"seed": 1}})
        assert (answer.code, answer.data["field"]) == (211, "browserFingerPrint.seed")
    assert "seed" not in owner("/browser/detail", {"id": window["id"]}).data[
        "browserFingerPrint"]


def test_stored_unknown_fingerprint_keys_stay_readable(owner, farm):
    """Windows saved before fields were checked keep what they hold: answered as it
    is, and reported as not applied."""
    window = create(owner)
    in_db(farm, lambda: Window.update(fingerprint={"seed": 7, "os": "Win32"}).where(
        Window.id == window["id"]).execute())
    owner("/browser/update/partial", {"ids": [window["id"]], "remark": "x"})  # a new revision
    detail = owner("/browser/detail", {"id": window["id"]})
    assert detail.code == 0 and detail.data["browserFingerPrint"]["seed"] == 7
    assert "browserFingerPrint.seed" in detail.data["notApplied"]
    assert owner("/browser/list", {}).data["list"][0]["browserFingerPrint"]["seed"] == 7


def test_platform_secrets_are_encrypted_at_rest(owner, farm):
    window = create(owner, **SECRETS)
    row = in_db(farm, lambda: Window.get_by_id(window["id"]))
    assert row.platform_password_enc and row.fa_secret_key_enc
    for plain in SECRETS.values():
        assert plain not in row.platform_password_enc + row.fa_secret_key_enc
    assert farm.cipher.decrypt(row.platform_password_enc) == SECRETS["password"]
    if isinstance(farm.db, pw.SqliteDatabase):  # nor anywhere in the file
        with farm.db.connection_context():
            farm.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = farm.db.database
        stored = b"".join(open(f, "rb").read() for f in (path, path + "-wal")
                          if os.path.exists(f))
        for plain in SECRETS.values():
            assert plain.encode() not in stored


def test_platform_secrets_are_shown_only_to_tokens_that_may_reveal_them(owner, token_with):
    window = create(owner, userName="bob", **SECRETS)
    reader = token_with(role="read-only")
    for query in ({}, {"pageSize": 5}):
        # The owner asks first, so a revealing answer is cached; the reader's is its own.
        assert {k: owner("/browser/list", query).data["list"][0][k] for k in SECRETS} \
            == SECRETS
        shown = reader("/browser/list", query)
        assert {k: shown.data["list"][0][k] for k in SECRETS} == {k: "" for k in SECRETS}
        assert not any(plain in str(shown.body) for plain in SECRETS.values())
    detail = reader("/browser/detail", {"id": window["id"]}).data
    assert (detail["userName"], detail["password"], detail["faSecretKey"]) == ("bob", "", "")
    for revealing in (token_with(role="member"), token_with("browser:list",
                                                            "browser:proxy:reveal")):
        detail = revealing("/browser/detail", {"id": window["id"]}).data
        assert {k: detail[k] for k in SECRETS} == SECRETS


def test_the_detail_says_what_firefox_does_not_apply(owner):
    cores = os.cpu_count()
    window = create(owner, muteAudio=True, browserFingerPrint={
        "deviceMemory": 8, "hardwareConcurrency": cores + 1, "macAddr": "74-29-AF-3A-E9-63",
        "userAgent": "Mozilla/5.0 Test", "canvas": "1", "launchArgs": "--incognito"})
    detail = owner("/browser/detail", {"id": window["id"]}).data
    reasons = detail["notApplied"]
    assert "deviceMemory" in reasons["browserFingerPrint.deviceMemory"]
    assert str(cores) in reasons["browserFingerPrint.hardwareConcurrency"]
    assert {"browserFingerPrint.macAddr", "browserFingerPrint.launchArgs",
            "muteAudio"} <= reasons.keys()
    # Applied as asked: userAgent (a pref), canvas "1" (off: the real canvas).
    assert not {"browserFingerPrint.userAgent", "browserFingerPrint.canvas"} & reasons.keys()
    within = create(owner, browserFingerPrint={"hardwareConcurrency": 1})
    assert "browserFingerPrint.hardwareConcurrency" not in owner(
        "/browser/detail", {"id": within["id"]}).data["notApplied"]


def test_screen_fields_are_applied_and_colour_depth_only_at_24():
    """resolution and devicePixelRatio make the virtual display, windowSizeLimit keeps
    the window within it, colorDepth 24 is the display's; another depth is reported
    (Firefox has no WebGL on Xvfb's 16- and 30-bit screens)."""
    from browserfarm_plugins.firefox_prefs import not_applied, window_size
    screen = {"resolution": "1600 x 900", "devicePixelRatio": 2, "openWidth": 1800,
              "openHeight": 700, "windowSizeLimit": True, "colorDepth": 24}
    assert not_applied({"browserFingerPrint": screen}, 4) == {}
    reasons = not_applied({"browserFingerPrint": screen | {"colorDepth": 30}}, 4)
    assert "WebGL" in reasons.pop("browserFingerPrint.colorDepth") and not reasons
    assert window_size(screen) == (1600, 700)
    assert window_size(screen | {"windowSizeLimit": False}) == (1800, 700)


def test_a_backend_reports_nothing_unless_it_says():
    assert WindowBackend.not_applied({"browserFingerPrint": {"deviceMemory": 8}}) == {}
