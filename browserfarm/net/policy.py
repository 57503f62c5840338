"""Which addresses the farm may reach on a user's behalf (extraction and refresh URLs,
IP-check services, proxy checks, worker browsers).

Link-local and cloud-metadata ranges are always blocked: a request there from the
server reads its cloud credentials. The operator adds ranges with
``BROWSERFARM_BLOCKED_NETWORKS`` and makes exceptions with
``BROWSERFARM_ALLOWED_NETWORKS`` (an allowed range wins over a blocked one). A literal
address is refused when it is saved; a name is checked after it resolves, when the
connection is made, so a DNS answer that changes cannot get around the rule."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_BLOCKED = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")


class Blocked(Exception):
    """An address the policy refuses; the message names it."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.66.0.0/16"`` -> networks; a ValueError names a bad one."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def _address(value: str | Address) -> Address | None:
    """The IP address ``value`` spells (an IPv4-mapped IPv6 address as its IPv4
    address, a zone index dropped), or None for a name."""
    if not isinstance(value, str):
        address = value
    else:
        try:
            address = ipaddress.ip_address(value.strip("[]").split("%", 1)[0])
        except ValueError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class NetworkPolicy:
    blocked: tuple[Network, ...] = ()  # added to ALWAYS_BLOCKED
    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings) -> "NetworkPolicy":
        return cls(parse_networks(settings.blocked_networks),
                   parse_networks(settings.allowed_networks))

    @property
    def all_blocked(self) -> tuple[Network, ...]:
        return parse_networks(",".join(ALWAYS_BLOCKED)) + self.blocked

    def allows(self, address: str | Address) -> bool:
        """Whether an IP address may be reached. A name is not an address: check what
        it resolves to (``check_literal`` lets names through for that reason)."""
        ip = _address(address)
        if ip is None:
            raise ValueError(f"{address!r} is not an IP address")
        if any(ip in net for net in self.allowed if net.version == ip.version):
            return True
        return not any(ip in net for net in self.all_blocked if net.version == ip.version)

    def check(self, address: str | Address) -> None:
        """Raise ``Blocked`` for an address the policy refuses."""
        if not self.allows(address):
            raise Blocked(f"{_address(address)} is in a blocked network")

    def check_literal(self, host: str) -> None:
        """When a URL or host is saved: refuse a literal address in a blocked network.
        A name passes here; it is checked when it resolves."""
        if _address(host) is not None:
            self.check(host)


async def resolve(policy: NetworkPolicy, host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, every one checked (``Blocked`` when any is
    refused: a name that also points into a blocked network is not used at all).
    Connect to one of these, never to the name again: a second lookup could answer
    differently (DNS rebinding)."""
    literal = _address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        if not policy.allows(address):
            if literal is not None:
                raise Blocked(f"{literal} is in a blocked network")
            raise Blocked(f"{host} resolves to {_address(address)}, in a blocked network")
    return addresses


async def open_connection(policy: NetworkPolicy, host: str, port: int, **kwargs
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` to ``host`` only once every address it resolves to
    is allowed, to one of the addresses checked."""
    error: OSError | None = None
    for address in await resolve(policy, host, port):
        try:
            return await asyncio.open_connection(address, port, **kwargs)
        except OSError as exc:
            error = exc
    raise error


async def connect_socket(policy: NetworkPolicy, host: str, port: int) -> socket.socket:
    """A connected non-blocking socket to an allowed address of ``host``, for a
    library that takes one (asyncssh's ``sock``) and still names the host itself."""
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for address in await resolve(policy, host, port):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
            return sock
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            error = exc
    raise error
