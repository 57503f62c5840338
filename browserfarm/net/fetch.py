"""One bounded HTTP GET for answers the farm reads whole (extraction APIs, refresh URLs,
IP-check services): one deadline for the whole call and a cap on the body.

httpx's timeouts are per step (connect, each read, each write): a server that sends a
byte now and then would never trip them. So the call runs on httpx's async client under
one ``asyncio.timeout``: name lookup, connecting, the SOCKS handshake, redirects,
headers and body all end by the same deadline, through httpx's public API. Never an env
proxy: ``proxy`` is the only way out besides a direct connection. A fetch made for a
proxy's sake turns its failure into a ``ProxyFailure`` with ``proxy_failure_from``.

A direct fetch goes only where the network policy allows: each URL's name is resolved
here, every address checked, and the request sent to a checked address (the name kept
in Host and for TLS), so a second DNS answer cannot send it elsewhere; redirects are
followed here, each hop checked the same way. Through ``proxy``, where the request goes
is the proxy's business."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from browserfarm.net.policy import Blocked, NetworkPolicy, resolve
from browserfarm.net.proxy import ProxyFailure

DEFAULT_PORTS = {"http": 80, "https": 443}
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


class FetchBlocked(FetchError):
    """The URL, or one a redirect led to, names an address the network policy refuses."""


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
          max_redirects: int = 20, policy: NetworkPolicy | None = None) -> Answer:
    """GET ``url`` (through ``proxy``, e.g. ``socks5://127.0.0.1:1080``): the whole
    answer within ``timeout`` seconds, whatever its status; a ``FetchError`` otherwise.
    Without a proxy, only addresses ``policy`` allows are reached (by default the
    always-blocked ranges are refused). Called from synchronous code (a request, the
    agent's threads), never from inside a running event loop."""
    # Compressed bodies are refused so that ``max_bytes`` bounds what is held in memory.
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    policy = None if proxy else (policy or NetworkPolicy())
    return asyncio.run(_fetch(url, timeout, max_bytes, proxy, headers, follow_redirects,
                              max_redirects, policy))


async def _fetch(url, timeout, max_bytes, proxy, headers, follow_redirects,
                 max_redirects, policy) -> Answer:
    answered = False
    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(proxy=proxy, timeout=timeout, trust_env=False,
                                         follow_redirects=False) as client:
                url = httpx.URL(url)
                for _ in range(max_redirects + 1):
                    response = await _send(client, url, headers, policy)
                    if not (follow_redirects and response.has_redirect_location):
                        break
                    await response.aclose()
                    url = url.join(response.headers["location"])
                else:
                    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.")
                try:
                    answered = True
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise TooLarge(f"the answer is larger than {max_bytes} bytes")
                    return Answer(response.status_code, response.headers, bytes(body),
                                  response.encoding or "utf-8")
                finally:
                    await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise FetchTimeout(answered) from None
    except Blocked as exc:
        raise FetchBlocked(str(exc)) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(exc.__class__.__name__, str(exc)) from None


async def _send(client, url: httpx.URL, headers: dict, policy) -> httpx.Response:
    """One GET of ``url``, streamed: to an address of its host that ``policy`` allows
    (each in turn until one connects), or as given when there is no policy (through a
    proxy) or it is not HTTP (httpx refuses it)."""
    if policy is None or url.scheme not in ("http", "https"):
        return await client.send(client.build_request("GET", url, headers=headers),
                                 stream=True)
    try:
        addresses = await resolve(policy, url.host, url.port or DEFAULT_PORTS[url.scheme])
    except (OSError, UnicodeError) as exc:  # the name does not resolve
        raise httpx.ConnectError(str(exc)) from None
    # The name stays the Host and, over TLS, what the certificate must match.
    headers = {**headers, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    error = None
    for address in addresses:
        request = client.build_request("GET", url.copy_with(host=address),
                                       headers=headers, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            error = exc
    raise error


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
    if isinstance(exc, FetchBlocked):
        return ProxyFailure("blocked", f"{_safe(url)}: {exc}" if url else str(exc))
    if isinstance(exc, FetchFailed) and url:
        return ProxyFailure(kind, f"{_safe(url)}: {exc.kind}")
    return ProxyFailure(kind, str(exc))


def _safe(url: str) -> str:
    """A URL fit for messages: extraction URLs carry API keys in their query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
