"""``/proxy/*``: the account's proxy pool and proxy checks; ``/browser/proxy/check``
and ``/browser/proxy/refresh`` for a window's own proxy."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import (MAX_SECRET, FlexibleBool, FlexibleInt, args,
                                    window_ref_args)
from browserfarm.net.extraction import FORMATS
from browserfarm.services.proxies import ProxyService
from browserfarm.services.windows import WindowService

blp = Blueprint("proxies", __name__, description="Proxy pool and proxy checks")


def proxies() -> ProxyService:
    return ProxyService(farm(), g.caller)


def _proxy_fields(required: bool) -> dict:
    return {
        "proxyType": fields.String(required=required,
                                   metadata={"description": "http, https, socks5, ssh, ..."}),
        "host": fields.String(required=required, validate=validate.Length(1, 255)),
        "port": FlexibleInt(required=required, validate=validate.Range(1, 65535)),
        "proxyUserName": fields.String(validate=validate.Length(max=255)),
        "proxyPassword": fields.String(validate=validate.Length(max=MAX_SECRET),
                                       metadata={"description": "For ssh: a password or "
                                                                "a private key"}),
    }


_service = fields.String(load_default="ip-api",
                         metadata={"description": "IP-check service: ip-api, ipinfo, ..."})
_id = FlexibleInt(required=True, validate=validate.Range(min=1))

AddArgs = args("PoolAddArgs", {**_proxy_fields(True), "remark": fields.String(
    validate=validate.Length(max=1000))})
UpdateArgs = args("PoolUpdateArgs", {"id": _id, **_proxy_fields(False),
                                     "remark": fields.String(validate=validate.Length(max=1000))})
ImportArgs = args("PoolImportArgs", {
    "text": fields.String(required=True, validate=validate.Length(1, 2_000_000),
                          metadata={"description": "One proxy per line"}),
    "proxyType": fields.String(load_default="socks5",
                               metadata={"description": "For lines without a scheme"}),
    "format": fields.String(load_default="auto", validate=validate.OneOf(FORMATS)),
    "partial": FlexibleBool(load_default=False,
                              metadata={"description": "Import the good lines even when "
                                                       "some are bad"}),
})
ListArgs = args("PoolListArgs", {
    "page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000)),
    "pageSize": FlexibleInt(load_default=50, validate=validate.Range(1, 500)),
    "keyword": fields.String(validate=validate.Length(max=200)),
})
IdArgs = args("PoolIdArgs", {"id": _id})
DeleteArgs = args("PoolDeleteArgs", {"id": _id, "unbind": FlexibleBool(load_default=False)})
CheckArgs = args("ProxyCheckArgs", {
    "id": FlexibleInt(validate=validate.Range(min=1),
                      metadata={"description": "A pool proxy; or give the proxy's fields"}),
    **_proxy_fields(False), "ipCheckService": _service})
WindowCheckArgs = window_ref_args("WindowProxyCheckArgs", ipCheckService=fields.String(
    metadata={"description": "Default: the window's"}))


class PoolProxySchema(Schema):
    id = fields.Integer()
    proxyType = fields.String()
    host = fields.String()
    port = fields.Integer()
    proxyUserName = fields.String()
    proxyPassword = fields.String(metadata={"description": "Empty without "
                                                           "browser:proxy:reveal"})
    remark = fields.String()
    lastCheck = fields.Dict(allow_none=True)


class CheckSchema(Schema):
    reachable = fields.Boolean()
    service = fields.String()
    latencyMs = fields.Integer(allow_none=True)
    ip = fields.String()
    country = fields.String()
    countryCode = fields.String()
    region = fields.String()
    city = fields.String()
    timezone = fields.String()
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    isp = fields.String()
    kind = fields.String(metadata={"description": "On failure: auth_failed, "
                                                  "connect_refused, timeout, dns_failed, "
                                                  "bad_response, extraction_failed, "
                                                  "unsupported, blocked (an address in "
                                                  "a blocked network)"})
    message = fields.String()
    proxy = fields.String()
    fingerprint = fields.Dict(metadata={"description": "Window checks: the fingerprint "
                                                       "fields its isIpCreate* flags take "
                                                       "from this IP"})


ImportResult = Schema.from_dict({"imported": fields.Integer(), "errors": fields.List(
    fields.Dict())}, name="PoolImportResult")
DeleteResult = Schema.from_dict({"id": fields.Integer(), "unbound": fields.List(
    fields.Integer())}, name="PoolDeleteResult")
PoolPage = Schema.from_dict({"list": fields.List(fields.Nested(PoolProxySchema)),
                             "page": fields.Integer(), "pageSize": fields.Integer(),
                             "totalNum": fields.Integer()}, name="PoolPage")


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

