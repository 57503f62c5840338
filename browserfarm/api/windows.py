"""``/browser/*``: the Browser Window cloud API (shared/spec/browser-window-api.txt)
and its recycle bin."""
from __future__ import annotations

import ipaddress
import re
import zoneinfo

from flask import g
from flask.views import MethodView
from marshmallow import (Schema, ValidationError, fields, validate, validates,
                         validates_schema)

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import (EXAMPLE_UUID, MAX_ID, MAX_SECRET, Cookies, FlexibleBool,
                                    FlexibleFloat, FlexibleInt, JsonObject, OneOf,
                                    WindowRef, args, check_stored_json, digits_pattern, doc,
                                    window_ref_args,
                                    window_ref_fields)
from browserfarm.browsers import display
from browserfarm.errors import CONFIG_NOT_OBJECT
from browserfarm.services.windows import SORT_NAMES, WindowService

MAX_BATCH = 1000
MAX_PAGE_SIZE = 100

blp = Blueprint("windows", __name__, description="Browser windows (cloud API)")


def windows() -> WindowService:
    return WindowService(farm(), g.caller)


# ----- schemas -----------------------------------------------------------------

def _choice(*values: str, description: str = "", example: str | None = None) -> fields.String:
    """One of BitBrowser's enumerations, numbers as strings ("0", "1"); blank: the
    default. ``example``: the first value unless given."""
    return fields.String(validate=validate.OneOf(["", *values]), metadata=doc(
        description or f"One of {', '.join(values)}; blank: the default",
        values[0] if example is None else example))


def _one_line(value: str) -> None:
    """Python's ``$`` matches before a final line break; the document's pattern not."""
    if "\n" in value:
        raise ValidationError("Must be one line.")


def _text(max_length: int, pattern: str | None = None, description: str = "",
          example: str = "", **kwargs):
    """Free text up to ``max_length``; ``pattern`` (anchored): what it must look like
    (``description`` says it in words, in the error too)."""
    rules = [validate.Length(max=max_length)]
    if pattern:
        rules += [validate.Regexp(pattern, error="Must look like: " + description),
                  _one_line]
    return fields.String(validate=rules, metadata=doc(description, example), **kwargs)


def _flag(description: str, example: bool = True) -> FlexibleBool:
    return FlexibleBool(metadata=doc(description, example))


LANGUAGE = r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*(;q=[01](\.[0-9]{1,3})?)?"
LANGUAGES = rf"^({LANGUAGE}( *, *{LANGUAGE})*)?$"
VERSIONS = r"^([0-9]{1,4}(\.[0-9]{1,6}){0,3}( *, *[0-9]{1,4}(\.[0-9]{1,6}){0,3})*)?$"
PORTS = r"^([0-9]{1,5}( *, *[0-9]{1,5})*)?$"
CHOICE_NOISE = "0 noise (random), 1 off (the real value)"
OS_NAMES = ("Win32", "MacIntel", "Linux x86_64", "iPhone", "Linux armv81", "Linux armv8l")


MIN_SIDE = 320  # the smallest screen side a resolution may give
SIDE = digits_pattern(MIN_SIDE, display.MAX_SIDE)


class FingerprintSchema(Schema):
    """BitBrowser's ``browserFingerPrint``: every field its /browser/update accepts, with
    its value rules; any other field is refused (211 naming it). What a backend does
    not apply of it: the window detail's ``notApplied``. Windows stored before these
    rules keep what they hold (answers don't check it)."""

    coreProduct = fields.String(metadata=doc("Browser backend; default firefox", "firefox",
                                             registry="window_backends"))
    coreVersion = _text(32, description="The browser's major version the fingerprint "
                                        "claims", example="128")
    ostype = _choice("PC", "Android", "IOS", description="Device kind: PC, Android or IOS")
    os = _choice(*OS_NAMES, description="navigator.platform")
    osVersion = _text(200, VERSIONS, "OS versions, comma-separated (11,10)", "11,10")
    version = _text(200, VERSIONS, "a browser version (128 or 128.0.1)", "128")
    userAgent = _text(1024, description="The User-Agent; blank: one made from os, "
                                        "osVersion and version",
                      example="Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                              "Gecko/20100101 Firefox/128.0")
    isIpCreateTimeZone = _flag("Take timeZone from the proxy's exit IP at open")
    timeZone = fields.String(metadata=doc("IANA name, e.g. Europe/Berlin", "Europe/Berlin"))
    timeZoneOffset = FlexibleInt(accept_blank=True, validate=validate.Range(-1440, 1440),
                                 metadata=doc("Minutes from UTC", 60))
    webRTC = _choice("0", "1", "2", "3", description="0 replace, 1 allow, 2 disable, "
                                                    "3 privacy", example="2")
    ignoreHttpsErrors = _flag("Accept invalid TLS certificates", False)
    position = _choice("0", "1", "2", description="0 ask, 1 allow, 2 block",
                       example="2")
    isIpCreatePosition = _flag("Take lat and lng from the proxy's exit IP at open")
    lat = FlexibleFloat(accept_blank=True, validate=validate.Range(-90, 90),
                        metadata=doc("Geolocation latitude", 52.52))
    lng = FlexibleFloat(accept_blank=True, validate=validate.Range(-180, 180),
                        metadata=doc("Geolocation longitude", 13.405))
    precisionData = FlexibleFloat(accept_blank=True, validate=validate.Range(0, 100000),
                                  metadata=doc("Geolocation accuracy, metres", 100))
    isIpCreateLanguage = _flag("Take languages from the proxy's exit IP at open")
    languages = _text(500, LANGUAGES, "language tags, comma-separated (de-DE,de)",
                      "de-DE,de")
    isIpCreateDisplayLanguage = _flag("Take displayLanguages from the proxy's exit IP "
                                      "at open", False)
    displayLanguages = _text(500, LANGUAGES, "language tags, comma-separated (de-DE)",
                             "de-DE")
    resolutionType = _choice("0", "1", description="0 the computer's, 1 resolution",
                             example="1")
    # A window's virtual display is resolution (else openWidth x openHeight) times
    # devicePixelRatio, allocated whole by Xvfb: within display.fits (8K).
    resolution = fields.String(validate=validate.Regexp(
        f"^{SIDE} ?x ?{SIDE}$", error=f"Must look like 1920 x 1080, each side {MIN_SIDE} "
                                      f"to {display.MAX_SIDE}."),
        metadata=doc("Screen size, width x height; at most 7680 x 4320", "1920 x 1080"))
    openWidth = FlexibleInt(accept_blank=True,
                            validate=validate.Range(100, display.MAX_SIDE),
                            metadata=doc("Window width at open, pixels", 1280))
    openHeight = FlexibleInt(accept_blank=True,
                             validate=validate.Range(100, display.MAX_SIDE),
                             metadata=doc("Window height at open, pixels", 800))
    windowSizeLimit = _flag("Keep the window within openWidth x openHeight", False)
    devicePixelRatio = FlexibleFloat(accept_blank=True, validate=validate.Range(0.25, 10),
                                     metadata=doc("window.devicePixelRatio", 1))
    colorDepth = FlexibleInt(accept_blank=True, validate=validate.Range(1, 48),
                             metadata=doc("screen.colorDepth, bits", 24))
    fontType = _choice("0", "1", "2", description="0 the system's, 1 custom, 2 random")
    font = _text(20000, description="font names, comma-separated", example="Arial,Verdana")
    canvas = _choice("0", "1", description=CHOICE_NOISE)
    canvasValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 10_000_000),
                              metadata=doc("Canvas noise seed", 12345))
    webGL = _choice("0", "1", description=CHOICE_NOISE)
    webGLValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 10_000_000),
                             metadata=doc("WebGL noise seed", 12345))
    webGLMeta = _choice("0", "1", description="0 custom (webGLManufacturer, webGLRender), "
                                              "1 off")
    webGLManufacturer = _text(256, description="WebGL unmasked vendor",
                              example="Google Inc. (Intel)")
    webGLRender = _text(512, description="WebGL unmasked renderer",
                        example="ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 "
                                "vs_5_0 ps_5_0, D3D11)")
    webgpu = fields.Dict(allow_none=True, metadata=doc("WebGPU adapter info",
                                                       {"vendor": "intel"}))
    audioContext = _choice("0", "1", description=CHOICE_NOISE)
    audioContextValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 100),
                                    metadata=doc("Audio noise seed", 42))
    mediaDevice = _choice("0", "1", description="0 custom, 1 off")
    mediaDeviceValue = fields.Raw(allow_none=True, metadata=doc(
        "BitBrowser's value, kept", {"audioinput": 1, "videoinput": 1, "audiooutput": 1}))
    speechVoices = _choice("0", "1", description="0 custom, 1 off")
    speechVoicesValue = _text(100_000, allow_none=True,
                              description="the voices as JSON text",
                              example='[{"name": "Microsoft David", "lang": "en-US"}]')
    hardwareConcurrency = FlexibleInt(accept_blank=True, validate=validate.Range(1, 256),
                                      metadata=doc("navigator.hardwareConcurrency", 8))
    deviceMemory = FlexibleFloat(accept_blank=True,
                                 validate=validate.OneOf([0.25, 0.5, 1, 2, 4, 8]),
                                metadata=doc("GiB, as browsers report it", 8))
    doNotTrack = _choice("0", "1", description="1 on, 0 off")
    clientRectNoiseEnabled = _flag("Add noise to ClientRects", False)
    clientRectNoiseValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 999999),
                                       metadata=doc("ClientRects noise seed", 1234))
    portScanProtect = _choice("0", "1", description="0 on, 1 off")
    portWhiteList = _text(2000, PORTS, "ports, comma-separated (8080,9222)", "8080,9222")
    deviceInfoEnabled = _flag("Use computerName and macAddr", False)
    computerName = _text(63, r"^([A-Za-z0-9][A-Za-z0-9_-]*)?$",
                         "a computer name (DESKTOP-E9N2HJQ)", "DESKTOP-E9N2HJQ")
    macAddr = _text(17, r"^([0-9A-Fa-f]{2}([-:][0-9A-Fa-f]{2}){5})?$",
                    "a MAC address (74-29-AF-3A-E9-63)", "74-29-AF-3A-E9-63")
    hostIP = _text(45, description="an IP address", example="192.0.2.10")
    totalDiskSpace = _text(20, r"^[0-9]*$", "bytes", "512000000000")
    disableSslCipherSuitesFlag = _flag("Disable the TLS cipher suites of "
                                       "disableSslCipherSuites", False)
    disableSslCipherSuites = _text(10000, allow_none=True,
                                   description="TLS cipher suites to disable, "
                                               "comma-separated",
                                   example="0x009c,0x009d")
    enablePlugins = _flag("Report the plugins of plugins", False)
    plugins = _text(100_000, description="navigator.plugins as BitBrowser sends them",
                    example="")
    launchArgs = _text(4096, allow_none=True, description="browser arguments, "
                                                          "comma-separated",
                       example="--mute-audio")
    platformVersion = _text(32, r"^([0-9]{1,5}(\.[0-9]{1,5}){0,3})?$",
                            "a platform version (10.0.0)", "10.0.0")
    architecture = _choice("x86", "arm", description="CPU architecture (client hints)")
    uamodel = _text(200, description="Device model (client hints)", example="")
    randomPlatformVersion = FlexibleInt(validate=validate.Range(0, 1), metadata=doc(
        "1: a random platformVersion", 0))
    batchRandom = _flag("Randomise the fingerprint of each window of a batch", False)
    batchUpdateFingerPrint = _flag("Update the fingerprint in a batch edit", False)

    @validates_schema
    def _storable(self, data, **kwargs):
        # Objects kept as given (webgpu, mediaDeviceValue): the stored-JSON rules hold.
        check_stored_json(data)

    @validates("resolution")
    def _screen(self, value, **kwargs):
        if not display.fits(*display.parse_size(value)):
            raise ValidationError("At most 7680 x 4320 in all.")

    @validates_schema
    def _display_fits(self, data, **kwargs):
        """The display this asks for (checked when the fields come together; a start
        refuses any other too large one)."""
        ratio = data.get("devicePixelRatio") or 1
        if data.get("resolution"):
            size, field = display.parse_size(data["resolution"]), "resolution"
        elif data.get("openWidth") and data.get("openHeight"):
            size, field = (data["openWidth"], data["openHeight"]), "openWidth"
        else:
            return
        if not display.fits(*(round(side * ratio) for side in size)):
            raise ValidationError(
                f"{field} x devicePixelRatio is too large a screen: at most "
                f"{display.MAX_SIDE} pixels a side and 7680 x 4320 in all.",
                field_name="devicePixelRatio" if ratio > 1 else field)

    @validates("timeZone")
    def _known_zone(self, value, **kwargs):
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValidationError("Not a known IANA time zone.") from None

    @validates("hostIP")
    def _ip(self, value, **kwargs):
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValidationError("Not an IP address.") from None

    @validates("portWhiteList")
    def _ports(self, value, **kwargs):
        if any(int(port) > 65535 for port in re.findall(r"[0-9]+", value)):
            raise ValidationError("Ports go up to 65535.")


def _proxy_fields(method_required: bool = False) -> dict:
    return {
        # Checked against the registered proxy sources, so a plugin can add a method.
        "proxyMethod": FlexibleInt(required=method_required, metadata=doc(
            "Proxy method: 2 custom proxy, 3 API-extracted proxy, 4 proxy pool binding", 2,
            registry="proxy_methods")),
        "proxyType": fields.String(metadata=doc("Proxy type: direct, http, https, socks5, "
                                                "ssh, or a plugin's type (noproxy: direct)",
                                                "socks5")),
        "host": fields.String(validate=validate.Length(max=255),
                              metadata=doc("Proxy host (proxyMethod 2)", "203.0.113.7")),
        "port": FlexibleInt(accept_blank=True, validate=validate.Range(1, 65535),
                            metadata=doc("Proxy port (proxyMethod 2)", 1080)),
        "proxyUserName": fields.String(validate=validate.Length(max=255),
                                       metadata=doc("Proxy username", "user")),
        "proxyPassword": fields.String(validate=validate.Length(max=MAX_SECRET),
                                       metadata=doc("Proxy password; for ssh a password or "
                                                    "a private key", "secret")),
        "proxyId": FlexibleInt(accept_blank=True, validate=validate.Range(min=1),
                               metadata=doc("Pool proxy (proxyMethod 4)", 1)),
        "dynamicIpUrl": fields.String(validate=validate.Length(max=2048), metadata=doc(
            "API proxy extraction URL (proxyMethod 3): answers host:port, "
            "host:port:user:pass, user:pass@host:port, scheme://... or JSON",
            "https://proxy-provider.example/get?key=KEY")),
        "dynamicIpChannel": fields.String(validate=validate.Length(max=64), metadata=doc(
            "IP extraction provider; user:pass:host:port names that answer format", "")),
        "isDynamicIpChangeIp": FlexibleBool(metadata=doc(
            "Extract a new IP on each open (else extracted once and reused)", False)),
        "refreshProxyUrl": fields.String(validate=validate.Length(max=2048), metadata=doc(
            "Proxy refresh URL, called to rotate the exit IP",
            "https://proxy-provider.example/rotate?key=KEY")),
        "enableSocks5Udp": FlexibleBool(metadata=doc("SOCKS5 UDP support through the "
                                                     "window's relay", False)),
        "ipCheckService": fields.String(metadata=doc(
            "IP lookup service for proxy checks (blank: ip-api)", "ip-api",
            registry="ip_check_services")),
    }


def _group_id(description="Group ID; omitted or 0: ungrouped", **kwargs):
    return FlexibleInt(accept_blank=True, blank_as=0, validate=validate.Range(min=0),
                       metadata=doc(description, 1), **kwargs)


def _tag_ids():
    return fields.List(FlexibleInt(validate=validate.Range(min=1)),
                       validate=validate.Length(max=100),
                       metadata=doc("Tag ID array; replaces the window's tags", [1]))


class _WindowRefs(fields.List):
    """A list of ``WindowRef``. A batch of plain ids, the usual one, is taken as it is:
    1,000 calls of the item field cost 2-3 ms; any other list goes item by item (and
    errs as it always did)."""

    def __init__(self, **kwargs):
        super().__init__(WindowRef(), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is list and all(type(v) is int and 1 <= v <= MAX_ID for v in value):
            return list(value)
        return super()._deserialize(value, attr, data, **kwargs)


def _ids():
    return _WindowRefs(required=True, validate=validate.Length(1, MAX_BATCH),
                       metadata=doc(f"Window ids or uuids, 1 to {MAX_BATCH}", [1]))


def _flags(described: dict[str, str]) -> dict:
    """Switches, by name with what each turns on (example: off)."""
    return {name: _flag(description, False) for name, description in described.items()}


# BitBrowser's other window fields (what a backend applies of them: the detail's
# notApplied).
_SETTINGS_FIELDS = {
    "platform": fields.String(validate=validate.Length(max=2048), metadata=doc(
        "The account's platform, a URL (https://www.facebook.com)",
        "https://www.facebook.com")),
    "platformIcon": fields.String(validate=validate.Length(max=255), metadata=doc(
        "The platform's icon name", "facebook")),
    "userName": fields.String(validate=validate.Length(max=255),
                              metadata=doc("The platform account's", "shop@example.com")),
    "password": fields.String(validate=validate.Length(max=1024), metadata=doc(
        "The platform account's; encrypted at rest", "secret")),
    "faSecretKey": _text(256, r"^[A-Za-z2-7 =-]*$", "a base32 2FA secret key; encrypted "
                                                    "at rest", "JBSWY3DPEHPK3PXP"),
    "isSynOpen": FlexibleInt(validate=validate.Range(0, 1),
                             metadata=doc("1: several users may open it", 0)),
    "workbench": fields.String(validate=validate.OneOf(["localserver", "disable"]),
                               metadata=doc("BitBrowser's workbench page: localserver or "
                                            "disable", "disable")),
    "country": fields.String(validate=validate.Length(max=64),
                             metadata=doc("The proxy's country (a note)", "DE")),
    "province": fields.String(validate=validate.Length(max=64),
                              metadata=doc("The proxy's province (a note)", "Berlin")),
    "city": fields.String(validate=validate.Length(max=64),
                          metadata=doc("The proxy's city (a note)", "Berlin")),
    "duplicateCheck": FlexibleInt(validate=validate.Range(0, 1), metadata=doc(
        "1: check that no other window uses the same proxy", 0)),
    "abortImageMaxSize": FlexibleInt(accept_blank=True, validate=validate.Range(0, MAX_ID),
                                     metadata=doc("With abortImage: block images larger "
                                                  "than this, KB", 100)),
    **_flags({
        "isIpv6": "The proxy is reached over IPv6",
        "isGlobalProxyInfo": "Use the account's global proxy settings",
        "abortImage": "Block images (larger than abortImageMaxSize)",
        "abortMedia": "Block video and audio",
        "muteAudio": "Mute the window",
        "stopWhileNetError": "Stop opening when the network fails",
        "stopWhileIpChange": "Stop opening when the exit IP changed",
        "stopWhileCountryChange": "Stop opening when the exit IP's country changed",
        "syncBookmarks": "Keep bookmarks in the profile",
        "syncAuthorization": "Keep saved logins in the profile",
        "syncHistory": "Keep history in the profile",
        "syncSessions": "Keep the session in the profile",
        "syncExtensions": "Keep extensions' data in the profile",
        "syncUserExtensions": "Keep extensions the user installed",
        "syncPaymentsAndAddress": "Keep payment methods and addresses",
        "credentialsEnableService": "Offer to save passwords",
        "isValidUsername": "Check the platform account's userName",
        "allowedSignin": "Allow signing in to the browser",
        "clearCacheFilesBeforeLaunch": "Clear the cache before each open",
        "clearCacheWithoutExtensions": "Clear the cache but keep extensions' data",
        "clearCookiesBeforeLaunch": "Clear cookies before each open",
        "clearHistoriesBeforeLaunch": "Clear history before each open",
        "randomFingerprint": "A new random fingerprint at each open",
        "disableGpu": "Disable hardware acceleration",
        "disableTranslatePopup": "No translation prompt",
        "disableNotifications": "Block notification prompts",
        "disableClipboard": "Block clipboard reads by pages",
        "memorySaver": "Unload idle tabs",
        "enableBackgroundMode": "Keep running after the last window closes",
    }),
}

_META_FIELDS = {
    "name": fields.String(validate=validate.Length(max=200), metadata=doc(
        "Window name; a default name is made if omitted", "shop 1")),
    "remark": fields.String(validate=validate.Length(max=5000),
                            metadata=doc("Window remark", "Created via API")),
    "groupId": _group_id(),
    "tagIds": _tag_ids(),
    "browserFingerPrint": fields.Nested(FingerprintSchema, metadata={
        "description": "Fingerprint configuration object; {} is allowed"}),
    "config": JsonObject(error_messages={"invalid": CONFIG_NOT_OBJECT,
                                         "null": CONFIG_NOT_OBJECT},
                         metadata=doc("Full window configuration, kept as given (advanced "
                                      "clients)", {"homepage": "https://example.org/"})),
    **_SETTINGS_FIELDS,
}

WindowUpdateArgs = args("WindowUpdateArgs", {
    **window_ref_fields(), **_META_FIELDS, **_proxy_fields(),
    "syncCookies": _flag("Store the window's cookies back in the cloud when it closes"),
    "syncTabs": _flag("Keep open tabs in the profile", False),
    "syncLocalStorage": _flag("Keep localStorage in the profile", False),
    "syncIndexedDb": _flag("Keep IndexedDB in the profile", False),
    "url": fields.String(validate=validate.Length(max=8192),
                         metadata=doc("Start page", "https://example.org/")),
    "cookie": Cookies(metadata=doc("Cookies to import (BitBrowser's cookie objects; name "
                                   "required), seeding the first open",
                                   [{"name": "session", "value": "abc",
                                     "domain": ".example.org", "path": "/"}])),
})

PartialUpdateArgs = args("PartialUpdateArgs", {"ids": _ids(), **_META_FIELDS})

WindowRefArgs = window_ref_args("WindowRefArgs")

# One window (id, browserId or uuid) or several (ids), not both.
DeleteArgs = args("DeleteArgs", {**window_ref_fields(), "ids": fields.List(
    WindowRef(), validate=validate.Length(1, MAX_BATCH), metadata=doc(
        f"Window ids or uuids, 1 to {MAX_BATCH} (instead of id, browserId or uuid)",
        [1]))}, OneOf(
    (("id", "browserId", "uuid"), ("ids",)),
    missing=("id", "one of id, browserId, uuid or ids is required"),
    mixed=("ids", "give either ids or one of id, browserId, uuid")))

IdsArgs = args("IdsArgs", {"ids": _ids()})

GroupUpdateArgs = args("GroupUpdateArgs", {"ids": _ids(), "groupId": _group_id(required=True)})

RemarkUpdateArgs = args("RemarkUpdateArgs", {"ids": _ids(), "remark": fields.String(
    required=True, validate=validate.Length(max=5000),
    metadata=doc("The windows' new remark", "checked on Monday"))})

ProxyUpdateArgs = args("ProxyUpdateArgs", {"ids": _ids(),
                                           **_proxy_fields(method_required=True)})

ListArgs = args("ListArgs", {
    "page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000),
                           metadata=doc("Page number, from 0 (the first page)", 0)),
    "pageSize": FlexibleInt(load_default=10, validate=validate.Range(1, MAX_PAGE_SIZE),
                            metadata=doc(f"Windows per page, 1 to {MAX_PAGE_SIZE}", 10)),
    "groupId": _group_id("Only this group's windows; 0 or omitted: all windows"),
    "keyword": fields.String(validate=validate.Length(max=200),
                             metadata=doc("In name or remark", "shop")),
    "name": fields.String(validate=validate.Length(max=200),
                          metadata=doc("In the name", "shop 1")),
    "remark": fields.String(validate=validate.Length(max=200),
                            metadata=doc("In the remark", "via API")),
    "tagIds": fields.List(FlexibleInt(), validate=validate.Length(max=100),
                          metadata=doc("Windows with any of these tags", [1])),
    "sortProperties": fields.String(load_default="seq", validate=validate.OneOf(
        SORT_NAMES), metadata=doc("The field to sort by", "seq")),
    "sortDirection": fields.String(load_default="desc", validate=validate.OneOf(
        ["asc", "desc"]), metadata=doc("asc or desc", "desc")),
})


class TagRefSchema(Schema):
    id = fields.Integer(metadata=doc("Tag ID", 1))
    name = fields.String(metadata=doc("Tag name", "vip"))
    color = fields.String(metadata=doc("Tag colour", "#3b82f6"))


def _shown(field: fields.Field) -> fields.Field:
    """A window field as answers show it: its plain type, its words."""
    words = {key: field.metadata[key] for key in ("description", "example")}
    if isinstance(field, FlexibleBool):
        return fields.Boolean(metadata=words)
    if isinstance(field, FlexibleInt):
        return fields.Integer(allow_none=field.allow_none, metadata=words)
    return fields.String(metadata=words)


_ShownSettings = Schema.from_dict({name: _shown(field) for name, field in
                                   _SETTINGS_FIELDS.items()}, name="WindowSettings")


HIDDEN = "empty without browser:proxy:reveal"
TIME = "2026-01-31T12:00:00+00:00"


class WindowSchema(_ShownSettings):
    id = fields.Integer(metadata=doc("Window ID", 1))
    seq = fields.Integer(metadata=doc("The window's number in the account, from 1", 1))
    uuid = fields.String(metadata=doc("Window UUID (recommended to name it)", EXAMPLE_UUID))
    name = fields.String(metadata=doc("Window name", "shop 1"))
    groupId = fields.Integer(metadata=doc("Group ID; 0: ungrouped", 1))
    groupName = fields.String(metadata=doc("The group's name; blank: ungrouped", "shops"))
    remark = fields.String(metadata=doc("Window remark", "Created via API"))
    tagIds = fields.List(fields.Integer(), metadata=doc("Tag IDs", [1]))
    tags = fields.List(fields.Nested(TagRefSchema), metadata={"description": "The tags"})
    proxyMethod = fields.Integer(metadata=doc("2 custom proxy, 3 API-extracted proxy, "
                                              "4 proxy pool binding", 2))
    proxyType = fields.String(metadata=doc("direct, http, https, socks5, ssh, or a "
                                           "plugin's type", "socks5"))
    host = fields.String(metadata=doc("Proxy host", "203.0.113.7"))
    port = fields.Integer(allow_none=True, metadata=doc("Proxy port", 1080))
    proxyUserName = fields.String(metadata=doc("Proxy username", "user"))
    proxyPassword = fields.String(metadata=doc(f"Proxy password; {HIDDEN}", "secret"))
    # The platform account's secrets, shown as proxyPassword is.
    password = fields.String(metadata=doc(f"The platform account's; {HIDDEN}", "secret"))
    faSecretKey = fields.String(metadata=doc(f"The platform account's 2FA key; {HIDDEN}",
                                             "JBSWY3DPEHPK3PXP"))
    proxyId = fields.Integer(allow_none=True, metadata=doc("Pool proxy (proxyMethod 4)", 1))
    dynamicIpUrl = fields.String(metadata=doc(f"API proxy extraction URL; {HIDDEN}",
                                              "https://proxy-provider.example/get?key=KEY"))
    dynamicIpChannel = fields.String(metadata=doc("IP extraction provider", ""))
    isDynamicIpChangeIp = fields.Boolean(metadata=doc("Extract a new IP on each open",
                                                      False))
    refreshProxyUrl = fields.String(metadata=doc(
        f"Proxy refresh URL; {HIDDEN}", "https://proxy-provider.example/rotate?key=KEY"))
    ipCheckService = fields.String(metadata=doc("IP lookup service", "ip-api"))
    enableSocks5Udp = fields.Boolean(metadata=doc("SOCKS5 UDP support", False))
    browserFingerPrint = fields.Dict(metadata=doc(
        "The fingerprint as stored (the fields of browserFingerPrint in /browser/update)",
        {"coreVersion": "128", "os": "Win32", "timeZone": "Europe/Berlin"}))
    config = fields.Dict(allow_none=True, metadata=doc(
        "The full window configuration, as given", {"homepage": "https://example.org/"}))
    syncCookies = fields.Boolean(metadata=doc("Cookies are stored back when it closes",
                                              True))
    syncTabs = fields.Boolean(metadata=doc("Open tabs are kept in the profile", False))
    syncLocalStorage = fields.Boolean(metadata=doc("localStorage is kept in the profile",
                                                   False))
    syncIndexedDb = fields.Boolean(metadata=doc("IndexedDB is kept in the profile", False))
    url = fields.String(metadata=doc("Start page", "https://example.org/"))
    cookie = fields.List(fields.Dict(), allow_none=True, metadata=doc(
        "The window's cookies; null without browser:cookie:reveal",
        [{"name": "session", "value": "abc", "domain": ".example.org", "path": "/"}]))
    isDelete = fields.Boolean(metadata=doc("In the recycle bin", False))
    recycleBinRemark = fields.String(metadata=doc("Why it was deleted", ""))
    createdTime = fields.DateTime(metadata=doc("When it was created (UTC)", TIME))
    updatedTime = fields.DateTime(metadata=doc("When it last changed (UTC)", TIME))
    deletedTime = fields.DateTime(allow_none=True, metadata=doc(
        "When it went to the recycle bin; null: not deleted", None))
    openStatus = fields.String(metadata=doc("opening, opened, closing, closed", "closed"))
    openAgent = fields.String(metadata=doc("The agent it is open on; blank: none", ""))
    openPid = fields.Integer(allow_none=True, metadata=doc(
        "Its browser's process id on that agent; null: not open", None))


class WindowDetailSchema(WindowSchema):
    notApplied = fields.Dict(keys=fields.String(), values=fields.String(), metadata=doc(
        "The stored fields the window's browser backend does not apply, each with why (a "
        "fingerprint field as browserFingerPrint.<name>)",
        {"browserFingerPrint.webGLManufacturer": "not applied by Firefox"}))


class LaunchSchema(Schema):
    window = fields.Nested(WindowSchema, metadata={"description": "The window, secrets "
                                                                  "included"})
    proxy = fields.Dict(metadata=doc("type, host, port, username, password",
                                     {"type": "socks5", "host": "203.0.113.7", "port": 1080,
                                      "username": "user", "password": "secret"}))
    allowUdp = fields.Boolean(metadata=doc("The relay carries UDP", False))
    url = fields.String(metadata=doc("Start page", "https://example.org/"))
    cookies = fields.List(fields.Dict(), metadata=doc(
        "Cookies to seed a first open",
        [{"name": "session", "value": "abc", "domain": ".example.org", "path": "/"}]))


class StatusSchema(Schema):
    id = fields.Integer(metadata=doc("Window ID", 1))
    uuid = fields.String(metadata=doc("Window UUID", EXAMPLE_UUID))
    before = fields.String(metadata=doc("Its open status before", "opening"))
    status = fields.String(metadata=doc("Its open status now", "opened"))


class WindowPageSchema(Schema):
    list = fields.List(fields.Nested(WindowSchema), metadata={
        "description": "This page's windows"})
    page = fields.Integer(metadata=doc("This page, from 0", 0))
    pageSize = fields.Integer(metadata=doc("Windows per page", 10))
    totalNum = fields.Integer(metadata=doc("Windows matching, on all pages", 1))


class BatchResultSchema(Schema):
    ids = fields.List(fields.Integer(), metadata=doc("The windows' IDs", [1]))
    updated = fields.Integer(metadata=doc("Windows changed", 1))
    deleted = fields.Integer(metadata=doc("Windows deleted", 1))
    restored = fields.Integer(metadata=doc("Windows restored", 1))


WindowEnvelope = envelope_schema(WindowSchema, "WindowEnvelope")
WindowDetailEnvelope = envelope_schema(WindowDetailSchema, "WindowDetailEnvelope")
WindowPageEnvelope = envelope_schema(WindowPageSchema, "WindowPageEnvelope")
BatchEnvelope = envelope_schema(BatchResultSchema, "BatchEnvelope")


# ----- routes ------------------------------------------------------------------

@blp.route("/browser/update")
class Update(MethodView):
    @blp.arguments(WindowUpdateArgs, required=False)  # no body: a new default window
    @blp.response(200, WindowEnvelope)
    def post(self, data):
        """Create a window (no id) or edit one (id, browserId or uuid).

        Create needs browser:create:single; edit needs browser:update:single."""
        return success(windows().save(data))


@blp.route("/browser/update/partial")
class UpdatePartial(MethodView):
    @blp.arguments(PartialUpdateArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Set some fields of one or many windows; fingerprint and config merge key by key.

        browser:update:single for one id, browser:update:batch for more."""
        return success(windows().update_partial(data))


@blp.route("/browser/detail")
class Detail(MethodView):
    @blp.arguments(WindowRefArgs)
    @blp.response(200, WindowDetailEnvelope)
    def post(self, data):
        """One window by id, browserId or uuid (browser:list), with what its browser
        backend does not apply of it (notApplied)."""
        return success(windows().detail(data))


@blp.route("/browser/list")
class List(MethodView):
    @blp.arguments(ListArgs, required=False)
    @blp.response(200, WindowPageEnvelope)
    def post(self, query):
        """A page of windows, filtered and sorted, with the total count (browser:list)."""
        return success(windows().list(query))


@blp.route("/browser/delete")
class Delete(MethodView):
    @blp.arguments(DeleteArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Move one window (id/browserId/uuid) or several (ids) to the recycle bin
        (browser:delete:recycle)."""
        return success(windows().delete(data))


@blp.route("/browser/delete/ids")
class DeleteIds(MethodView):
    @blp.arguments(IdsArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Move windows to the recycle bin (browser:delete:recycle)."""
        return success(windows().delete(data))


@blp.route("/browser/group/update")
class GroupUpdate(MethodView):
    @blp.arguments(GroupUpdateArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Move windows into a group; groupId 0 ungroups them."""
        return success(windows().update_group(data["ids"], data["groupId"]))


@blp.route("/browser/remark/update")
class RemarkUpdate(MethodView):
    @blp.arguments(RemarkUpdateArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Set the remark of windows."""
        return success(windows().update_remark(data["ids"], data["remark"]))


@blp.route("/browser/proxy/update")
class ProxyUpdate(MethodView):
    @blp.arguments(ProxyUpdateArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Give windows the same proxy; proxy fields not given are reset."""
        return success(windows().update_proxy(data))


@blp.route("/browser/recycle/list")
class RecycleList(MethodView):
    @blp.arguments(ListArgs, required=False)
    @blp.response(200, WindowPageEnvelope)
    def post(self, query):
        """Windows in the recycle bin (browser:list); expired ones are purged first."""
        return success(windows().recycle_list(query))


@blp.route("/browser/recycle/restore")
class RecycleRestore(MethodView):
    @blp.arguments(IdsArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Bring windows back from the recycle bin (browser:recycle:restore)."""
        return success(windows().restore(data["ids"]))


@blp.route("/browser/recycle/delete")
class RecycleDelete(MethodView):
    @blp.arguments(IdsArgs)
    @blp.response(200, BatchEnvelope)
    def post(self, data):
        """Delete windows in the recycle bin for good (browser:delete:permanent)."""
        return success(windows().delete_permanently(data["ids"]))


LaunchArgs = window_ref_args("LaunchArgs", freshProxy=FlexibleBool(
    load_default=False, metadata=doc("Extract a new proxy (proxyMethod 3)", False)))
StatusArgs = window_ref_args(
    "StatusArgs",
    status=fields.String(required=True, validate=validate.OneOf(
        ["opening", "opened", "closing", "closed"]), metadata=doc(
            "The window's open status on the agent", "opened")),
    pid=FlexibleInt(allow_none=True, validate=validate.Range(0, 2**31 - 1),
                    metadata=doc("Its browser's process id", 45678)),
    agent=fields.String(load_default="", validate=validate.Length(max=200),
                        metadata=doc("The reporting agent's name", "desk 1")),
)


@blp.route("/browser/launch")
class Launch(MethodView):
    @blp.arguments(LaunchArgs)
    @blp.response(200, envelope_schema(LaunchSchema, "LaunchEnvelope"))
    def post(self, data):
        """A window's launch configuration, for the Local API agent (browser:open)."""
        return success(windows().launch_config(data, data.pop("freshProxy")))


@blp.route("/browser/status")
class Status(MethodView):
    @blp.arguments(StatusArgs)
    @blp.response(200, envelope_schema(StatusSchema, "StatusEnvelope"))
    def post(self, data):
        """An agent reports the window's open status (browser:open)."""
        return success(windows().report_status(data, data["status"], data.get("pid"),
                                               data["agent"]))


CookieSyncArgs = window_ref_args("CookieSyncArgs", cookies=Cookies(required=True, metadata=doc(
    "The closed window's cookies (BitBrowser's cookie objects)",
    [{"name": "session", "value": "abc", "domain": ".example.org", "path": "/"}])))


@blp.route("/browser/cookies/sync")
class CookieSync(MethodView):
    @blp.arguments(CookieSyncArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"id": fields.Integer(metadata=doc("Window ID", 1)),
         "uuid": fields.String(metadata=doc("Window UUID", EXAMPLE_UUID)),
         "cookies": fields.Integer(metadata=doc("Cookies stored", 3))},
        name="CookieSynced"), "CookieSyncEnvelope"))
    def post(self, data):
        """An agent stores a closed window's cookies (browser:open)."""
        return success(windows().sync_cookies(data, data["cookies"]))
