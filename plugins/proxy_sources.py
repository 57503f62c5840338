"""Built-in proxy sources: custom (proxyMethod 2), API-extracted (3), pool binding (4)."""
from urllib.parse import urlsplit

from browserfarm.pluginapi import (InvalidInput, ProxySource, check_proxy_type, hookimpl,
                                   proxy_type_named)


def _check_url(fields, name, required):
    url = fields.get(name) or ""
    if not url:
        if required:
            raise InvalidInput(name, "is required for proxyMethod 3 (API-extracted proxy)")
        return
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. "http://[::1": an unclosed bracket
        hostname = None
    if not hostname or parts.scheme not in ("http", "https"):
        raise InvalidInput(name, "must be an http:// or https:// URL")


class Custom(ProxySource):
    """The window's own proxyType/host/port/credentials."""
    name = "custom"
    method = 2

    @classmethod
    def validate(cls, fields, plugins):
        check_proxy_type(fields, plugins)


class Extracted(ProxySource):
    """A proxy fetched from ``dynamicIpUrl`` at open; ``refreshProxyUrl`` rotates it."""
    name = "extracted"
    method = 3

    @classmethod
    def validate(cls, fields, plugins):
        _check_url(fields, "dynamicIpUrl", required=True)
        _check_url(fields, "refreshProxyUrl", required=False)
        # proxyType is the type of the extracted proxies when their answer doesn't say
        # (direct, the default, means socks5).
        if fields.get("proxyType"):
            proxy_type_named(fields["proxyType"], plugins)


class Pool(ProxySource):
    """A proxy of the account's pool, bound by ``proxyId``."""
    name = "pool"
    method = 4

    @classmethod
    def validate(cls, fields, plugins):
        if not fields.get("proxyId"):
            raise InvalidInput("proxyId", "is required for proxyMethod 4 (proxy pool binding)")


@hookimpl
def browserfarm_register_proxy_sources(register):
    for cls in (Custom, Extracted, Pool):
        register(cls)
