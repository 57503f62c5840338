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
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import psutil

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
    address, a zone index dropped), or None for a name. IPv4 is read as the C
    library reads it when connecting (``0x7f.1``, ``2130706433``, octal parts, one
    trailing dot), so no spelling of a blocked address passes as a name."""
    if not isinstance(value, str):
        address = value
    else:
        text = value.strip("[]").split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = _ipv4_as_connected(text)
            if address is None:
                return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _ipv4_as_connected(text: str) -> ipaddress.IPv4Address | None:
    """``text`` read by inet_aton (which getaddrinfo uses for numbers), or None."""
    text = text[:-1] if text.endswith(".") else text
    # inet_aton ignores whatever follows a space: only digits, hex and dots are read.
    if not text or text.strip("0123456789abcdefxABCDEFX.") != "":
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches (NAT64 64:ff9b::/96, 6to4,
    Teredo's client, IPv4-compatible ::a.b.c.d), or None."""
    if address.version == 4:
        return None
    if address in NAT64 or (1 < int(address) < 2 ** 32):  # NAT64, IPv4-compatible
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _addresses(value: str | Address) -> list[Address]:
    """The address ``value`` spells and the IPv4 address embedded in it, if any: both
    are checked (either may be what a route reaches). Raises ValueError for a name."""
    ip = _address(value)
    if ip is None:
        raise ValueError(f"{value!r} is not an IP address")
    embedded = _embedded(ip)
    return [ip] if embedded is None else [ip, embedded]


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

    def excepted(self, address: str | Address) -> bool:
        """Whether an IP address is in an allowed network (an operator's exception)."""
        return any(_in(ip, self.allowed) for ip in _addresses(address))

    def allows(self, address: str | Address) -> bool:
        """Whether an IP address may be reached: neither it nor the IPv4 address it
        embeds is blocked, unless allowed. A name is not an address: check what it
        resolves to (``check_literal`` lets names through for that reason)."""
        return all(_in(ip, self.allowed) or not _in(ip, self.all_blocked)
                   for ip in _addresses(address))

    def check(self, address: str | Address) -> None:
        """Raise ``Blocked`` for an address the policy refuses."""
        if not self.allows(address):
            raise Blocked(f"{_address(address)} is in a blocked network")

    def check_literal(self, host: str) -> None:
        """When a URL or host is saved: refuse a literal address in a blocked network.
        A name passes here; it is checked when it resolves."""
        if _address(host) is not None:
            self.check(host)


def _in(ip: Address, networks: tuple[Network, ...]) -> bool:
    return any(ip in net for net in networks if net.version == ip.version)


def this_host(address: str | Address) -> bool:
    """Whether an IP address reaches this machine (0.0.0.0 does, on Linux)."""
    for ip in _addresses(address):
        if ip.is_loopback or ip.is_unspecified:
            return True
        if any(entry.address.split("%", 1)[0] == str(ip)
               for entries in psutil.net_if_addrs().values() for entry in entries):
            return True
    return False


#: The farm's own service ports on this host, asked in a worker thread (blocking).
FarmPortsLookup = Callable[[], Collection[int]]

# Set by `browserfarm up` for its children: the listening ports of every process under
# that one (API, agent, its windows' browsers and relays, runner) are the farm's.
FARM_PID_VARIABLE = "BROWSERFARM_FARM_PID"


def farm_root() -> int | None:
    """The process every farm process runs under (``browserfarm up``), if any."""
    return int(os.environ.get(FARM_PID_VARIABLE) or 0) or None


class FarmPorts:
    """The farm's own service ports on this host (API, Local API, relays, keeper, and
    what the processes under ``root_pid`` listen on: Marionette, chromedriver, other
    processes' relays), which nothing the farm dials for a user may reach. ``own``
    gives this process's service ports. Calling it gives the collection; asking for a
    port it doesn't hold looks again (a browser just started has a new port), else
    the answer is at most ``MAX_AGE`` old."""

    MAX_AGE = 1.0

    def __init__(self, own: Callable[[], Iterable[int]], root_pid: int | None = None):
        self.own = own
        self.root_pid = root_pid  # None: no process is looked at
        self._lock = threading.Lock()
        self._ports: frozenset[int] = frozenset()
        self._at = float("-inf")

    def __call__(self) -> "FarmPorts":
        return self

    def __contains__(self, port: object) -> bool:
        with self._lock:
            if port not in self._ports or time.monotonic() - self._at > self.MAX_AGE:
                self._ports = frozenset(self._look_up())
                self._at = time.monotonic()
            return port in self._ports

    def __iter__(self):
        return iter(self._ports)

    def __len__(self) -> int:
        return len(self._ports)

    def _look_up(self) -> set[int]:
        ports = {port for port in self.own() if port}
        if self.root_pid is None:
            return ports
        # Not the root itself: under tests it is the test process with its own servers.
        pids = {child.pid for child in psutil.Process(self.root_pid).children(recursive=True)}
        ports.update(c.laddr.port for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids)
        return ports


async def resolve(policy: NetworkPolicy, host: str, port: int,
                  farm_ports: FarmPortsLookup | None = None) -> list[str]:
    """The addresses ``host`` resolves to, every one checked (``Blocked`` when any is
    refused: a name that also points into a blocked network is not used at all).
    With ``farm_ports``, the farm's own service ports on this host are refused too,
    unless the address is an allowed exception. Connect to one of these, never to
    the name again: a second lookup could answer differently (DNS rebinding)."""
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
    if farm_ports is not None and any(this_host(a) and not policy.excepted(a)
                                      for a in addresses):
        if await asyncio.get_running_loop().run_in_executor(
                None, lambda: port in farm_ports()):
            raise Blocked(f"{host}:{port} is a service of the farm on this host")
    return addresses


async def open_connection(policy: NetworkPolicy, host: str, port: int, *,
                          farm_ports: FarmPortsLookup | None = None, **kwargs
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` to ``host`` only once every address it resolves to
    is allowed (see ``resolve``), to one of the addresses checked."""
    error: OSError | None = None
    for address in await resolve(policy, host, port, farm_ports):
        try:
            return await asyncio.open_connection(address, port, **kwargs)
        except OSError as exc:
            error = exc
    raise error


async def connect_socket(policy: NetworkPolicy, host: str, port: int,
                         farm_ports: FarmPortsLookup | None = None) -> socket.socket:
    """A connected non-blocking socket to an allowed address of ``host``, for a
    library that takes one (asyncssh's ``sock``) and still names the host itself."""
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for address in await resolve(policy, host, port, farm_ports):
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
