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
from browserfarm.api.fields import (MAX_ID, MAX_SECRET, Cookies, FlexibleBool,
                                    FlexibleFloat, FlexibleInt, JsonObject, OneOf,
                                    WindowRef, args, check_stored_json, digits_pattern,
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

def _choice(*values: str, description: str = "") -> fields.String:
    """One of BitBrowser's enumerations, numbers as strings ("0", "1"); blank: the
    default."""
    return fields.String(validate=validate.OneOf(["", *values]),
                         metadata={"description": description} if description else {})


def _one_line(value: str) -> None:
    """Python's ``$`` matches before a final line break; the document's pattern not."""
    if "\n" in value:
        raise ValidationError("Must be one line.")


def _text(max_length: int, pattern: str | None = None, description: str = "", **kwargs):
    """Free text up to ``max_length``; ``pattern`` (anchored): what it must look like."""
    rules = [validate.Length(max=max_length)]
    if pattern:
        rules += [validate.Regexp(pattern, error="Must look like: " + description),
                  _one_line]
    return fields.String(validate=rules, metadata={"description": description}, **kwargs)


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

    coreProduct = fields.String(metadata={"description": "Browser backend; default firefox",
                                          "registry": "window_backends"})
    coreVersion = _text(32)
    ostype = _choice("PC", "Android", "IOS")
    os = _choice(*OS_NAMES, description="navigator.platform")
    osVersion = _text(200, VERSIONS, "OS versions, comma-separated (11,10)")
    version = _text(200, VERSIONS, "a browser version (128 or 128.0.1)")
    userAgent = _text(1024)
    isIpCreateTimeZone = FlexibleBool()
    timeZone = fields.String(metadata={"description": "IANA name, e.g. Europe/Berlin"})
    timeZoneOffset = FlexibleInt(accept_blank=True, validate=validate.Range(-1440, 1440),
                                 metadata={"description": "Minutes from UTC"})
    webRTC = _choice("0", "1", "2", "3", description="0 replace, 1 allow, 2 disable, "
                                                    "3 privacy")
    ignoreHttpsErrors = FlexibleBool()
    position = _choice("0", "1", "2", description="0 ask, 1 allow, 2 block")
    isIpCreatePosition = FlexibleBool()
    lat = FlexibleFloat(accept_blank=True, validate=validate.Range(-90, 90))
    lng = FlexibleFloat(accept_blank=True, validate=validate.Range(-180, 180))
    precisionData = FlexibleFloat(accept_blank=True, validate=validate.Range(0, 100000))
    isIpCreateLanguage = FlexibleBool()
    languages = _text(500, LANGUAGES, "language tags, comma-separated (de-DE,de)")
    isIpCreateDisplayLanguage = FlexibleBool()
    displayLanguages = _text(500, LANGUAGES, "language tags, comma-separated (de-DE)")
    resolutionType = _choice("0", "1", description="0 the computer's, 1 resolution")
    # A window's virtual display is resolution (else openWidth x openHeight) times
    # devicePixelRatio, allocated whole by Xvfb: within display.fits (8K).
    resolution = fields.String(validate=validate.Regexp(
        f"^{SIDE} ?x ?{SIDE}$", error=f"Must look like 1920 x 1080, each side {MIN_SIDE} "
                                      f"to {display.MAX_SIDE}."),
        metadata={"description": "at most 7680 x 4320"})
    openWidth = FlexibleInt(accept_blank=True,
                            validate=validate.Range(100, display.MAX_SIDE))
    openHeight = FlexibleInt(accept_blank=True,
                             validate=validate.Range(100, display.MAX_SIDE))
    windowSizeLimit = FlexibleBool()
    devicePixelRatio = FlexibleFloat(accept_blank=True, validate=validate.Range(0.25, 10))
    colorDepth = FlexibleInt(accept_blank=True, validate=validate.Range(1, 48))
    fontType = _choice("0", "1", "2", description="0 the system's, 1 custom, 2 random")
    font = _text(20000, description="font names, comma-separated")
    canvas = _choice("0", "1", description=CHOICE_NOISE)
    canvasValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 10_000_000))
    webGL = _choice("0", "1", description=CHOICE_NOISE)
    webGLValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 10_000_000))
    webGLMeta = _choice("0", "1", description="0 custom (webGLManufacturer, webGLRender), "
                                              "1 off")
    webGLManufacturer = _text(256, description="WebGL unmasked vendor")
    webGLRender = _text(512, description="WebGL unmasked renderer")
    webgpu = fields.Dict(allow_none=True, metadata={"description": "WebGPU adapter info"})
    audioContext = _choice("0", "1", description=CHOICE_NOISE)
    audioContextValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 100))
    mediaDevice = _choice("0", "1", description="0 custom, 1 off")
    mediaDeviceValue = fields.Raw(allow_none=True, metadata={"description": "BitBrowser's "
                                                                          "value, kept"})
    speechVoices = _choice("0", "1", description="0 custom, 1 off")
    speechVoicesValue = _text(100_000, allow_none=True,
                              description="the voices as JSON text")
    hardwareConcurrency = FlexibleInt(accept_blank=True, validate=validate.Range(1, 256))
    deviceMemory = FlexibleFloat(accept_blank=True,
                                 validate=validate.OneOf([0.25, 0.5, 1, 2, 4, 8]),
                                metadata={"description": "GiB, as browsers report it"})
    doNotTrack = _choice("0", "1", description="1 on, 0 off")
    clientRectNoiseEnabled = FlexibleBool()
    clientRectNoiseValue = FlexibleInt(accept_blank=True, validate=validate.Range(0, 999999))
    portScanProtect = _choice("0", "1", description="0 on, 1 off")
    portWhiteList = _text(2000, PORTS, "ports, comma-separated (8080,9222)")
    deviceInfoEnabled = FlexibleBool()
    computerName = _text(63, r"^([A-Za-z0-9][A-Za-z0-9_-]*)?$",
                         "a computer name (DESKTOP-E9N2HJQ)")
    macAddr = _text(17, r"^([0-9A-Fa-f]{2}([-:][0-9A-Fa-f]{2}){5})?$",
                    "a MAC address (74-29-AF-3A-E9-63)")
    hostIP = _text(45, description="an IP address")
    totalDiskSpace = _text(20, r"^[0-9]*$", "bytes")
    disableSslCipherSuitesFlag = FlexibleBool()
    disableSslCipherSuites = _text(10000, allow_none=True)
    enablePlugins = FlexibleBool()
    plugins = _text(100_000)
    launchArgs = _text(4096, allow_none=True, description="browser arguments, "
                                                          "comma-separated")
    platformVersion = _text(32, r"^([0-9]{1,5}(\.[0-9]{1,5}){0,3})?$",
                            "a platform version (10.0.0)")
    architecture = _choice("x86", "arm")
    uamodel = _text(200)
    randomPlatformVersion = FlexibleInt(validate=validate.Range(0, 1))
    batchRandom = FlexibleBool()
    batchUpdateFingerPrint = FlexibleBool()

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
        "proxyMethod": FlexibleInt(required=method_required,
                                   metadata={"description": "2 custom, 3 API-extracted, "
                                                            "4 proxy pool binding",
                                             "registry": "proxy_methods"}),
        "proxyType": fields.String(metadata={"description": "direct, http, https, socks5, "
                                                            "ssh, or a plugin's type"}),
        "host": fields.String(validate=validate.Length(max=255)),
        "port": FlexibleInt(accept_blank=True, validate=validate.Range(1, 65535)),
        "proxyUserName": fields.String(validate=validate.Length(max=255)),
        "proxyPassword": fields.String(validate=validate.Length(max=MAX_SECRET),
                                       metadata={"description": "For ssh: a password or "
                                                                "a private key"}),
        "proxyId": FlexibleInt(accept_blank=True, validate=validate.Range(min=1),
                               metadata={"description": "Pool proxy (proxyMethod 4)"}),
        "dynamicIpUrl": fields.String(validate=validate.Length(max=2048)),
        "dynamicIpChannel": fields.String(validate=validate.Length(max=64)),
        "isDynamicIpChangeIp": FlexibleBool(),
        "refreshProxyUrl": fields.String(validate=validate.Length(max=2048)),
        "enableSocks5Udp": FlexibleBool(),
        "ipCheckService": fields.String(metadata={"registry": "ip_check_services"}),
    }


def _group_id(description="0: ungrouped", **kwargs):
    return FlexibleInt(accept_blank=True, blank_as=0, validate=validate.Range(min=0),
                       metadata={"description": description}, **kwargs)


def _tag_ids():
    return fields.List(FlexibleInt(validate=validate.Range(min=1)),
                       validate=validate.Length(max=100))


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
                       metadata={"description": f"Window ids or uuids, 1 to {MAX_BATCH}"})


def _bools(*names: str) -> dict:
    return {name: FlexibleBool() for name in names}


# BitBrowser's other window fields (what a backend applies of them: the detail's
# notApplied).
_SETTINGS_FIELDS = {
    "platform": fields.String(validate=validate.Length(max=2048), metadata={
        "description": "The account's platform, a URL (https://www.facebook.com)"}),
    "platformIcon": fields.String(validate=validate.Length(max=255)),
    "userName": fields.String(validate=validate.Length(max=255),
                              metadata={"description": "The platform account's"}),
    "password": fields.String(validate=validate.Length(max=1024), metadata={
        "description": "The platform account's; encrypted at rest"}),
    "faSecretKey": _text(256, r"^[A-Za-z2-7 =-]*$", "a base32 2FA secret key; encrypted "
                                                    "at rest"),
    "isSynOpen": FlexibleInt(validate=validate.Range(0, 1),
                             metadata={"description": "1: several users may open it"}),
    "workbench": fields.String(validate=validate.OneOf(["localserver", "disable"])),
    "country": fields.String(validate=validate.Length(max=64)),
    "province": fields.String(validate=validate.Length(max=64)),
    "city": fields.String(validate=validate.Length(max=64)),
    "duplicateCheck": FlexibleInt(validate=validate.Range(0, 1)),
    "abortImageMaxSize": FlexibleInt(accept_blank=True, validate=validate.Range(0, MAX_ID),
                                     metadata={"description": "KB"}),
    **_bools("isIpv6", "isGlobalProxyInfo", "abortImage", "abortMedia", "muteAudio",
             "stopWhileNetError", "stopWhileIpChange", "stopWhileCountryChange",
             "syncBookmarks", "syncAuthorization", "syncHistory", "syncSessions",
             "syncExtensions", "syncUserExtensions", "syncPaymentsAndAddress",
             "credentialsEnableService", "isValidUsername", "allowedSignin",
             "clearCacheFilesBeforeLaunch", "clearCacheWithoutExtensions",
             "clearCookiesBeforeLaunch", "clearHistoriesBeforeLaunch", "randomFingerprint",
             "disableGpu", "disableTranslatePopup", "disableNotifications",
             "disableClipboard", "memorySaver", "enableBackgroundMode"),
}

_META_FIELDS = {
    "name": fields.String(validate=validate.Length(max=200)),
    "remark": fields.String(validate=validate.Length(max=5000)),
    "groupId": _group_id(),
    "tagIds": _tag_ids(),
    "browserFingerPrint": fields.Nested(FingerprintSchema),
    "config": JsonObject(error_messages={"invalid": CONFIG_NOT_OBJECT,
                                         "null": CONFIG_NOT_OBJECT}),
    **_SETTINGS_FIELDS,
}

WindowUpdateArgs = args("WindowUpdateArgs", {
    **window_ref_fields(), **_META_FIELDS, **_proxy_fields(),
    "syncCookies": FlexibleBool(),
    "syncTabs": FlexibleBool(),
    "syncLocalStorage": FlexibleBool(),
    "syncIndexedDb": FlexibleBool(),
    "url": fields.String(validate=validate.Length(max=8192),
                         metadata={"description": "Start page"}),
    "cookie": Cookies(metadata={"description": "Cookies to import"}),
})

PartialUpdateArgs = args("PartialUpdateArgs", {"ids": _ids(), **_META_FIELDS})

WindowRefArgs = window_ref_args("WindowRefArgs")

# One window (id, browserId or uuid) or several (ids), not both.
DeleteArgs = args("DeleteArgs", {**window_ref_fields(), "ids": fields.List(
    WindowRef(), validate=validate.Length(1, MAX_BATCH))}, OneOf(
    (("id", "browserId", "uuid"), ("ids",)),
    missing=("id", "one of id, browserId, uuid or ids is required"),
    mixed=("ids", "give either ids or one of id, browserId, uuid")))

IdsArgs = args("IdsArgs", {"ids": _ids()})

GroupUpdateArgs = args("GroupUpdateArgs", {"ids": _ids(), "groupId": _group_id(required=True)})

RemarkUpdateArgs = args("RemarkUpdateArgs", {"ids": _ids(), "remark": fields.String(
    required=True, validate=validate.Length(max=5000))})

ProxyUpdateArgs = args("ProxyUpdateArgs", {"ids": _ids(),
                                           **_proxy_fields(method_required=True)})

ListArgs = args("ListArgs", {
    "page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000),
                           metadata={"description": "From 0"}),
    "pageSize": FlexibleInt(load_default=10, validate=validate.Range(1, MAX_PAGE_SIZE)),
    "groupId": _group_id("Only this group's windows; 0 or omitted: all windows"),
    "keyword": fields.String(validate=validate.Length(max=200),
                             metadata={"description": "In name or remark"}),
    "name": fields.String(validate=validate.Length(max=200)),
    "remark": fields.String(validate=validate.Length(max=200)),
    "tagIds": fields.List(FlexibleInt(), validate=validate.Length(max=100),
                          metadata={"description": "Windows with any of these tags"}),
    "sortProperties": fields.String(load_default="seq", validate=validate.OneOf(
        SORT_NAMES)),
    "sortDirection": fields.String(load_default="desc", validate=validate.OneOf(
        ["asc", "desc"])),
})


class TagRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    color = fields.String()


def _shown(field: fields.Field) -> fields.Field:
    """A window field as answers show it: its plain type."""
    if isinstance(field, FlexibleBool):
        return fields.Boolean()
    if isinstance(field, FlexibleInt):
        return fields.Integer(allow_none=field.allow_none)
    return fields.String()


_ShownSettings = Schema.from_dict({name: _shown(field) for name, field in
                                   _SETTINGS_FIELDS.items()}, name="WindowSettings")


class WindowSchema(_ShownSettings):
    id = fields.Integer()
    seq = fields.Integer()
    uuid = fields.String()
    name = fields.String()
    groupId = fields.Integer()
    groupName = fields.String()
    remark = fields.String()
    tagIds = fields.List(fields.Integer())
    tags = fields.List(fields.Nested(TagRefSchema))
    proxyMethod = fields.Integer()
    proxyType = fields.String()
    host = fields.String()
    port = fields.Integer(allow_none=True)
    proxyUserName = fields.String()
    proxyPassword = fields.String(metadata={"description": "Empty without "
                                                           "browser:proxy:reveal"})
    # The platform account's secrets, shown as proxyPassword is.
    password = fields.String(metadata={"description": "Empty without browser:proxy:reveal"})
    faSecretKey = fields.String(metadata={"description": "Empty without "
                                                         "browser:proxy:reveal"})
    proxyId = fields.Integer(allow_none=True)
    dynamicIpUrl = fields.String()
    dynamicIpChannel = fields.String()
    isDynamicIpChangeIp = fields.Boolean()
    refreshProxyUrl = fields.String()
    ipCheckService = fields.String()
    enableSocks5Udp = fields.Boolean()
    browserFingerPrint = fields.Dict()
    config = fields.Dict(allow_none=True)
    syncCookies = fields.Boolean()
    syncTabs = fields.Boolean()
    syncLocalStorage = fields.Boolean()
    syncIndexedDb = fields.Boolean()
    url = fields.String()
    cookie = fields.List(fields.Dict(), allow_none=True,
                         metadata={"description": "Null without browser:cookie:reveal"})
    isDelete = fields.Boolean()
    recycleBinRemark = fields.String()
    createdTime = fields.DateTime()
    updatedTime = fields.DateTime()
    deletedTime = fields.DateTime(allow_none=True)
    openStatus = fields.String(metadata={"description": "opening, opened, closing, closed"})
    openAgent = fields.String()
    openPid = fields.Integer(allow_none=True)


class WindowDetailSchema(WindowSchema):
    notApplied = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "The stored fields the window's browser backend does not apply, "
                       "each with why (a fingerprint field as browserFingerPrint.<name>)"})


class LaunchSchema(Schema):
    window = fields.Nested(WindowSchema)
    proxy = fields.Dict(metadata={"description": "type, host, port, username, password"})
    allowUdp = fields.Boolean()
    url = fields.String()
    cookies = fields.List(fields.Dict())


class StatusSchema(Schema):
    id = fields.Integer()
    uuid = fields.String()
    before = fields.String()
    status = fields.String()


class WindowPageSchema(Schema):
    list = fields.List(fields.Nested(WindowSchema))
    page = fields.Integer()
    pageSize = fields.Integer()
    totalNum = fields.Integer()


class BatchResultSchema(Schema):
    ids = fields.List(fields.Integer())
    updated = fields.Integer()
    deleted = fields.Integer()
    restored = fields.Integer()


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
    load_default=False, metadata={"description": "Extract a new proxy (proxyMethod 3)"}))
StatusArgs = window_ref_args(
    "StatusArgs",
    status=fields.String(required=True, validate=validate.OneOf(
        ["opening", "opened", "closing", "closed"])),
    pid=FlexibleInt(allow_none=True, validate=validate.Range(0, 2**31 - 1)),
    agent=fields.String(load_default="", validate=validate.Length(max=200)),
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


CookieSyncArgs = window_ref_args("CookieSyncArgs", cookies=Cookies(required=True))


@blp.route("/browser/cookies/sync")
class CookieSync(MethodView):
    @blp.arguments(CookieSyncArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"id": fields.Integer(), "uuid": fields.String(), "cookies": fields.Integer()},
        name="CookieSynced"), "CookieSyncEnvelope"))
    def post(self, data):
        """An agent stores a closed window's cookies (browser:open)."""
        return success(windows().sync_cookies(data, data["cookies"]))
