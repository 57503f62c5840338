"""One bounded HTTP GET for answers the farm reads whole (extraction APIs, refresh URLs,
IP-check services): one deadline for the whole call and a cap on the body.

httpx's timeouts are per step (connect, each read, each write): a server that sends a
byte now and then would never trip them. Here every socket operation gets at most the
time left until the call's deadline (see ``_Clock``), so connecting, the SOCKS
handshake, redirects, headers and body all end by the same deadline. Never an env
proxy: ``proxy`` is the only way out besides a direct connection."""
from __future__ import annotations

import time
from dataclasses import dataclass

import httpcore
import httpx


class FetchError(Exception):
    """A fetch that gave no whole answer."""


class FetchTimeout(FetchError):
    """The deadline passed; ``answered``: the status and headers had come."""

    def __init__(self, answered: bool):
        super().__init__("no full answer in time" if answered else "no answer in time")
        self.answered = answered


class TooLarge(FetchError):
    """The body is larger than ``max_bytes``; reading stopped there."""


class FetchFailed(FetchError):
    """No answer: refused, reset, not HTTP, too many redirects... ``kind`` is httpx's
    name for it (``ConnectError``, ``ProxyError``, ``TooManyRedirects``...)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message or kind)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    encoding: str  # the Content-Type's charset, else utf-8

    def text(self) -> str:
        return self.body.decode(self.encoding, errors="replace")


def fetch(url: str, *, timeout: float, max_bytes: int, proxy: str | None = None,
          headers: dict | None = None, follow_redirects: bool = True,
          max_redirects: int = 20) -> Answer:
    """GET ``url`` (through ``proxy``, e.g. ``socks5://127.0.0.1:1080``): the whole
    answer within ``timeout`` seconds, whatever its status; a ``FetchError`` otherwise."""
    deadline = time.monotonic() + timeout
    answered = False
    # Compressed bodies are refused so that ``max_bytes`` bounds what is held in memory.
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    try:
        with httpx.Client(transport=_Transport(deadline, proxy), timeout=timeout,
                          follow_redirects=follow_redirects, max_redirects=max_redirects,
                          trust_env=False) as client:
            with client.stream("GET", url, headers=headers) as response:
                answered = True
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise TooLarge(f"the answer is larger than {max_bytes} bytes")
                return Answer(response.status_code, response.headers, bytes(body),
                              response.encoding or "utf-8")
    except httpx.TimeoutException:
        raise FetchTimeout(answered) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(exc.__class__.__name__, str(exc)) from None


class _Transport(httpx.HTTPTransport):
    """httpx's own transport, its sockets on the call's clock."""

    def __init__(self, deadline: float, proxy: str | None):
        super().__init__(proxy=proxy, trust_env=False)
        # httpx offers no parameter for httpcore's network backend; its pool (a
        # ConnectionPool or SOCKSProxy) takes it for every connection it opens.
        self._pool._network_backend = _Clock(deadline)


class _Clock(httpcore.NetworkBackend):
    """httpcore's sockets, each operation given at most the time left until the
    deadline."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sockets = httpcore.SyncBackend()

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("the deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host, port, timeout=None, local_address=None,
                    socket_options=None) -> httpcore.NetworkStream:
        timeout = self.left(timeout, httpcore.ConnectTimeout)
        stream = self.sockets.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream, self)

    def sleep(self, seconds: float) -> None:
        self.sockets.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, clock: _Clock):
        self.stream = stream
        self.clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.clock.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.clock.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None,
                  timeout=None) -> httpcore.NetworkStream:
        timeout = self.clock.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.stream.start_tls(ssl_context, server_hostname, timeout),
                       self.clock)

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)
