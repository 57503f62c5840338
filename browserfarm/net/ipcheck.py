"""What the core knows of IP-check services: the answer, and the base class of the
plugins that ask one service (ip-api, ipinfo, ipapi.co, ...)."""
from __future__ import annotations

from dataclasses import dataclass


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


def as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_text(value) -> str:
    """Services' fields as text, whatever type an answer gave them."""
    return "" if value is None else str(value)
