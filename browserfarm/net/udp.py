"""UDP through proxies (SOCKS5 UDP ASSOCIATE, RFC 1928 section 7).

A ``UdpTunnel`` carries datagrams to any host:port and hands back what comes back.
The relay opens one per association when a window has ``enableSocks5Udp``; proxy
types that can carry UDP (``supports_udp``) return one from ``open_udp()``. What this
machine sends a datagram to itself (a destination, straight; a proxy's UDP relay
address) is checked against the network policy first, like any connection.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import logging
import struct
import time
from typing import Callable

from browserfarm.net import socks5
from browserfarm.net.policy import Blocked, NetworkPolicy, resolve
from browserfarm.net.proxy import ProxyFailure, failure_from
from browserfarm.net.socks5 import pack_address

log = logging.getLogger(__name__)

Receiver = Callable[[str, int, bytes], None]

DESTINATION_TTL = 60.0  # seconds a checked destination is kept before it is looked up again
MAX_DESTINATIONS = 4096  # per tunnel; the cache starts over when full


def pack(host: str, port: int, data: bytes) -> bytes:
    """A datagram with the SOCKS5 UDP request header."""
    return b"\x00\x00\x00" + pack_address(host, port) + data


def unpack(datagram: bytes) -> tuple[str, int, bytes] | None:
    """(host, port, data) of a SOCKS5 UDP datagram; None if malformed or fragmented."""
    if len(datagram) < 10 or datagram[2] != 0:  # fragments are not supported: dropped
        return None
    kind, rest = datagram[3], datagram[4:]
    try:
        if kind == 1:
            host, rest = str(ipaddress.IPv4Address(rest[:4])), rest[4:]
        elif kind == 4:
            host, rest = str(ipaddress.IPv6Address(rest[:16])), rest[16:]
        elif kind == 3:
            length = rest[0]
            host, rest = rest[1:1 + length].decode("idna"), rest[1 + length:]
        else:
            return None
        (port,) = struct.unpack("!H", rest[:2])
    except (ValueError, IndexError, struct.error, UnicodeError):
        return None
    return host, port, rest[2:]


class UdpTunnel:
    """Datagrams to and from anywhere; ``receiver`` gets what comes back."""

    def __init__(self):
        self.receiver: Receiver | None = None
        # Told of every datagram dropped because its destination is blocked.
        self.on_blocked: Callable[[Blocked], None] | None = None

    async def send(self, host: str, port: int, data: bytes) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram):
        self.on_datagram = on_datagram

    def datagram_received(self, data, address):
        self.on_datagram(data, address)


class DirectUdp(UdpTunnel):
    """Straight from this machine, only to destinations the network policy allows.

    Each destination is resolved and checked once and its address kept for
    ``DESTINATION_TTL``: the hot path is a dict lookup, and a datagram goes to the address
    checked, never to the name again (DNS rebinding). A blocked one is dropped (logged
    when it is checked, ``on_blocked`` told of each datagram)."""

    def __init__(self, policy: NetworkPolicy | None = None):
        super().__init__()
        self.policy = policy or NetworkPolicy()
        # (host, port) -> (address or Blocked, when to look again)
        self._destinations: dict[tuple[str, int], tuple[tuple | Blocked, float]] = {}

    async def start(self) -> "DirectUdp":
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._received), family=socket.AF_INET)
        return self

    async def send(self, host, port, data):
        target, expires = self._destinations.get((host, port), (None, 0.0))
        if expires < time.monotonic():
            target = await self._check(host, port)
        if isinstance(target, Blocked):
            if self.on_blocked:
                self.on_blocked(target)
        elif target is not None:
            self._transport.sendto(data, target)

    async def _check(self, host, port):
        """The (address, port) to send to, a ``Blocked``, or None (no IPv4 address:
        the datagram is lost, as any may be); kept for the next datagrams."""
        try:
            addresses = await resolve(self.policy, host, port)
            target = next(((a, port) for a in addresses if ":" not in a), None)
        except Blocked as exc:
            log.warning("UDP to %s:%s dropped: %s", host, port, exc)
            target = exc
        except (OSError, UnicodeError):
            return None  # not kept: the next datagram tries again
        if len(self._destinations) >= MAX_DESTINATIONS:
            self._destinations.clear()
        self._destinations[(host, port)] = (target, time.monotonic() + DESTINATION_TTL)
        return target

    def _received(self, data, address):
        if self.receiver:
            self.receiver(address[0], address[1], data)

    async def aclose(self):
        self._transport.close()


class Socks5Udp(UdpTunnel):
    """Through a SOCKS5 proxy's own UDP ASSOCIATE; lives as long as its control
    connection. ``host`` is the proxy's address, already checked; the UDP relay
    address the proxy answers is checked here (a proxy could point us anywhere)."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 timeout: float, policy: NetworkPolicy | None = None):
        super().__init__()
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.timeout = timeout
        self.policy = policy or NetworkPolicy()

    async def start(self) -> "Socks5Udp":
        self._control = self._transport = None
        try:
            await asyncio.wait_for(self._associate(), self.timeout)
        except BaseException as exc:
            await self.aclose()  # no control connection outlives a failed association
            if isinstance(exc, ProxyFailure):
                raise
            if isinstance(exc, Blocked):
                raise failure_from(exc) from None
            if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                raise ProxyFailure("timeout", "no UDP ASSOCIATE answer from the proxy"
                                   ) from None
            if isinstance(exc, (OSError, asyncio.IncompleteReadError)):
                raise failure_from(exc) from exc
            raise
        return self

    async def _associate(self):
        reader, self._control = await asyncio.open_connection(self.host, self.port)
        host, port = await socks5.request(reader, self._control, socks5.UDP_ASSOCIATE,
                                          "0.0.0.0", 0, self.username, self.password)
        if host in ("0.0.0.0", "::"):
            host = self.host
        try:
            address = (await resolve(self.policy, host, port))[0]
        except Blocked as exc:
            raise Blocked(f"the proxy's UDP relay address: {exc}") from None
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._received), remote_addr=(address, port))

    async def send(self, host, port, data):
        self._transport.sendto(pack(host, port, data))

    def _received(self, datagram, address):
        parsed = unpack(datagram)
        if parsed and self.receiver:
            self.receiver(*parsed)

    async def aclose(self):
        for closable in (self._transport, self._control):
            if closable is not None:
                closable.close()
