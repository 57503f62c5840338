"""Session keeper: a runner holds one automation session per browser whose backend
serves a single session at a time (Marionette), and serves the API's commands on a
loopback port. Without it every screenshot would open and close a Marionette session
(about 10 ms each).

The protocol is length-prefixed frames on a kept-alive TCP connection, not HTTP:
parsing HTTP on both ends was half of the hop's cost (docs/benchmarks.md).

- ask: 4-byte length, then JSON ``{"key", "worker", "command", "args"}``;
- answer: ``MAGIC``, a status byte, a 4-byte length, then the bytes (a PNG, a
  message, or nothing).
"""
from __future__ import annotations

import json
import logging
import secrets
import socket
import socketserver
import struct
import threading
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

COMMANDS = ("screenshot", "navigate")  # what a held session answers (bytes or None)
MAGIC = b"BFK1"
ANSWER = struct.Struct(">4sBI")  # magic, status, length
LENGTH = struct.Struct(">I")
MAX_ASK = 1 << 20  # an ask is a URL at most
MAX_ANSWER = 256 << 20  # a full-page PNG of a large window

OK, NOT_HELD, WRONG_KEY, UNKNOWN_COMMAND, FAILED = range(5)
TIMEOUT_MARGIN = 10.0  # s: commands may wait their turn on a session


class SessionKeeper:
    """In the runner: ``add(worker_id, held)`` where ``held`` has ``screenshot()``,
    ``navigate(url, timeout)`` and ``close()``. Reached at ``url`` with ``key``."""

    def __init__(self):
        self.key = secrets.token_urlsafe(24)
        self._held: dict[int, tuple[object, threading.Lock]] = {}
        self._connections: set[socket.socket] = set()  # the API processes' kept-alive ones
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.url = f"tcp://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.2}, name="keeper")
        self._thread.start()

    def add(self, worker_id: int, held) -> dict:
        """Hold it; what the worker's handle gains, for the API to reach it."""
        self._held[worker_id] = (held, threading.Lock())
        return {"keeper": self.url, "keeperKey": self.key}

    def remove(self, worker_id: int) -> None:
        entry = self._held.pop(worker_id, None)
        if entry is not None:
            held, lock = entry
            with lock:
                held.close()

    def run(self, worker_id: int, name: str, *args):
        held, lock = self._held[worker_id]
        with lock:  # one command at a time on a session
            return getattr(held, name)(*args)

    def answer(self, ask: dict) -> tuple[int, bytes]:
        """The status and bytes for one ask."""
        if not secrets.compare_digest(str(ask.get("key", "")).encode(), self.key.encode()):
            return WRONG_KEY, b"wrong key"
        if ask.get("command") not in COMMANDS:
            return UNKNOWN_COMMAND, b"unknown command"
        worker_id, args = ask.get("worker"), ask.get("args", [])
        if not isinstance(worker_id, int) or worker_id not in self._held \
                or not isinstance(args, list):
            return NOT_HELD, b"not held here"
        try:
            answer = self.run(worker_id, ask["command"], *args)
        except KeyError:  # removed meanwhile
            return NOT_HELD, b"not held here"
        except Exception as exc:  # noqa: BLE001 - the browser's error, for the API
            return FAILED, str(exc).encode()[:2000]
        return OK, answer or b""

    def close(self) -> None:
        for worker_id in list(self._held):
            self.remove(worker_id)
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):  # as the runner's exit would: no more answers
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # An API process that gave up (its timeout) or went away: nothing to report.
        log.debug("keeper connection ended", exc_info=True)


def _handler_for(keeper: SessionKeeper):
    class Handler(socketserver.StreamRequestHandler):
        def setup(self):
            super().setup()
            # The answer's header and body go out at once, never waiting on an ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keeper._connections.add(self.connection)

        def finish(self):
            keeper._connections.discard(self.connection)
            super().finish()

        def handle(self):  # asks, one after the other, until the API process hangs up
            while header := self.rfile.read(LENGTH.size):
                if len(header) < LENGTH.size or LENGTH.unpack(header)[0] > MAX_ASK:
                    return  # not one of ours: hang up
                try:
                    ask = json.loads(self.rfile.read(LENGTH.unpack(header)[0]))
                except ValueError:
                    return
                status, body = keeper.answer(ask if isinstance(ask, dict) else {})
                self.connection.sendall(ANSWER.pack(MAGIC, status, len(body)) + body)

    return Handler


class KeeperGone(Exception):
    """The keeper doesn't answer (its runner is gone): use the backend directly."""


def ask(handle: dict, worker_id: int, command: str, args: list, timeout: float) -> bytes:
    """A command through the keeper named in a worker's handle. ``KeeperGone`` when no
    keeper of that handle answers there (its runner is gone): the caller attaches
    directly. A keeper that is only slow (commands wait their turn) is not gone."""
    address = handle["keeper"]
    body = json.dumps({"key": handle.get("keeperKey", ""), "worker": worker_id,
                       "command": command, "args": args}).encode()
    wait = timeout + TIMEOUT_MARGIN
    for attempt in (1, 2):
        try:
            conn = _connection(address, wait)
            conn.sendall(LENGTH.pack(len(body)) + body)
            status, content = _read_answer(conn)
            break
        except TimeoutError:
            _drop(address)
            raise RuntimeError(f"no answer from its runner in {wait:.0f} s") from None
        except (ConnectionResetError, BrokenPipeError, EOFError) as exc:
            _drop(address)  # a kept-alive connection closed under us: once more, anew
            if attempt == 2:
                raise KeeperGone(str(exc) or "the keeper hung up") from None
        except (OSError, ValueError) as exc:  # refused, or no keeper there
            _drop(address)
            raise KeeperGone(str(exc)) from None
        except BaseException:  # the connection's state is unknown: never reuse it
            _drop(address)
            raise
    if status in (NOT_HELD, WRONG_KEY, UNKNOWN_COMMAND):  # another keeper, or not held
        _drop(address)
        raise KeeperGone(content.decode(errors="replace"))
    if status != OK:
        raise RuntimeError(content.decode(errors="replace") or "the browser failed")
    return content


def _read_answer(conn: socket.socket) -> tuple[int, bytes]:
    magic, status, length = ANSWER.unpack(_read(conn, ANSWER.size))
    if magic != MAGIC or length > MAX_ANSWER:
        raise ValueError("not a session keeper's answer")
    return status, _read(conn, length)


def _read(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the keeper hung up")
        data += chunk
    return bytes(data)


_local = threading.local()
KEPT_CONNECTIONS = 16  # per thread; runners that came and went leave theirs behind


def _connection(address: str, timeout: float) -> socket.socket:
    """One kept-alive connection per keeper and thread of an API process: a screenshot
    costs the browser's time plus well under a millisecond here."""
    connections = _local.__dict__.setdefault("connections", {})
    conn = connections.get(address)
    if conn is None:
        parts = urlsplit(address)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise ValueError(f"not a session keeper's address: {address}")
        if len(connections) >= KEPT_CONNECTIONS:
            _drop(next(iter(connections)))  # the oldest
        conn = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections[address] = conn
    conn.settimeout(timeout)
    return conn


def _drop(address: str) -> None:
    conn = _local.__dict__.get("connections", {}).pop(address, None)
    if conn is not None:
        conn.close()
