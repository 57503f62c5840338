"""The local relay: a SOCKS5 listener on 127.0.0.1 that dials every connection
through one window's proxy type. A private relay (a window's, given a ``path``) also
listens on a Unix socket for its browser, which only this user may connect to, and its
TCP side asks for a login (RFC 1929) that only this process knows; others are open to
every local user, as browsers that can't log in (Chromium) need.

Browsers can't send SOCKS5 credentials (and prompt for HTTP ones), so a window's
browser talks to its relay and the relay does the talking upstream. Every relay of a
process runs on one event loop in one background thread (``RelayHub``); callers in
other threads use the hub's blocking methods.
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from browserfarm.net import udp
from browserfarm.net.policy import Blocked, FarmPortsLookup, NetworkPolicy, resolve
from browserfarm.net.proxy import ProxyFailure, ProxyType

log = logging.getLogger(__name__)

CHUNK = 256 * 1024

# SOCKS5 reply codes (RFC 1928 section 6), by failure kind.
REPLY_OK = 0x00
REPLY_OF_KIND = {"auth_failed": 0x02, "connect_refused": 0x05, "timeout": 0x06,
                 "dns_failed": 0x04, "bad_response": 0x01, "unsupported": 0x07,
                 "extraction_failed": 0x01, "blocked": 0x02}
REPLY_COMMAND_NOT_SUPPORTED = 0x07
LOGIN = "browserfarm"  # a private relay's TCP user name; its password is the secret
CONNECT, UDP_ASSOCIATE = 0x01, 0x03
REPLY_ADDRESS_NOT_SUPPORTED = 0x08
REPLY_NOT_ALLOWED = 0x02  # "connection not allowed by ruleset": a Guard refused it


@dataclass(frozen=True)
class RelayLimits:
    max_connections: int = 1024
    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0  # a connection with no bytes either way for this long ends
    allow_udp: bool = False  # the window's enableSocks5Udp


@dataclass
class RelayStats:
    accepted: int = 0
    refused: int = 0
    failed: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    udp_blocked: int = 0  # datagrams dropped: their destination is in a blocked network
    last_failure: ProxyFailure | None = None  # what the latest refused request met


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Link:
    """One client connection and its upstream."""
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    last_active: float = field(default_factory=time.monotonic)

    def close(self):
        for writer in (self.client, self.upstream):
            if writer is not None and not writer.is_closing():
                writer.close()


@dataclass(frozen=True)
class Guard:
    """Where a relay that connects directly (a v5 worker's) may connect: the name is
    resolved here, every address it has is checked against the network policy, and
    the connection goes to a checked address (a DNS answer that changes between check
    and connect can't get around it). The farm's own service ports on this host
    (``farm_ports``) are refused too, unless the address is in an allowed network."""
    policy: NetworkPolicy
    farm_ports: FarmPortsLookup = frozenset  # called in a worker thread

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to try for ``host``; raises ``Blocked`` or ``ProxyFailure``."""
        try:
            return await resolve(self.policy, host, port, self.farm_ports)
        except (socket.gaierror, UnicodeError) as exc:
            raise ProxyFailure("dns_failed", f"{host}: {exc}") from None


class Relay:
    """One SOCKS5 listener for one proxy. Created and driven by ``RelayHub``."""

    def __init__(self, proxy: ProxyType, limits: RelayLimits, guard: Guard | None = None):
        self.proxy = proxy
        self.limits = limits
        self.guard = guard
        self.stats = RelayStats()
        self.port: int | None = None
        self.path: str | None = None  # a private relay's Unix socket
        self.secret: str | None = None  # its TCP login's password (user: LOGIN)
        self._server: asyncio.base_events.Server | None = None
        self._socket_server: asyncio.base_events.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    @property
    def connections(self) -> int:
        return len(self._links)

    @property
    def url(self) -> str:
        """How a client of this process reaches the relay (with the login if private)."""
        login = f"{LOGIN}:{self.secret}@" if self.secret else ""
        return f"socks5://{login}127.0.0.1:{self.port}"

    async def start(self, port: int = 0, path: str | None = None) -> int:
        serve = self._serve
        if path is not None:  # private: see the module's doc
            self.path, self.secret = str(path), secrets.token_urlsafe(18)
            if os.path.exists(self.path):
                os.unlink(self.path)  # left by a relay of an agent that died
            self._socket_server = await asyncio.start_unix_server(
                self._serve, self.path, limit=CHUNK, backlog=1024)
            os.chmod(self.path, 0o600)  # connecting takes write access: ours alone
            serve = functools.partial(self._serve, secret=self.secret)
        try:
            self._server = await asyncio.start_server(serve, "127.0.0.1", port,
                                                      limit=CHUNK, reuse_address=True,
                                                      backlog=1024)
        except OSError:  # e.g. the port is taken: no socket stays behind
            if self._socket_server is not None:
                self._socket_server.close()
                os.unlink(self.path)
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep_idle())
        return self.port

    async def stop(self) -> None:
        """Stop listening, close every connection, and release the proxy."""
        for server in (self._server, self._socket_server):
            if server is not None:
                server.close()
        if self.path is not None and os.path.exists(self.path):
            os.unlink(self.path)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for link in list(self._links):
            link.close()
        # Closed sockets end the connections' tasks; cancel only what still hangs
        # (e.g. a handshake waiting on its proxy).
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await self.proxy.aclose()

    # ----- one connection ---------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     secret: str | None = None):
        task = asyncio.current_task()
        self._tasks.add(task)
        link = _Link(writer)
        self._links.add(link)
        try:
            if len(self._links) > self.limits.max_connections:
                self.stats.refused += 1
                return
            self.stats.accepted += 1
            # asyncio.timeout, not wait_for: no extra task per connection.
            async with asyncio.timeout(self.limits.handshake_timeout):
                request = await self._handshake(reader, writer, secret)
            if request is None:
                return
            command, host, port = request
            if command == UDP_ASSOCIATE:
                await self._associate_udp(reader, writer, link)
                return
            try:
                up_reader, up_writer = await self._connect(host, port)
            except ProxyFailure as failure:
                self.stats.failed += 1
                self.stats.last_failure = failure
                await _reply(writer, REPLY_OF_KIND[failure.kind])
                return
            except Blocked:
                self.stats.refused += 1
                await _reply(writer, REPLY_NOT_ALLOWED)
                return
            link.upstream = up_writer
            await _reply(writer, REPLY_OK)
            if _splicable(writer) and _splicable(up_writer):
                await _splice(self.stats, link, reader, writer, up_reader, up_writer)
            else:  # e.g. SSH channels: streams without a transport of their own
                await asyncio.gather(self._pipe(reader, up_writer, link, up=True),
                                     self._pipe(up_reader, writer, link, up=False))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError,
                _BadRequest):
            pass
        except asyncio.CancelledError:
            pass  # only stop() cancels: the connection just ends
        except Exception:  # noqa: BLE001 - one broken connection must not stop the relay
            log.exception("relay connection failed")
        finally:
            link.close()
            self._links.discard(link)
            self._tasks.discard(task)

    async def _connect(self, host: str, port: int):
        """Through the proxy; with a guard, to the checked addresses one by one."""
        if self.guard is None:
            return await self.proxy.open_connection(host, port)
        async with asyncio.timeout(self.limits.handshake_timeout):
            addresses = await self.guard.addresses(host, port)
        for address in addresses:
            try:
                return await self.proxy.open_connection(address, port)
            except ProxyFailure as exc:
                failure = exc
        raise failure

    async def _handshake(self, reader, writer, secret: str | None = None
                         ) -> tuple[int, str, int] | None:
        """The client's request; with ``secret``, only after it logged in with it."""
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5:
            raise _BadRequest("not SOCKS5")
        method = 0x00 if secret is None else 0x02  # none, or username/password
        if method not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            return None
        writer.write(bytes((5, method)))
        await writer.drain()
        if secret is not None and not await _logged_in(reader, writer, secret):
            self.stats.refused += 1
            return None
        version, command, _, address_type = await reader.readexactly(4)
        host = await _read_address(reader, address_type)
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if host is None:
            await _reply(writer, REPLY_ADDRESS_NOT_SUPPORTED)
            return None
        if command not in (CONNECT, UDP_ASSOCIATE):  # BIND is not relayed
            self.stats.last_failure = ProxyFailure(
                "unsupported", f"SOCKS5 command {command} is not supported")
            await _reply(writer, REPLY_COMMAND_NOT_SUPPORTED)
            return None
        return command, host, port

    async def _associate_udp(self, reader, writer, link: _Link):
        """UDP ASSOCIATE: datagrams between the client and the proxy's UDP tunnel,
        for as long as the client keeps the control connection open."""
        if not self.limits.allow_udp:
            failure = ProxyFailure("unsupported", "UDP is off for this window "
                                                  "(enableSocks5Udp is false)")
        elif self.guard is not None:  # datagrams would go unchecked
            failure = ProxyFailure("unsupported", "UDP is off for guarded relays")
        elif not self.proxy.supports_udp:
            failure = ProxyFailure("unsupported", f"proxy type {self.proxy.name} cannot "
                                                  "carry UDP")
        else:
            failure = None
        tunnel = None
        if failure is None:
            try:
                tunnel = await self.proxy.open_udp()
            except ProxyFailure as exc:
                failure = exc
        if failure is not None:
            self.stats.failed += 1
            self.stats.last_failure = failure
            await _reply(writer, REPLY_OF_KIND[failure.kind])
            return
        loop = asyncio.get_running_loop()
        client = _UdpClient(tunnel, link)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: client, local_addr=("127.0.0.1", 0))
        except OSError:
            await tunnel.aclose()
            raise
        try:
            tunnel.receiver = client.answer
            tunnel.on_blocked = self._udp_blocked
            port = transport.get_extra_info("sockname")[1]
            writer.write(bytes([5, 0, 0, 1, 127, 0, 0, 1]) + struct.pack("!H", port))
            await writer.drain()
            while await reader.read(1024):  # the association ends with this connection
                pass
        finally:
            transport.close()
            await tunnel.aclose()

    def _udp_blocked(self, blocked: Blocked):
        self.stats.udp_blocked += 1
        self.stats.last_failure = ProxyFailure("blocked", str(blocked))

    async def _pipe(self, reader, writer, link: _Link, up: bool):
        """Copy until EOF, then half-close the other side; drain() is the
        back-pressure: a slow reader slows the fast writer down."""
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                link.last_active = time.monotonic()
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            link.close()

    async def _sweep_idle(self):
        interval = max(0.05, min(self.limits.idle_timeout / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for link in list(self._links):
                if now - link.last_active > self.limits.idle_timeout:
                    link.close()


async def _logged_in(reader, writer, secret: str) -> bool:
    """RFC 1929's username/password exchange, answered."""
    _, length = await reader.readexactly(2)
    user = await reader.readexactly(length)
    (length,) = await reader.readexactly(1)
    password = await reader.readexactly(length)
    ok = hmac.compare_digest(user + b":" + password, f"{LOGIN}:{secret}".encode())
    writer.write(b"\x01\x00" if ok else b"\x01\x01")
    await writer.drain()
    return ok


class _BadRequest(Exception):
    pass


def _splicable(writer) -> bool:
    transport = getattr(writer, "transport", None)
    return isinstance(writer, asyncio.StreamWriter) and hasattr(transport, "set_protocol")


async def _splice(stats: RelayStats, link: _Link, client_reader, client_writer,
                  up_reader, up_writer) -> None:
    """Join the two sockets at the transport level: each side's bytes are written to
    the other as they arrive, and a side whose send buffer fills pauses the other's
    reading (back-pressure). No coroutine wakes per chunk, and each chunk is copied
    once instead of through two StreamReaders."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    client, upstream = client_writer.transport, up_writer.transport
    to_upstream = _Half(upstream, link, stats, up=True, done=done)
    to_client = _Half(client, link, stats, up=False, done=done)
    to_upstream.partner, to_client.partner = to_client, to_upstream
    for transport in (client, upstream):
        transport.set_write_buffer_limits(high=CHUNK * 2)
    # Bytes the stream readers already hold go first (e.g. a server that spoke first).
    for reader, half, source in ((client_reader, to_upstream, client),
                                 (up_reader, to_client, upstream)):
        source.set_protocol(half)
        half.source = source
        pending = bytes(getattr(reader, "_buffer", b""))
        if pending:
            half.data_received(pending)
        if reader.at_eof():
            half.eof_received()
    await done


class _Half(asyncio.Protocol):
    """Reads one socket (``source``) and writes what it gets to the other (``sink``)."""

    def __init__(self, sink, link, stats, up: bool, done):
        self.sink, self.link, self.stats, self.up, self.done = sink, link, stats, up, done
        self.source = None
        self.partner: _Half | None = None
        self.ended = False  # its source sent EOF
        self.closed = False

    def data_received(self, data):
        self.link.last_active = time.monotonic()
        if self.up:
            self.stats.bytes_up += len(data)
        else:
            self.stats.bytes_down += len(data)
        self.sink.write(data)

    def eof_received(self):
        self.ended = True
        if self.partner.ended:  # both ways are done: nothing keeps the pair open
            self.sink.close()
            self.partner.sink.close()
            return False
        if self.sink.can_write_eof() and not self.sink.is_closing():
            self.sink.write_eof()  # half-close: the other way may still carry data
        return True

    # This protocol's source is the partner's sink: when writing to our source backs
    # up, the partner's socket must stop being read.
    def pause_writing(self):
        self.partner.source.pause_reading()

    def resume_writing(self):
        if not self.partner.source.is_closing():
            self.partner.source.resume_reading()

    def connection_lost(self, exc):
        self.closed = True
        if not self.sink.is_closing():
            self.sink.close()  # after sending what is buffered
        if self.partner.closed and not self.done.done():
            self.done.set_result(None)


class _UdpClient(asyncio.DatagramProtocol):
    """The client's side of a UDP association: datagrams from 127.0.0.1 go into the
    tunnel; what the tunnel receives goes back to the client's address."""

    def __init__(self, tunnel, link: _Link):
        self.tunnel, self.link = tunnel, link
        self.transport = None
        self.client_address = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, datagram, address):
        if address[0] != "127.0.0.1":
            return
        parsed = udp.unpack(datagram)
        if parsed is None:
            return
        self.client_address = address
        self.link.last_active = time.monotonic()
        asyncio.ensure_future(self.tunnel.send(*parsed))

    def answer(self, host, port, data):
        if self.client_address is not None and not self.transport.is_closing():
            self.link.last_active = time.monotonic()
            self.transport.sendto(udp.pack(host, port, data), self.client_address)


async def _read_address(reader, address_type: int) -> str | None:
    if address_type == 0x01:
        return str(ipaddress.IPv4Address(await reader.readexactly(4)))
    if address_type == 0x03:
        (length,) = await reader.readexactly(1)
        return (await reader.readexactly(length)).decode("idna")
    if address_type == 0x04:
        return str(ipaddress.IPv6Address(await reader.readexactly(16)))
    return None


async def _reply(writer, code: int):
    writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
    await writer.drain()


class RelayHub:
    """The one event loop thread that runs every relay of this process."""

    def __init__(self):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._relays: set[Relay] = set()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                # Plain asyncio: uvloop hangs in python-socks' TLS-to-proxy handshake.
                self._loop = asyncio.new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(ready,),
                                                name="browserfarm-relay", daemon=True)
                self._thread.start()
                ready.wait()
            return self._loop

    def _run(self, ready: threading.Event):
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    def call(self, coroutine, timeout: float = 30.0):
        """Run ``coroutine`` on the relay loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        return future.result(timeout)

    def start(self, proxy: ProxyType, limits: RelayLimits | None = None, port: int = 0,
              guard: Guard | None = None, path: str | None = None) -> Relay:
        """A running relay for ``proxy`` on 127.0.0.1 (a free port unless given), its
        connections checked by ``guard`` if given; private with a Unix socket ``path``
        (in a folder of this user's)."""
        relay = Relay(proxy, limits or RelayLimits(), guard)
        self.call(relay.start(port, path))
        self._relays.add(relay)
        return relay

    def ports(self) -> set[int]:
        """The ports this process's relays listen on."""
        return {relay.port for relay in list(self._relays)}

    def stop(self, relay: Relay) -> None:
        self._relays.discard(relay)
        self.call(relay.stop())

    def close(self) -> None:
        """Stop every relay and the loop thread."""
        if self._loop is None:
            return
        for relay in list(self._relays):
            self.stop(relay)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None
