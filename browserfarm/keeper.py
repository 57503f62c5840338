"""Session keeper: a runner holds one automation session per browser whose backend
serves a single session at a time (Marionette), and serves the API's commands over
loopback HTTP, as chromedriver does for Chromium. Without it every screenshot would
open and close a Marionette session (about 10 ms each)."""
from __future__ import annotations

import http.client
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class SessionKeeper:
    """In the runner: ``add(worker_id, held)`` where ``held`` has ``screenshot()``,
    ``navigate(url, timeout)`` and ``close()``. Reached at ``url`` with ``key``."""

    def __init__(self):
        self.key = secrets.token_urlsafe(24)
        self._held: dict[int, tuple[object, threading.Lock]] = {}
        self._connections: set[socket.socket] = set()  # the API processes' kept-alive ones
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
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


COMMANDS = ("screenshot", "navigate")  # what a held session answers (bytes or None)


def _handler_for(keeper: SessionKeeper):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: an API process reuses its connection
        # Without it a reused connection waits ~40 ms on every answer: the body's write
        # waits for the ACK of the headers' write, which the client delays (Nagle).
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            keeper._connections.add(self.connection)

        def finish(self):
            keeper._connections.discard(self.connection)
            super().finish()

        def do_POST(self):  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not secrets.compare_digest(self.headers.get("X-Keeper-Key", ""), keeper.key):
                return self._answer(403, b"wrong key")
            worker_id, _, command = self.path.strip("/").partition("/")
            if command not in COMMANDS:
                return self._answer(404, b"unknown command")
            try:
                answer = keeper.run(int(worker_id), command, *body.get("args", []))
            except KeyError:
                return self._answer(404, b"not held here")
            except Exception as exc:  # noqa: BLE001 - the browser's error, for the API
                return self._answer(502, str(exc).encode()[:2000])
            return self._answer(200, answer or b"")

        def _answer(self, status: int, body: bytes):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


class KeeperGone(Exception):
    """The keeper doesn't answer (its runner is gone): use the backend directly."""


def ask(handle: dict, worker_id: int, command: str, args: list, timeout: float) -> bytes:
    """A command through the keeper named in a worker's handle. ``KeeperGone`` when no
    keeper of that handle answers there (its runner is gone): the caller attaches
    directly. A keeper that is only slow (commands wait their turn) is not gone."""
    url = handle["keeper"]
    payload = json.dumps({"args": args}).encode()
    headers = {"X-Keeper-Key": handle["keeperKey"], "Content-Type": "application/json"}
    for attempt in (1, 2):
        try:
            conn = _connection(url, timeout + 10)
            conn.request("POST", f"/{worker_id}/{command}", body=payload, headers=headers)
            reply = conn.getresponse()
            status, content = reply.status, reply.read()
            break
        except TimeoutError:
            _drop(url)
            raise RuntimeError(f"no answer from its runner in {timeout + 10:.0f} s") from None
        except ConnectionResetError as exc:  # a kept-alive connection closed under us
            _drop(url)
            if attempt == 2:
                raise KeeperGone(str(exc)) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, or no keeper there
            _drop(url)
            raise KeeperGone(str(exc)) from None
        except BaseException:  # the connection's state is unknown: never reuse it
            _drop(url)
            raise
    if status in (403, 404):  # another keeper on that port, or the worker isn't held
        _drop(url)
        raise KeeperGone(content.decode(errors="replace"))
    if status != 200:
        raise RuntimeError(content.decode(errors="replace") or f"HTTP {status}")
    return content


_local = threading.local()
KEPT_CONNECTIONS = 16  # per thread; runners that came and went leave theirs behind


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    """One kept-alive connection per keeper and thread of an API process: a screenshot
    costs the browser's time plus well under a millisecond here."""
    connections = _local.__dict__.setdefault("connections", {})
    conn = connections.get(url)
    if conn is None:
        if len(connections) >= KEPT_CONNECTIONS:
            _drop(next(iter(connections)))  # the oldest
        parts = urlsplit(url)
        conn = connections[url] = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.timeout = timeout
    if conn.sock is None:
        conn.connect()  # http.client sets TCP_NODELAY
    else:
        conn.sock.settimeout(timeout)
    return conn


def _drop(url: str) -> None:
    conn = _local.__dict__.get("connections", {}).pop(url, None)
    if conn is not None:
        conn.close()
