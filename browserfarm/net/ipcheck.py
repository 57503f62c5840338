"""What the core knows of IP-check services: the answer, the base class of the
plugins that ask one service (ip-api, ipinfo, ipapi.co, ...), and asking one through
a relay (``ask_through``)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from browserfarm.net.fetch import (MAX_IP_CHECK_ANSWER, FetchError, FetchFailed, fetch,
                                   proxy_failure_from)
from browserfarm.net.proxy import ProxyFailure


@dataclass(frozen=True)
class IpInfo:
    ip: str
    country: str = ""
    country_code: str = ""
    region: str = ""
    city: str = ""
    timezone: str = ""
    latitude: float | None = None
    longitude: float | None = None
    isp: str = ""


class BadAnswer(ValueError):
    """The service answered, but not with what its format promises."""


class IpCheckService:
    """``name`` is the window's ``ipCheckService`` value; ``base_url`` is overridable
    per deployment (tests point it at a local server speaking the same format)."""

    name = ""
    base_url = ""

    @classmethod
    def parse(cls, payload: dict) -> IpInfo:
        raise NotImplementedError


def ask_through(relay, service, url: str, timeout: float) -> IpInfo:
    """What ``service`` (an IP-check class) at ``url`` says of the exit IP, asked
    through ``relay``; a ``ProxyFailure`` with its kind otherwise."""
    try:
        answer = fetch(url, timeout=timeout, max_bytes=MAX_IP_CHECK_ANSWER,
                       proxy=relay.url, follow_redirects=False,
                       headers={"Accept": "application/json"})
    except FetchError as exc:
        failure = proxy_failure_from(exc, "bad_response", timeout)
        if isinstance(exc, FetchFailed):  # the relay failed: it knows what the proxy said
            failure = relay.stats.last_failure or failure
        raise failure from None
    status, body = answer.status, answer.body
    if status >= 400:
        raise ProxyFailure("bad_response", f"{service.name} answered HTTP {status}")
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise BadAnswer("the answer is not a JSON object")
        return service.parse(payload)
    except (ValueError, TypeError, KeyError, AttributeError, BadAnswer) as exc:
        # The proxy being checked controls this answer: anything goes.
        raise ProxyFailure("bad_response", f"{service.name}: {exc}") from None


def as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_text(value) -> str:
    """Services' fields as text, whatever type an answer gave them."""
    return "" if value is None else str(value)
