"""What the core knows of proxies: the settings a window carries, and the base
class every proxy-type plugin extends."""
from __future__ import annotations

from dataclasses import dataclass

from browserfarm.errors import InvalidInput


@dataclass(frozen=True)
class ProxySettings:
    type: str
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str = ""


class ProxyType:
    """A proxy type. ``name`` is the window's ``proxyType`` value."""

    name = ""
    needs_address = True  # host and port required
    default_port: int | None = None

    @classmethod
    def validate(cls, settings: ProxySettings) -> None:
        """Raise ``InvalidInput`` naming the field when settings don't fit this type."""
        if not cls.needs_address:
            return
        if not settings.host:
            raise InvalidInput("host", f"is required for proxyType {cls.name}")
        if settings.port is None:
            raise InvalidInput("port", f"is required for proxyType {cls.name}")
        if not 1 <= settings.port <= 65535:
            raise InvalidInput("port", "must be between 1 and 65535")


class ProxySource:
    """How a window gets its proxy; ``method`` is the window's ``proxyMethod``.

    ``validate`` checks the window's proxy fields (API names, e.g. ``proxyType``,
    ``dynamicIpUrl``) and raises ``InvalidInput`` naming the field.
    """

    name = ""
    method = 0

    @classmethod
    def validate(cls, fields: dict, plugins) -> None:
        raise NotImplementedError


def proxy_type_named(type_name: str, plugins):
    """The registered class for ``type_name`` (None when registered but unavailable)."""
    if not plugins.proxy_types.known(type_name):
        known = ", ".join(plugins.proxy_types.names())
        raise InvalidInput("proxyType", f"unknown proxy type {type_name!r} (known: {known})")
    return plugins.proxy_types.get(type_name)


def check_proxy_type(fields: dict, plugins) -> None:
    """``proxyType`` names a registered type and the address fields fit it."""
    type_name = fields.get("proxyType") or "direct"
    proxy_type = proxy_type_named(type_name, plugins)
    if proxy_type is not None:
        proxy_type.validate(ProxySettings(
            type=type_name, host=fields.get("host") or "", port=fields.get("port"),
            username=fields.get("proxyUserName") or "",
            password=fields.get("proxyPassword") or ""))
