"""Proxies written as text: what extraction APIs answer and what pool imports hold.

Understood, one proxy per line or as JSON:
  host:port                      host:port:user:pass
  user:pass@host:port            scheme://[user:pass@]host:port
  user:pass:host:port            (only when the format says so: "user:pass:host:port")
  JSON: an object or a list of objects with the usual keys (ip/host/server/addr,
  port, user/username/login, pass/password/pwd, type/protocol/scheme), or strings in
  the formats above, possibly under data/proxies/list/result/proxy.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from browserfarm.net.fetch import MAX_EXTRACTION_ANSWER, FetchError, fetch, proxy_failure_from
from browserfarm.net.policy import NetworkPolicy
from browserfarm.net.proxy import ProxyFailure, ProxySettings

FORMATS = ("auto", "host:port:user:pass", "user:pass:host:port", "user:pass@host:port",
           "json")
SCHEMES = {"socks5": "socks5", "socks5h": "socks5", "socks": "socks5", "http": "http",
           "https": "https", "ssh": "ssh"}
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_KEYS = {"host": ("host", "ip", "server", "addr", "address", "hostname"),
         "port": ("port",),
         "username": ("user", "username", "login", "account"),
         "password": ("pass", "password", "pwd"),
         "type": ("type", "protocol", "scheme")}


class BadLine(ValueError):
    """A line that is not a proxy in any understood format."""


@dataclass(frozen=True)
class ParsedLine:
    number: int  # 1-based
    text: str
    proxy: ProxySettings | None
    error: str = ""


def parse_line(line: str, default_type: str, fmt: str = "auto") -> ProxySettings:
    """One proxy from one line of text; raises ``BadLine`` saying why not."""
    text = line.strip()
    if not text:
        raise BadLine("empty line")
    if "://" in text:
        return _from_url(text)
    if "@" in text:
        credentials, _, address = text.rpartition("@")
        user, _, password = credentials.partition(":")
        host, port = _address(address)
        return _settings(default_type, host, port, user, password)
    parts = text.split(":")
    if len(parts) == 2:
        return _settings(default_type, *_address(text))
    if len(parts) >= 4:
        if fmt == "user:pass:host:port":
            user, password, host, port = parts[0], ":".join(parts[1:-2]), parts[-2], parts[-1]
        else:  # host:port:user:pass; a password may contain ':'
            host, port, user, password = parts[0], parts[1], parts[2], ":".join(parts[3:])
        return _settings(default_type, _host(host), _port(port), user, password)
    raise BadLine("not host:port, host:port:user:pass, user:pass@host:port or a URL")


def parse_text(text: str, default_type: str, fmt: str = "auto") -> list[ParsedLine]:
    """Every line of ``text`` (or the entries of a JSON answer), parsed or not."""
    stripped = text.strip()
    if fmt == "json" or (fmt == "auto" and stripped[:1] in ("{", "[")):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise BadLine(f"not valid JSON: {exc}") from None
        return [_parsed(i, entry, default_type, fmt)
                for i, entry in enumerate(_json_entries(document), start=1)]
    return [_parsed(i, line, default_type, fmt)
            for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def extract(url: str, default_type: str, fmt: str = "auto", timeout: float = 10.0,
            policy: NetworkPolicy | None = None) -> ProxySettings:
    """Ask an extraction API for a proxy: the first one its answer holds."""
    body = fetch_text(url, timeout, policy)
    if not body.strip():
        raise ProxyFailure("extraction_failed", "the extraction URL answered nothing")
    if re.match(r"\s*<(!doctype|html|\?xml)", body, re.I):
        raise ProxyFailure("extraction_failed",
                           "the extraction URL answered HTML, not a proxy")
    try:
        entries = parse_text(body, default_type, fmt)
    except BadLine as exc:
        raise ProxyFailure("extraction_failed", str(exc)) from None
    for entry in entries:
        if entry.proxy is not None:
            return entry.proxy
    reason = entries[0].error if entries else "no proxy"
    # The answer itself is not echoed: it may hold the provider's credentials.
    raise ProxyFailure("extraction_failed", f"no proxy in the answer ({reason})")


def fetch_text(url: str, timeout: float = 10.0, policy: NetworkPolicy | None = None) -> str:
    """GET ``url`` (extraction or refresh), where ``policy`` allows: its text, or
    ``ProxyFailure``."""
    try:
        answer = fetch(url, timeout=timeout, max_bytes=MAX_EXTRACTION_ANSWER, policy=policy)
    except FetchError as exc:
        raise proxy_failure_from(exc, "extraction_failed", timeout, url) from None
    if answer.status >= 400:
        raise ProxyFailure("extraction_failed", f"the URL answered HTTP {answer.status}")
    return answer.text()


def _parsed(number, entry, default_type, fmt) -> ParsedLine:
    text = entry if isinstance(entry, str) else json.dumps(entry)
    try:
        proxy = (_from_mapping(entry, default_type) if isinstance(entry, dict)
                 else parse_line(str(entry), default_type, fmt))
        return ParsedLine(number, text, proxy)
    except BadLine as exc:
        return ParsedLine(number, text, None, str(exc))


def _json_entries(document) -> list:
    if isinstance(document, dict):
        for key in ("data", "proxies", "list", "result", "proxy", "obj"):
            if key in document and isinstance(document[key], (list, dict, str)):
                return _json_entries(document[key])
        return [document]
    if isinstance(document, list):
        return document
    if isinstance(document, str):
        return document.splitlines()
    return [document]


def _from_mapping(entry: dict, default_type: str) -> ProxySettings:
    def first(name):
        for key in _KEYS[name]:
            if entry.get(key) not in (None, ""):
                return str(entry[key])
        return ""

    host = first("host")
    if not host:
        raise BadLine("no ip/host key")
    if ":" in host and not first("port"):
        host, port = _address(host)
    else:
        port = _port(first("port"))
    kind = SCHEMES.get(first("type").lower(), default_type)
    return _settings(kind, _host(host), port, first("username"), first("password"))


def _from_url(text: str) -> ProxySettings:
    parts = urlsplit(text)
    kind = SCHEMES.get(parts.scheme.lower())
    if kind is None:
        raise BadLine(f"unknown scheme {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise BadLine("port must be a number from 1 to 65535") from None
    if not parts.hostname or port is None:
        raise BadLine("a proxy URL needs a host and a port")
    return _settings(kind, _host(parts.hostname), _port(str(port)),
                     unquote(parts.username or ""), unquote(parts.password or ""))


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise BadLine("no port")
    return _host(host.strip("[]")), _port(port)


def _host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        if _HOST.match(host):
            return host
    raise BadLine(f"{host!r} is not a host name or IP address")


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or not 1 <= int(text) <= 65535:
        raise BadLine(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _settings(kind, host, port, user="", password="") -> ProxySettings:
    return ProxySettings(type=kind, host=host, port=port, username=user, password=password)
