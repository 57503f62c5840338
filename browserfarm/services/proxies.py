"""Proxies of windows and of the account's pool: a window's proxy fields (their rules,
columns and checks: ``WindowProxy``), where a window's proxy comes from
(``window_proxy``), the pool itself, and checks (reachable? which exit IP, where, how
fast?).

A check goes through a relay exactly as a browser would: the relay dials the proxy
with the window's proxy type, and an HTTP client asks an IP-check service through it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlsplit

from peewee import IntegrityError, chunked

from browserfarm import permissions as perm
from browserfarm.db import write_transaction
from browserfarm.errors import InvalidInput, NotFound
from browserfarm.models import PoolProxy, Window, utcnow
from browserfarm.net.extraction import FORMATS, BadLine, extract, fetch_text, parse_line
from browserfarm.net.geo import follow_ip
from browserfarm.net.ipcheck import IpInfo, ask_through
from browserfarm.net.policy import Blocked
from browserfarm.net.proxy import (ProxyFailure, ProxyOptions, ProxySettings, canonical_type,
                                   check_proxy_type)
from browserfarm.net.relay import RelayLimits
from browserfarm.services.revisions import account_write

DEFAULT_EXTRACTED_TYPE = "socks5"

# A window's proxy fields (API name -> Window column), in the order the API shows them.
WINDOW_PROXY_COLUMNS = {
    "proxyMethod": "proxy_method",
    "proxyType": "proxy_type",
    "host": "host",
    "port": "port",
    "proxyUserName": "proxy_username",
    "proxyId": "proxy_id",
    "dynamicIpUrl": "dynamic_ip_url",
    "dynamicIpChannel": "dynamic_ip_channel",
    "isDynamicIpChangeIp": "is_dynamic_ip_change_ip",
    "refreshProxyUrl": "refresh_proxy_url",
    "ipCheckService": "ip_check_service",
    "enableSocks5Udp": "enable_socks5_udp",
}
# The fields that make up the proxy: saved together, reset together (ipCheckService is
# only how it is checked).
PROXY_FIELDS = ("proxyMethod", "proxyType", "host", "port", "proxyUserName", "proxyPassword",
                "proxyId", "dynamicIpUrl", "dynamicIpChannel", "isDynamicIpChangeIp",
                "refreshProxyUrl", "enableSocks5Udp")
PROXY_DEFAULTS = {"proxyMethod": 2, "proxyType": "direct", "host": "", "port": None,
                  "proxyUserName": "", "proxyPassword": "", "proxyId": None,
                  "dynamicIpUrl": "", "dynamicIpChannel": "", "isDynamicIpChangeIp": False,
                  "refreshProxyUrl": "", "enableSocks5Udp": False}
# Shown only to callers who may see proxy secrets: they carry the provider's key.
SECRET_URL_FIELDS = ("dynamicIpUrl", "refreshProxyUrl")
# The fields naming where the server connects: a proxy's host, URLs it fetches.
ADDRESS_FIELDS = ("host",)
URL_FIELDS = ("dynamicIpUrl", "refreshProxyUrl")


def check_addresses(farm, fields: dict) -> None:
    """When saved: a literal address in a blocked network is refused, naming the field.
    Names pass: they are checked when they resolve, at connect time."""
    policy = farm.settings.network_policy
    for name in ADDRESS_FIELDS + URL_FIELDS:
        value = fields.get(name) or ""
        try:
            host = (urlsplit(value).hostname or "") if name in URL_FIELDS else value
        except ValueError:  # e.g. "http://[::1": an unclosed bracket
            raise InvalidInput(name, "is not a valid URL") from None
        try:
            policy.check_literal(host)
        except Blocked as exc:
            raise InvalidInput(name, f"{exc} (BROWSERFARM_BLOCKED_NETWORKS)") from None


def proxy_options(farm, account_id: int) -> ProxyOptions:
    """How the server reaches an account's proxies: SSH host keys are trusted per
    account (the first account to see a host must not decide its key for others)."""
    return replace(farm.proxy_options,
                   ssh_known_hosts=farm.settings.data.account_ssh_known_hosts(account_id))


@dataclass
class CheckResult:
    reachable: bool
    service: str
    latencyMs: int | None = None
    ip: str = ""
    country: str = ""
    countryCode: str = ""
    region: str = ""
    city: str = ""
    timezone: str = ""
    latitude: float | None = None
    longitude: float | None = None
    isp: str = ""
    kind: str = ""  # on failure: auth_failed, connect_refused, timeout, ...
    message: str = ""
    proxy: str = ""  # the proxy checked, without its password

    def info(self) -> IpInfo | None:
        if not self.reachable:
            return None
        return IpInfo(ip=self.ip, country=self.country, country_code=self.countryCode,
                      region=self.region, city=self.city, timezone=self.timezone,
                      latitude=self.latitude, longitude=self.longitude, isp=self.isp)


def check(farm, account_id: int, settings: ProxySettings,
          service_name: str = "ip-api") -> CheckResult:
    """Ask ``service_name`` for the exit IP through ``settings`` (a proxy of
    ``account_id``); never raises for a proxy's failure, which the result describes."""
    service = farm.plugins.ip_check_services.get(service_name)
    if service is None:
        raise InvalidInput("ipCheckService", f"unknown service {service_name!r}")
    proxy_type = farm.plugins.proxy_types.get(settings.type)
    if proxy_type is None:
        raise InvalidInput("proxyType", f"proxy type {settings.type!r} is not available")
    url = farm.settings.ip_check_urls.get(service_name) or service.base_url
    timeout = farm.settings.proxy_timeout
    relay = farm.relays.start(proxy_type(settings, proxy_options(farm, account_id)),
                              RelayLimits(max_connections=8, idle_timeout=timeout * 3))
    result = CheckResult(reachable=False, service=service_name, proxy=settings.redacted())
    started = time.monotonic()
    try:
        info = ask_through(relay, service, url, timeout)
        result.latencyMs = round((time.monotonic() - started) * 1000)
        result.reachable = True
        result.ip, result.country, result.countryCode = info.ip, info.country, info.country_code
        result.region, result.city, result.timezone = info.region, info.city, info.timezone
        result.latitude, result.longitude, result.isp = info.latitude, info.longitude, info.isp
    except ProxyFailure as failure:
        result.kind, result.message = failure.kind, failure.message
    finally:
        farm.relays.stop(relay)
    return result


class ProxyService:
    """Proxies as the caller's account sees them: windows' proxies and the pool."""

    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller
        self.account_id = caller.account_id

    # ----- the pool -------------------------------------------------------------------

    def pool_add(self, data: dict) -> dict:
        self.caller.require(perm.PROXY_MANAGE)
        settings = self._validated(data)
        try:
            with write_transaction(self.farm.db):
                self._check_not_pooled(settings)
                item = PoolProxy.create(account=self.account_id, **self._columns(settings),
                                        remark=data.get("remark", ""))
        except IntegrityError:  # added meanwhile by someone else
            raise InvalidInput("host", "this proxy is already in the pool") from None
        return self._to_api(item)

    def pool_import(self, text: str, proxy_type: str, fmt: str, partial: bool) -> dict:
        """One proxy per line; every bad line is reported with its number. Nothing is
        imported when a line is bad, unless ``partial``."""
        self.caller.require(perm.PROXY_MANAGE)
        rows, errors, seen = [], [], set()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                settings = parse_line(line, proxy_type, fmt)
                self._validated_settings(settings)
            except (BadLine, InvalidInput) as exc:
                errors.append({"line": number, "text": line[:200],
                               "error": getattr(exc, "msg", None) or str(exc)})
                continue
            key = (settings.type, settings.host, settings.port, settings.username)
            if key in seen:
                errors.append({"line": number, "text": line[:200],
                               "error": "the same proxy is on an earlier line"})
                continue
            seen.add(key)
            rows.append((number, line, settings))
        with write_transaction(self.farm.db):
            pooled = self._pooled_keys()
            fresh = []
            for number, line, settings in rows:
                key = (settings.type, settings.host, settings.port, settings.username)
                if key in pooled:
                    errors.append({"line": number, "text": line[:200],
                                   "error": "already in the pool"})
                else:
                    fresh.append(settings)
            if errors and not partial:
                errors.sort(key=lambda e: e["line"])
                raise InvalidInput("text", f"{len(errors)} bad line(s); nothing imported "
                                           "(send partial: true to import the others)",
                                   errors=errors)
            rows = [{"account": self.account_id, **self._columns(s)} for s in fresh]
            for batch in chunked(rows, 500):  # within any database's parameter limit
                PoolProxy.insert_many(batch).execute()
        errors.sort(key=lambda e: e["line"])
        return {"imported": len(fresh), "errors": errors}

    def pool_list(self, page: int, page_size: int, keyword: str = "") -> dict:
        self.caller.require(perm.PROXY_LIST)
        query = PoolProxy.select().where(PoolProxy.account == self.account_id)
        if keyword:
            query = query.where(PoolProxy.host.contains(keyword)
                                | PoolProxy.remark.contains(keyword))
        rows = query.order_by(PoolProxy.id).offset(page * page_size).limit(page_size)
        return {"list": [self._to_api(r) for r in rows], "page": page,
                "pageSize": page_size, "totalNum": query.count()}

    def pool_detail(self, proxy_id: int) -> dict:
        self.caller.require(perm.PROXY_LIST)
        return self._to_api(self._pool_proxy(proxy_id))

    def pool_update(self, data: dict) -> dict:
        self.caller.require(perm.PROXY_MANAGE)
        with write_transaction(self.farm.db):
            item = self._pool_proxy(data["id"])
            current = self._pool_settings(item)
            if not self.caller.can(perm.BROWSER_PROXY_REVEAL):
                keep_password_in_place({"proxyType": current.type, "host": current.host,
                                        "port": current.port,
                                        "proxyPassword": current.password}, data)
            settings = self._validated({
                "proxyType": data.get("proxyType", current.type),
                "host": data.get("host", current.host),
                "port": data.get("port", current.port),
                "proxyUserName": data.get("proxyUserName", current.username),
                "proxyPassword": data.get("proxyPassword", current.password)})
            self._check_not_pooled(settings, except_id=item.id)
            columns = self._columns(settings)
            if "remark" in data:
                columns["remark"] = data["remark"]
            PoolProxy.update(columns).where(PoolProxy.id == item.id).execute()
        return self._to_api(PoolProxy.get_by_id(item.id))

    def pool_delete(self, proxy_id: int, unbind: bool) -> dict:
        """Refused while windows are bound to the proxy, unless ``unbind``: then those
        windows are left without a proxy (direct)."""
        self.caller.require(perm.PROXY_MANAGE)
        with account_write(self.farm, self.account_id):
            item = self._pool_proxy(proxy_id)
            bound = [w.id for w in Window.select(Window.id).where(
                Window.account == self.account_id, Window.proxy_method == 4,
                Window.proxy_id == item.id)]
            if bound and not unbind:
                raise InvalidInput("id", f"proxy {proxy_id} is bound to window(s) "
                                         f"{', '.join(map(str, bound))}; send unbind: true "
                                         "to delete it and leave them without a proxy")
            if bound:
                Window.update(proxy_method=2, proxy_type="direct", proxy_id=None,
                              updated_at=utcnow()).where(Window.id.in_(bound)).execute()
            item.delete_instance()
        return {"id": proxy_id, "unbound": bound}

    def pool_check(self, proxy_id: int, service: str) -> dict:
        self.caller.require(perm.PROXY_CHECK)
        item = self._pool_proxy(proxy_id)
        result = check(self.farm, self.account_id, self._pool_settings(item), service)
        stored = asdict(result) | {"checkedAt": utcnow().isoformat() + "Z"}
        PoolProxy.update(last_check=stored).where(PoolProxy.id == item.id).execute()
        return asdict(result)

    def check_settings(self, data: dict, service: str) -> dict:
        """Check a proxy given as fields (proxyType, host, ...), stored nowhere."""
        self.caller.require(perm.PROXY_CHECK)
        return asdict(check(self.farm, self.account_id, self._validated(data), service))

    # ----- internals ------------------------------------------------------------------

    def _validated(self, data: dict) -> ProxySettings:
        fields = {"proxyType": data.get("proxyType") or "socks5",
                  "host": data.get("host") or "", "port": data.get("port"),
                  "proxyUserName": data.get("proxyUserName") or "",
                  "proxyPassword": data.get("proxyPassword") or ""}
        check_proxy_type(fields, self.farm.plugins)
        check_addresses(self.farm, fields)
        return ProxySettings(fields["proxyType"], fields["host"], fields["port"],
                             fields["proxyUserName"], fields["proxyPassword"])

    def _validated_settings(self, settings: ProxySettings) -> None:
        self._validated({"proxyType": settings.type, "host": settings.host,
                         "port": settings.port, "proxyUserName": settings.username,
                         "proxyPassword": settings.password})

    def _columns(self, settings: ProxySettings) -> dict:
        return {"proxy_type": settings.type, "host": settings.host, "port": settings.port,
                "username": settings.username,
                "password_enc": self.farm.cipher.encrypt(settings.password)}

    def _pooled_keys(self) -> set:
        return {(p.proxy_type, p.host, p.port, p.username) for p in PoolProxy.select(
            PoolProxy.proxy_type, PoolProxy.host, PoolProxy.port, PoolProxy.username
        ).where(PoolProxy.account == self.account_id)}

    def _check_not_pooled(self, settings: ProxySettings, except_id: int | None = None):
        query = PoolProxy.select().where(
            PoolProxy.account == self.account_id, PoolProxy.proxy_type == settings.type,
            PoolProxy.host == settings.host, PoolProxy.port == settings.port,
            PoolProxy.username == settings.username)
        if except_id is not None:
            query = query.where(PoolProxy.id != except_id)
        if query.exists():
            raise InvalidInput("host", "this proxy is already in the pool")

    def _pool_proxy(self, proxy_id) -> PoolProxy:
        item = PoolProxy.get_or_none(PoolProxy.id == proxy_id,
                                     PoolProxy.account == self.account_id)
        if item is None:
            raise NotFound(f"Pool proxy not found: {proxy_id}")
        return item

    def _pool_settings(self, item: PoolProxy) -> ProxySettings:
        return ProxySettings(item.proxy_type, item.host, item.port, item.username,
                             self.farm.cipher.decrypt(item.password_enc))

    def _to_api(self, item: PoolProxy) -> dict:
        reveal = self.caller.can(perm.BROWSER_PROXY_REVEAL)
        return {"id": item.id, "proxyType": item.proxy_type, "host": item.host,
                "port": item.port, "proxyUserName": item.username,
                "proxyPassword": self.farm.cipher.decrypt(item.password_enc) if reveal else "",
                "remark": item.remark, "lastCheck": item.last_check}


# ----- a window's proxy fields ----------------------------------------------------------

def keep_password_in_place(stored: dict, given: dict) -> None:
    """An edit by a caller who may not see the stored proxy password must not send it
    to another server: changing the type, host or port then needs the password again
    (211 naming proxyPassword)."""
    moved = [k for k in ("proxyType", "host", "port")
             if k in given and str(given[k]).lower() != str(stored.get(k)).lower()]
    if moved and stored.get("proxyPassword") and "proxyPassword" not in given:
        raise InvalidInput("proxyPassword", f"give the password again: {moved[0]} changes and "
                           "this token may not see the stored password")


class WindowProxy:
    """The rules of a window's proxy fields (API names), for the windows of one account:
    validated, turned into columns, read back, checked and rotated. Permissions are the
    caller's business (services.windows)."""

    def __init__(self, farm, account_id: int, may_reveal: bool = True):
        self.farm = farm
        self.account_id = account_id
        self.may_reveal = may_reveal  # the caller may see stored proxy passwords

    def columns(self, data: dict, window: Window | None = None) -> dict:
        """The Window columns for the proxy fields of ``data``, validated. Fields not
        given keep ``window``'s values (an edit; nothing when no proxy field is given),
        or without a window take their defaults (a new window, or a batch that sets the
        same proxy everywhere: nothing of an older proxy lingers)."""
        given = {k: v for k, v in data.items() if k in PROXY_FIELDS}
        if window is not None and not given:
            return {}
        stored = self.fields_of(window) if window is not None else PROXY_DEFAULTS
        if not self.may_reveal:
            keep_password_in_place(stored, given)
        proxy = stored | given
        self.validate(proxy)
        columns = {WINDOW_PROXY_COLUMNS[k]: v for k, v in proxy.items()
                   if k in WINDOW_PROXY_COLUMNS}
        columns["proxy_method"] = int(proxy["proxyMethod"])
        columns["proxy_password_enc"] = self.farm.cipher.encrypt(proxy["proxyPassword"] or "")
        # A proxy extracted under the old settings must not outlive them.
        columns["extracted_proxy"], columns["extracted_at"] = None, None
        for text in ("host", "proxy_username", "dynamic_ip_url", "dynamic_ip_channel",
                     "refresh_proxy_url"):
            columns[text] = columns.get(text) or ""
        return columns

    def fields_of(self, window: Window) -> dict:
        """The window's proxy fields as saved (its password decrypted)."""
        proxy = {k: getattr(window, WINDOW_PROXY_COLUMNS[k]) for k in PROXY_FIELDS
                 if k in WINDOW_PROXY_COLUMNS}
        proxy["proxyPassword"] = self.farm.cipher.decrypt(window.proxy_password_enc)
        return proxy

    def validate(self, proxy: dict) -> None:
        """A whole set of proxy fields fits its proxyMethod (the proxy source plugin's
        rules) and, for a pool proxy, names one of the account's pool."""
        proxy["proxyType"] = canonical_type(proxy["proxyType"])
        plugins = self.farm.plugins
        source = plugins.proxy_source_for_method(int(proxy["proxyMethod"]))
        if source is None:
            methods = sorted(s.method for s in plugins.proxy_sources)
            raise InvalidInput("proxyMethod", f"must be one of {methods}")
        source.validate(proxy, plugins)
        check_addresses(self.farm, proxy)
        if source.method == 4 and not PoolProxy.select().where(
                PoolProxy.id == proxy["proxyId"],
                PoolProxy.account == self.account_id).exists():
            raise InvalidInput("proxyId", f"no proxy {proxy['proxyId']} in the pool")

    def check_ip_service(self, name) -> None:
        """``ipCheckService``, when given, names a registered IP-check service."""
        services = self.farm.plugins.ip_check_services
        if name and not services.known(name):
            known = ", ".join(services.names())
            raise InvalidInput("ipCheckService", f"unknown service {name!r} (known: {known})")

    def check(self, window: Window, service: str | None = None) -> dict:
        """Check the window's proxy as an open would use it."""
        return self._checked(window, service, lambda: window_proxy(self.farm, window))

    def refresh(self, window: Window, service: str | None = None) -> dict:
        """Rotate: call the window's refreshProxyUrl (if any), extract an extracted
        proxy anew, then check the new one."""
        def rotated():
            if window.refresh_proxy_url:
                fetch_text(window.refresh_proxy_url, self.farm.settings.proxy_timeout,
                           self.farm.settings.network_policy)
            return window_proxy(self.farm, window, fresh=window.proxy_method == 3)
        return self._checked(window, service, rotated)

    def _checked(self, window: Window, service: str | None, settings_of) -> dict:
        service = service or window.ip_check_service or "ip-api"
        try:
            settings = settings_of()
        except ProxyFailure as failure:  # e.g. the extraction URL failed
            return asdict(CheckResult(False, service, kind=failure.kind,
                                      message=failure.message))
        result = check(self.farm, self.account_id, settings, service)
        answer = asdict(result)
        if result.reachable:  # what the window's isIpCreate* flags take from this IP
            followed = follow_ip(window.fingerprint or {}, result.info())
            answer["fingerprint"] = {k: v for k, v in followed.items()
                                     if (window.fingerprint or {}).get(k) != v}
        return answer


# ----- where a window's proxy comes from (scoped to the window's own account) ----------

def window_proxy(farm, window: Window, fresh: bool = False) -> ProxySettings:
    """The proxy a window uses now. Extracted proxies (proxyMethod 3) are fetched
    when there is none yet, when ``fresh``, or with isDynamicIpChangeIp."""
    cipher = farm.cipher
    if window.proxy_method == 3:
        stored = window.extracted_proxy
        if fresh or window.is_dynamic_ip_change_ip or not stored:
            return _extract_for(farm, window)
        return ProxySettings(stored["type"], stored["host"], stored["port"],
                             stored.get("username", ""),
                             cipher.decrypt(stored.get("password_enc", "")))
    if window.proxy_method == 4:
        item = PoolProxy.get_or_none(PoolProxy.id == window.proxy_id,
                                     PoolProxy.account == window.account_id)
        if item is None:
            raise NotFound(f"Pool proxy not found: {window.proxy_id}")
        return ProxySettings(item.proxy_type, item.host, item.port, item.username,
                             cipher.decrypt(item.password_enc))
    return ProxySettings(window.proxy_type, window.host, window.port,
                         window.proxy_username, cipher.decrypt(window.proxy_password_enc))


def _extract_for(farm, window: Window) -> ProxySettings:
    default_type = (window.proxy_type if window.proxy_type not in ("", "direct")
                    else DEFAULT_EXTRACTED_TYPE)
    channel = window.dynamic_ip_channel if window.dynamic_ip_channel in FORMATS else "auto"
    settings = extract(window.dynamic_ip_url, default_type, channel,
                       farm.settings.proxy_timeout, farm.settings.network_policy)
    stored = {"type": settings.type, "host": settings.host, "port": settings.port,
              "username": settings.username,
              "password_enc": farm.cipher.encrypt(settings.password)}
    with account_write(farm, window.account_id):
        Window.update(extracted_proxy=stored, extracted_at=utcnow()).where(
            Window.id == window.id).execute()
    return settings
