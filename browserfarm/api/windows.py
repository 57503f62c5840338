"""``/browser/*``: the Browser Window cloud API (shared/spec/browser-window-api.txt)
and its recycle bin."""
from __future__ import annotations

import zoneinfo

from flask import g
from flask.views import MethodView
from marshmallow import (INCLUDE, Schema, ValidationError, fields, validate, validates,
                         validates_schema)

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import (MAX_SECRET, Cookies, FlexibleBool, FlexibleInt, JsonObject,
                                    OneOf, WindowRef, args, check_stored_json, window_ref_args,
                                    window_ref_fields)
from browserfarm.errors import CONFIG_NOT_OBJECT
from browserfarm.services.windows import SORT_NAMES, WindowService

MAX_BATCH = 1000
MAX_PAGE_SIZE = 100

blp = Blueprint("windows", __name__, description="Browser windows (cloud API)")


def windows() -> WindowService:
    return WindowService(farm(), g.caller)


# ----- schemas -----------------------------------------------------------------

class FingerprintSchema(Schema):
    """BitBrowser's field names; fields not listed here are kept as given."""

    class Meta:
        unknown = INCLUDE

    coreProduct = fields.String(metadata={"description": "Browser backend; default firefox",
                                          "registry": "window_backends"})
    coreVersion = fields.String()
    ostype = fields.String()
    os = fields.String()
    osVersion = fields.String()
    version = fields.String()
    userAgent = fields.String()
    isIpCreateTimeZone = FlexibleBool()
    timeZone = fields.String(metadata={"description": "IANA name, e.g. Europe/Berlin"})
    timeZoneOffset = FlexibleInt()
    webRTC = fields.String(validate=validate.OneOf(["0", "1", "2", "3"]),
                           metadata={"description": "0 replace, 1 allow, 2 disable, 3 privacy"})
    position = fields.String(validate=validate.OneOf(["0", "1", "2"]),
                             metadata={"description": "0 ask, 1 allow, 2 block"})
    isIpCreatePosition = FlexibleBool()
    lat = fields.Float(validate=validate.Range(-90, 90))
    lng = fields.Float(validate=validate.Range(-180, 180))
    precisionData = fields.Float(validate=validate.Range(0, 100000))
    isIpCreateLanguage = FlexibleBool()
    languages = fields.String()
    isIpCreateDisplayLanguage = FlexibleBool()
    displayLanguages = fields.String()
    resolutionType = fields.String()
    resolution = fields.String(validate=validate.Regexp(r"^\d{2,5} ?x ?\d{2,5}$",
                                                        error="Must look like 1920 x 1080."))
    openWidth = FlexibleInt(validate=validate.Range(100, 20000))
    openHeight = FlexibleInt(validate=validate.Range(100, 20000))
    devicePixelRatio = fields.Float(validate=validate.Range(0.25, 10))
    hardwareConcurrency = FlexibleInt(validate=validate.Range(1, 256))
    deviceMemory = fields.Float(validate=validate.Range(0.25, 1024))
    doNotTrack = fields.String()

    @validates_schema
    def _storable(self, data, **kwargs):
        # Unknown keys are kept as given (INCLUDE): the stored-JSON rules hold for them.
        check_stored_json(data)

    @validates("timeZone")
    def _known_zone(self, value, **kwargs):
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValidationError("Not a known IANA time zone.") from None


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


def _ids():
    return fields.List(WindowRef(), required=True, validate=validate.Length(1, MAX_BATCH),
                       metadata={"description": f"Window ids or uuids, 1 to {MAX_BATCH}"})


_META_FIELDS = {
    "name": fields.String(validate=validate.Length(max=200)),
    "remark": fields.String(validate=validate.Length(max=5000)),
    "groupId": _group_id(),
    "tagIds": _tag_ids(),
    "browserFingerPrint": fields.Nested(FingerprintSchema),
    "config": JsonObject(error_messages={"invalid": CONFIG_NOT_OBJECT,
                                         "null": CONFIG_NOT_OBJECT}),
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


class WindowSchema(Schema):
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
    @blp.response(200, WindowEnvelope)
    def post(self, data):
        """One window by id, browserId or uuid (browser:list)."""
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
