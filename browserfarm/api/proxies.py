"""``/proxy/*``: the account's proxy pool and proxy checks; ``/browser/proxy/check``
and ``/browser/proxy/refresh`` for a window's own proxy."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import (MAX_SECRET, FlexibleBool, FlexibleInt, args, doc,
                                    window_ref_args)
from browserfarm.net.extraction import FORMATS
from browserfarm.services.proxies import ProxyService
from browserfarm.services.windows import WindowService

blp = Blueprint("proxies", __name__, description="Proxy pool and proxy checks")


def proxies() -> ProxyService:
    return ProxyService(farm(), g.caller)


def _proxy_fields(required: bool) -> dict:
    return {
        "proxyType": fields.String(required=required, metadata=doc(
            "http, https, socks5, ssh, or a plugin's type", "socks5")),
        "host": fields.String(required=required, validate=validate.Length(1, 255),
                              metadata=doc("Proxy host", "203.0.113.7")),
        "port": FlexibleInt(required=required, validate=validate.Range(1, 65535),
                            metadata=doc("Proxy port", 1080)),
        "proxyUserName": fields.String(validate=validate.Length(max=255),
                                       metadata=doc("Proxy username", "user")),
        "proxyPassword": fields.String(validate=validate.Length(max=MAX_SECRET),
                                       metadata=doc("Proxy password; for ssh a password or "
                                                    "a private key", "secret")),
    }


_service = fields.String(load_default="ip-api", metadata=doc(
    "IP-check service: ip-api, ipinfo, ipapi.co or a plugin's", "ip-api"))
_id = FlexibleInt(required=True, validate=validate.Range(min=1),
                  metadata=doc("Pool proxy ID", 1))


def _remark():
    return fields.String(validate=validate.Length(max=1000),
                         metadata=doc("Pool proxy remark", "Berlin, residential"))


AddArgs = args("PoolAddArgs", {**_proxy_fields(True), "remark": _remark()})
UpdateArgs = args("PoolUpdateArgs", {"id": _id, **_proxy_fields(False), "remark": _remark()})
ImportArgs = args("PoolImportArgs", {
    "text": fields.String(required=True, validate=validate.Length(1, 2_000_000),
                          metadata=doc("One proxy per line", "203.0.113.7:1080:user:secret\n"
                                                             "socks5://203.0.113.8:1080")),
    "proxyType": fields.String(load_default="socks5",
                               metadata=doc("For lines without a scheme", "socks5")),
    "format": fields.String(load_default="auto", validate=validate.OneOf(FORMATS),
                            metadata=doc("How lines are written; auto: guessed line by "
                                         "line", "auto")),
    "partial": FlexibleBool(load_default=False,
                              metadata=doc("Import the good lines even when some are bad",
                                           False)),
})
ListArgs = args("PoolListArgs", {
    "page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000),
                        metadata=doc("Page number, from 0", 0)),
    "pageSize": FlexibleInt(load_default=50, validate=validate.Range(1, 500),
                            metadata=doc("Proxies per page, 1 to 500", 50)),
    "keyword": fields.String(validate=validate.Length(max=200),
                             metadata=doc("In host or remark", "203.0.113")),
})
IdArgs = args("PoolIdArgs", {"id": _id})
DeleteArgs = args("PoolDeleteArgs", {"id": _id, "unbind": FlexibleBool(
    load_default=False, metadata=doc("Delete it even if windows use it (they are left "
                                     "without a proxy)", False))})
CheckArgs = args("ProxyCheckArgs", {
    "id": FlexibleInt(validate=validate.Range(min=1),
                      metadata=doc("A pool proxy; or give the proxy's fields", 1)),
    **_proxy_fields(False), "ipCheckService": _service})
WindowCheckArgs = window_ref_args("WindowProxyCheckArgs", ipCheckService=fields.String(
    metadata=doc("IP-check service; default: the window's", "ip-api")))


class PoolProxySchema(Schema):
    id = fields.Integer(metadata=doc("Pool proxy ID", 1))
    proxyType = fields.String(metadata=doc("http, https, socks5, ssh, or a plugin's type",
                                           "socks5"))
    host = fields.String(metadata=doc("Proxy host", "203.0.113.7"))
    port = fields.Integer(metadata=doc("Proxy port", 1080))
    proxyUserName = fields.String(metadata=doc("Proxy username", "user"))
    proxyPassword = fields.String(metadata=doc("Proxy password; empty without "
                                               "browser:proxy:reveal", "secret"))
    remark = fields.String(metadata=doc("Pool proxy remark", "Berlin, residential"))
    lastCheck = fields.Dict(allow_none=True, metadata=doc(
        "Its last check's result (the fields of a check, and checkedAt); null: never "
        "checked", {"reachable": True, "service": "ip-api", "ip": "203.0.113.7",
                    "countryCode": "DE", "checkedAt": "2026-01-31T12:00:00Z"}))


class CheckSchema(Schema):
    reachable = fields.Boolean(metadata=doc("The exit IP was found through the proxy",
                                            True))
    service = fields.String(metadata=doc("The IP-check service asked", "ip-api"))
    latencyMs = fields.Integer(allow_none=True, metadata=doc(
        "Milliseconds the check took; null on failure", 420))
    ip = fields.String(metadata=doc("Exit IP", "203.0.113.7"))
    country = fields.String(metadata=doc("Exit IP's country", "Germany"))
    countryCode = fields.String(metadata=doc("Exit IP's country, ISO 3166 code", "DE"))
    region = fields.String(metadata=doc("Exit IP's region", "Berlin"))
    city = fields.String(metadata=doc("Exit IP's city", "Berlin"))
    timezone = fields.String(metadata=doc("Exit IP's time zone (IANA)", "Europe/Berlin"))
    latitude = fields.Float(allow_none=True, metadata=doc("Exit IP's latitude", 52.52))
    longitude = fields.Float(allow_none=True, metadata=doc("Exit IP's longitude", 13.405))
    isp = fields.String(metadata=doc("Exit IP's provider", "Example Telecom"))
    kind = fields.String(metadata=doc("On failure: auth_failed, connect_refused, timeout, "
                                      "dns_failed, bad_response, extraction_failed, "
                                      "unsupported, blocked (an address in a blocked "
                                      "network)", "timeout"))
    message = fields.String(metadata=doc("On failure: what the proxy or service said",
                                         "timed out after 10 s"))
    proxy = fields.String(metadata=doc("The proxy checked, password hidden",
                                       "socks5://user:***@203.0.113.7:1080"))
    fingerprint = fields.Dict(metadata=doc(
        "Window checks: the fingerprint fields its isIpCreate* flags take from this IP",
        {"timeZone": "Europe/Berlin", "languages": "de-DE,de"}))


ImportResult = Schema.from_dict({
    "imported": fields.Integer(metadata=doc("Proxies added to the pool", 2)),
    "errors": fields.List(fields.Dict(), metadata=doc(
        "Each bad line (with partial: true, left out): its number, text and why",
        [{"line": 3, "text": "203.0.113.9", "error": "already in the pool"}]))},
    name="PoolImportResult")
DeleteResult = Schema.from_dict({
    "id": fields.Integer(metadata=doc("The deleted pool proxy's ID", 1)),
    "unbound": fields.List(fields.Integer(), metadata=doc(
        "Windows that used it, now without a proxy (unbind: true)", []))},
    name="PoolDeleteResult")
PoolPage = Schema.from_dict({"list": fields.List(fields.Nested(PoolProxySchema), metadata={
                                 "description": "This page's proxies"}),
                             "page": fields.Integer(metadata=doc("This page, from 0", 0)),
                             "pageSize": fields.Integer(metadata=doc("Proxies per page", 50)),
                             "totalNum": fields.Integer(metadata=doc("Proxies in all", 1))},
                            name="PoolPage")


@blp.route("/proxy/add")
class Add(MethodView):
    @blp.arguments(AddArgs)
    @blp.response(200, envelope_schema(PoolProxySchema, "PoolProxyEnvelope"))
    def post(self, data):
        """Add a proxy to the pool (proxy:manage)."""
        return success(proxies().pool_add(data))


@blp.route("/proxy/import")
class Import(MethodView):
    @blp.arguments(ImportArgs)
    @blp.response(200, envelope_schema(ImportResult, "PoolImportEnvelope"))
    def post(self, data):
        """Import proxies, one per line; each bad line is reported by number
        (proxy:manage)."""
        return success(proxies().pool_import(data["text"], data["proxyType"],
                                             data["format"], data["partial"]))


@blp.route("/proxy/list")
class List(MethodView):
    @blp.arguments(ListArgs, required=False)
    @blp.response(200, envelope_schema(PoolPage, "PoolPageEnvelope"))
    def post(self, data):
        """The pool, a page at a time (proxy:list)."""
        return success(proxies().pool_list(data["page"], data["pageSize"],
                                           data.get("keyword", "")))


@blp.route("/proxy/detail")
class Detail(MethodView):
    @blp.arguments(IdArgs)
    @blp.response(200, envelope_schema(PoolProxySchema, "PoolDetailEnvelope"))
    def post(self, data):
        """One pool proxy (proxy:list)."""
        return success(proxies().pool_detail(data["id"]))


@blp.route("/proxy/update")
class Update(MethodView):
    @blp.arguments(UpdateArgs)
    @blp.response(200, envelope_schema(PoolProxySchema, "PoolUpdateEnvelope"))
    def post(self, data):
        """Change a pool proxy (proxy:manage)."""
        return success(proxies().pool_update(data))


@blp.route("/proxy/delete")
class Delete(MethodView):
    @blp.arguments(DeleteArgs)
    @blp.response(200, envelope_schema(DeleteResult, "PoolDeleteEnvelope"))
    def post(self, data):
        """Delete a pool proxy; refused while windows use it, unless unbind
        (proxy:manage)."""
        return success(proxies().pool_delete(data["id"], data["unbind"]))


@blp.route("/proxy/check")
class Check(MethodView):
    @blp.arguments(CheckArgs)
    @blp.response(200, envelope_schema(CheckSchema, "ProxyCheckEnvelope"))
    def post(self, data):
        """Check a pool proxy (id) or a proxy given by its fields (proxy:check)."""
        service = data.pop("ipCheckService")
        if "id" in data:
            return success(proxies().pool_check(data["id"], service))
        return success(proxies().check_settings(data, service))


@blp.route("/browser/proxy/check")
class WindowCheck(MethodView):
    @blp.arguments(WindowCheckArgs)
    @blp.response(200, envelope_schema(CheckSchema, "WindowProxyCheckEnvelope"))
    def post(self, data):
        """Check a window's proxy as it would open: extracted, pooled or its own
        (proxy:check)."""
        return success(WindowService(farm(), g.caller).check_proxy(
            data, data.get("ipCheckService")))


@blp.route("/browser/proxy/refresh")
class WindowRefresh(MethodView):
    @blp.arguments(WindowCheckArgs)
    @blp.response(200, envelope_schema(CheckSchema, "WindowProxyRefreshEnvelope"))
    def post(self, data):
        """Rotate a window's proxy (refreshProxyUrl; an extracted proxy is extracted
        anew), then check it (browser:update:single and proxy:check)."""
        return success(WindowService(farm(), g.caller).refresh_proxy(
            data, data.get("ipCheckService")))

