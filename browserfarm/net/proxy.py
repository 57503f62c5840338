"""What the core knows of proxies: the settings a window carries, the base class every
proxy-type plugin extends, and the kinds of failure a proxy step can have."""
from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from browserfarm.errors import InvalidInput
from browserfarm.net import policy
from browserfarm.net.policy import Blocked, FarmPorts, FarmPortsLookup, NetworkPolicy, farm_root

#: What went wrong, as the proxy check and the open error report it.
FAILURE_KINDS = ("auth_failed", "connect_refused", "timeout", "dns_failed", "bad_response",
                 "extraction_failed", "unsupported", "blocked")


class ProxyFailure(Exception):
    """A proxy step failed; ``kind`` is one of ``FAILURE_KINDS``, ``message`` what the
    upstream said."""

    def __init__(self, kind: str, message: str):
        assert kind in FAILURE_KINDS, kind
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ProxySettings:
    type: str
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str = ""

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{self.type}://{user}{self.host}:{self.port}" if self.host else self.type


@dataclass(frozen=True)
class ProxyOptions:
    """Deployment-wide choices for reaching proxies."""
    connect_timeout: float = 10.0
    ca_file: str | None = None  # extra CAs trusted for https proxies
    ssh_host_key_policy: str = "accept-new"  # accept-new | strict | insecure
    ssh_known_hosts: Path | None = None
    # What a type may connect to directly (the proxy, or the target when direct).
    network_policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    # The farm's own service ports on this host, refused there too (a proxy at a
    # worker relay's port would be another account's paid proxy); None: none known.
    farm_ports: FarmPortsLookup | None = None

    @classmethod
    def from_settings(cls, settings, own_ports: Callable[[], Iterable[int]] = tuple
                      ) -> "ProxyOptions":
        """``own_ports``: the ports this process's relays (and other services) listen on."""
        return cls(connect_timeout=settings.proxy_timeout,
                   ca_file=settings.proxy_ca_file or None,
                   ssh_host_key_policy=settings.ssh_host_key_policy,
                   ssh_known_hosts=settings.data.ssh_known_hosts,
                   network_policy=settings.network_policy,
                   farm_ports=FarmPorts(
                       lambda: {settings.port, settings.local_port, *own_ports()},
                       farm_root()))

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
        return context


class ProxyType:
    """A proxy type. ``name`` is the window's ``proxyType`` value. An instance serves
    one window (or worker): it may keep a connection to its proxy between streams."""

    name = ""
    needs_address = True  # host and port required
    supports_udp = False  # can relay UDP (SOCKS5 UDP ASSOCIATE)

    def __init__(self, settings: ProxySettings, options: ProxyOptions | None = None):
        self.settings = settings
        self.options = options or ProxyOptions()

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

    async def open_connection(self, host: str, port: int
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream to ``host:port`` through this proxy; raises ``ProxyFailure``."""
        raise NotImplementedError

    async def handshake(self) -> None:
        """Speak to the proxy as far as its protocol goes without a target (e.g. the
        greeting and the credentials): the check made before a window opens when no
        start page tells more. Raises ``ProxyFailure``. By default: its port answers."""
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                _, writer = await self.open_direct(self.settings.host, self.settings.port)
            writer.close()
        except Exception as exc:  # noqa: BLE001 - every failure gets its kind
            raise failure_from(exc) from exc

    async def open_direct(self, host: str, port: int, **kwargs
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection made from this machine (to the proxy, or to the target when
        there is none), only to an address the deployment's network policy allows,
        after the name resolves, and never to the farm's own ports on this host;
        raises ``Blocked`` otherwise."""
        return await policy.open_connection(self.options.network_policy, host, port,
                                            farm_ports=self.options.farm_ports, **kwargs)

    async def direct_socket(self, host: str, port: int):
        """Like ``open_direct``, a connected socket (for asyncssh's ``sock``)."""
        return await policy.connect_socket(self.options.network_policy, host, port,
                                           self.options.farm_ports)

    async def checked_address(self, host: str, port: int) -> str:
        """An address of ``host`` the network policy allows (every one it resolves to
        checked), for a library that connects by itself."""
        return (await policy.resolve(self.options.network_policy, host, port,
                                     self.options.farm_ports))[0]

    async def open_udp(self):
        """A ``browserfarm.net.udp.UdpTunnel`` through this proxy; raises ``ProxyFailure``
        ("unsupported" when the type or the proxy can't carry UDP)."""
        raise ProxyFailure("unsupported", f"proxy type {self.name} cannot carry UDP")

    async def aclose(self) -> None:
        """Release what the instance keeps open (e.g. an SSH connection)."""


def failure_from(exc: BaseException) -> ProxyFailure:
    """The kind of a low-level error met while reaching a proxy or through it."""
    if isinstance(exc, ProxyFailure):
        return exc
    if isinstance(exc, Blocked):
        return ProxyFailure("blocked", str(exc))
    text = str(exc) or exc.__class__.__name__
    cause = exc
    while cause is not None:  # libraries wrap the OS error that tells the most
        if isinstance(cause, ConnectionRefusedError):
            return ProxyFailure("connect_refused", text)
        if isinstance(cause, socket.gaierror):
            return ProxyFailure("dns_failed", text)
        if isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
            return ProxyFailure("timeout", text)
        cause = cause.__cause__ or cause.__context__
    lowered = text.lower()
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "timed out" in lowered:
        return ProxyFailure("timeout", text)
    if isinstance(exc, socket.gaierror) or "name or service not known" in lowered \
            or "host unreachable" in lowered or "could not resolve" in lowered:
        return ProxyFailure("dns_failed", text)
    if "auth" in lowered or "407" in lowered or "permission denied" in lowered \
            or "not allowed" in lowered:
        return ProxyFailure("auth_failed", text)
    if isinstance(exc, ConnectionRefusedError) or "refused" in lowered:
        return ProxyFailure("connect_refused", text)
    return ProxyFailure("bad_response", text)


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


ALIASES = {"noproxy": "direct"}  # BitBrowser scripts say "noproxy"


def canonical_type(type_name: str) -> str:
    return ALIASES.get(type_name, type_name)


def proxy_type_named(type_name: str, plugins):
    """The registered class for ``type_name`` (None when registered but unavailable)."""
    if not plugins.proxy_types.known(type_name):
        known = ", ".join(plugins.proxy_types.names())
        raise InvalidInput("proxyType", f"unknown proxy type {type_name!r} (known: {known})")
    return plugins.proxy_types.get(type_name)


def check_proxy_type(fields: dict, plugins) -> None:
    """``proxyType`` names a registered type and the address fields fit it."""
    type_name = canonical_type(fields.get("proxyType") or "direct")
    fields["proxyType"] = type_name
    proxy_type = proxy_type_named(type_name, plugins)
    if proxy_type is not None:
        proxy_type.validate(ProxySettings(
            type=type_name, host=fields.get("host") or "", port=fields.get("port"),
            username=fields.get("proxyUserName") or "",
            password=fields.get("proxyPassword") or ""))
