"""A small W3C WebDriver client over HTTP, for chromedriver and Selenium Grid alike.

Stateless on purpose: every call takes the executor URL and the session id, which are
what a worker's handle stores, so any process can drive a browser another one started.
Every call has a timeout."""
from __future__ import annotations

import base64
import json

import requests

from browserfarm.browsers.backends import BrowserBackend

JSON = {"Content-Type": "application/json; charset=utf-8"}  # Grid wants the charset


class WebDriverError(Exception):
    """A WebDriver error answer: ``error`` is the W3C code ("invalid session id",
    "timeout", ...), or "unreachable" (no connection) or "no answer" (our own timeout)."""

    def __init__(self, error: str, message: str, status: int | None = None):
        super().__init__(f"{error}: {message}")
        self.error, self.message, self.status = error, message, status


def command(method: str, url: str, payload: dict | None = None, *, timeout: float):
    """One command; the answer's ``value``."""
    body = None if payload is None else json.dumps(payload).encode()
    with requests.Session() as http:
        http.trust_env = False  # our own drivers and Grid: never through an env proxy
        try:
            response = http.request(method, url, data=body, headers=JSON, timeout=timeout)
        except requests.Timeout:
            raise WebDriverError("no answer", f"{method} {url}: none within {timeout:g} s") \
                from None
        except requests.RequestException as exc:
            raise WebDriverError("unreachable", f"{method} {url}: {exc}") from None
    try:
        value = response.json()["value"]
    except (ValueError, KeyError, TypeError):
        raise WebDriverError("unknown error", f"{method} {url}: HTTP {response.status_code} "
                             f"{response.text[:200]!r}", response.status_code) from None
    if response.status_code >= 400:  # W3C: every error has a 4xx or 5xx status
        value = value if isinstance(value, dict) else {}
        raise WebDriverError(str(value.get("error", "unknown error")),
                             str(value.get("message", ""))[:2000], response.status_code)
    return value


def status(executor: str, timeout: float = 5.0) -> dict:
    """``GET /status``: ``ready``, and for a Grid its nodes and their slots."""
    return command("GET", f"{executor}/status", timeout=timeout)


def new_session(executor: str, capabilities: dict, timeout: float) -> tuple[str, dict]:
    """A new session: its id, and the capabilities the driver answered (chromedriver's
    ``goog:processID`` is the browser's pid)."""
    value = command("POST", f"{executor}/session",
                    {"capabilities": {"alwaysMatch": capabilities}}, timeout=timeout)
    return value["sessionId"], value.get("capabilities") or {}


def _url(executor: str, session: str, path: str = "") -> str:
    return f"{executor}/session/{session}{path}"


def navigate(executor: str, session: str, url: str, timeout: float,
             set_page_load_timeout: bool = True) -> None:
    """Loads url; the driver itself gives up after ``timeout`` (its page load timeout,
    set here unless the session's capabilities already did), and answers a little
    before our own HTTP timeout would cut it off."""
    if set_page_load_timeout:
        command("POST", _url(executor, session, "/timeouts"),
                {"pageLoad": int(timeout * 1000)}, timeout=min(timeout, 10))
    try:
        command("POST", _url(executor, session, "/url"), {"url": url}, timeout=timeout + 10)
    except WebDriverError as exc:
        # A page that fails to load (refused, unknown name) is what the browser shows,
        # as it would to a user: not a failure of the browser.
        if "net::ERR_" not in exc.message:
            raise


def current_url(executor: str, session: str, timeout: float = 10.0) -> str:
    return command("GET", _url(executor, session, "/url"), timeout=timeout)


def screenshot(executor: str, session: str, timeout: float = 30.0) -> bytes:
    """The viewport, as PNG bytes."""
    return base64.b64decode(command("GET", _url(executor, session, "/screenshot"),
                                    timeout=timeout))


def execute(executor: str, session: str, script: str, args: list | None = None,
            timeout: float = 10.0):
    """A synchronous script's return value."""
    return command("POST", _url(executor, session, "/execute/sync"),
                   {"script": script, "args": args or []}, timeout=timeout)


def set_window_rect(executor: str, session: str, width: int, height: int,
                    timeout: float = 10.0) -> dict:
    return command("POST", _url(executor, session, "/window/rect"),
                   {"width": width, "height": height}, timeout=timeout)


def alive(executor: str, session: str, timeout: float = 5.0) -> bool:
    """Whether the session still exists. Get Window Handle, because it never touches
    an open alert (other commands would dismiss it)."""
    try:
        command("GET", _url(executor, session, "/window"), timeout=timeout)
    except WebDriverError as exc:
        return exc.error in ("no such window", "unexpected alert open")
    return True


def delete_session(executor: str, session: str, timeout: float = 20.0) -> bool:
    """Ends the session (the driver quits the browser); False when it was already
    gone. Raises WebDriverError when the driver can't be asked."""
    try:
        command("DELETE", _url(executor, session), timeout=timeout)
    except WebDriverError as exc:
        if exc.error == "invalid session id" or exc.status == 404:
            return False
        raise
    return True


class WebDriverBackend(BrowserBackend):
    """What every WebDriver backend does the same way through its handle's
    ``executor`` and ``session``."""

    one_session = False  # the driver takes commands from any number of processes

    @classmethod
    def navigate(cls, handle: dict, url: str, timeout: float = 60.0) -> None:
        navigate(handle["executor"], handle["session"], url, timeout)

    @classmethod
    def screenshot(cls, handle: dict, timeout: float = 30.0) -> bytes:
        return screenshot(handle["executor"], handle["session"], timeout)

    @classmethod
    def alive(cls, handle: dict) -> bool:
        return bool(handle.get("session")) and alive(handle["executor"], handle["session"])
