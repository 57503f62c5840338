"""One bounded HTTP GET for answers the farm reads whole (extraction APIs, refresh URLs,
IP-check services): one deadline for the whole call and a cap on the body.

httpx's timeouts are per step (connect, each read, each write): a server that sends a
byte now and then would never trip them. So the call runs on httpx's async client under
one ``asyncio.timeout``: name lookup, connecting, the SOCKS handshake, redirects,
headers and body all end by the same deadline, through httpx's public API. Never an env
proxy: ``proxy`` is the only way out besides a direct connection. A fetch made for a
proxy's sake turns its failure into a ``ProxyFailure`` with ``proxy_failure_from``."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from browserfarm.net.proxy import ProxyFailure

# The caps on the answers the farm reads whole, one per kind of answer.
MAX_EXTRACTION_ANSWER = 1024 * 1024  # extraction APIs and refresh URLs: lists of proxies
MAX_IP_CHECK_ANSWER = 256 * 1024  # IP-check services: one JSON object


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
    answer within ``timeout`` seconds, whatever its status; a ``FetchError`` otherwise.
    Called from synchronous code (a request, the agent's threads), never from inside
    a running event loop."""
    # Compressed bodies are refused so that ``max_bytes`` bounds what is held in memory.
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    return asyncio.run(_fetch(url, timeout, max_bytes, proxy, headers, follow_redirects,
                              max_redirects))


async def _fetch(url, timeout, max_bytes, proxy, headers, follow_redirects,
                 max_redirects) -> Answer:
    answered = False
    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(proxy=proxy, timeout=timeout, trust_env=False,
                                         follow_redirects=follow_redirects,
                                         max_redirects=max_redirects) as client:
                async with client.stream("GET", url, headers=headers) as response:
                    answered = True
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise TooLarge(f"the answer is larger than {max_bytes} bytes")
                    return Answer(response.status_code, response.headers, bytes(body),
                                  response.encoding or "utf-8")
    except (TimeoutError, httpx.TimeoutException):
        raise FetchTimeout(answered) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(exc.__class__.__name__, str(exc)) from None


def proxy_failure_from(exc: FetchError, kind: str, timeout: float,
                       url: str = "") -> ProxyFailure:
    """The ``ProxyFailure`` for a fetch that gave no whole answer: kind ``timeout`` when
    the deadline passed, ``kind`` otherwise. With ``url`` (a URL fetched directly), the
    messages name it, without its query; without (an IP-check service asked through a
    relay), they stay short."""
    if isinstance(exc, FetchTimeout):
        source = f" from {_safe(url)}" if url else ""
        return ProxyFailure("timeout", f"no {'full ' if exc.answered else ''}answer{source} "
                                       f"within {timeout:g}s")
    if isinstance(exc, TooLarge):
        return ProxyFailure(kind, str(exc) if url else "the answer is too large")
    if isinstance(exc, FetchFailed) and url:
        return ProxyFailure(kind, f"{_safe(url)}: {exc.kind}")
    return ProxyFailure(kind, str(exc))


def _safe(url: str) -> str:
    """A URL fit for messages: extraction URLs carry API keys in their query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
