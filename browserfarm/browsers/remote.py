"""W3C WebDriver sessions through Selenium's remote connection, for chromedriver and
Selenium Grid alike.

A session is reached by its executor URL and session id, which are what a worker's
handle stores, so any process can drive a browser another one started. Each process
keeps one connection pool per executor (HTTP keep-alive) instead of a connection per
command. Selenium sets timeouts per connection, not per command: commands of similar
timeouts share a pool (TIMEOUT_STEPS). Those timeouts are per step (connect, each
read): a driver that sends a byte now and then would never trip them, so each command
also has one overall deadline, after which its socket is shut (``_WatchedConnection``).
Errors are Selenium's exceptions
(``WebDriverException`` and its subclasses); a driver that can't be reached or doesn't
answer in time raises ``Unreachable``, one of them.

Nothing here starts a driver or downloads one: Selenium Manager never runs."""
from __future__ import annotations

import base64
import socket
import threading
import time
from collections import OrderedDict

import urllib3
from urllib3.connection import HTTPConnection
from selenium.common.exceptions import (InvalidSessionIdException, NoSuchWindowException,
                                        UnexpectedAlertPresentException,
                                        WebDriverException)
from selenium.webdriver.common.proxy import Proxy, ProxyType
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.errorhandler import ErrorHandler
from selenium.webdriver.remote.remote_connection import RemoteConnection

from browserfarm.browsers.backends import WorkerBackend
from browserfarm.browsers.handles import WebDriverHandle

STATUS = "browserfarmStatus"  # GET /status: Selenium has no command of its own for it
TIMEOUT_STEPS = (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
KEPT_POOLS = 64  # executors come and go with workers: the oldest pools go first


class Unreachable(WebDriverException):
    """No connection to the executor, or no answer within the timeout."""


_deadline = threading.local()  # .at: this thread's command ends by then (monotonic)


class _WatchedConnection(HTTPConnection):
    """Connects within what is left of the command's deadline, and shuts its socket at
    the deadline while the answer (status, headers, body: urllib3 reads it whole here)
    is awaited."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._watch_lock = threading.Lock()
        # urllib3 hands the connection back to the pool inside getresponse(), before
        # the watchdog is cancelled: a watchdog shuts only the request it watched,
        # never the next one another thread sends on this connection.
        self._requests = 0

    def connect(self):
        at = getattr(_deadline, "at", None)
        if at is not None:
            self.timeout = max(0.001, min(self.timeout, at - time.monotonic()))
        super().connect()

    def request(self, *args, **kwargs):
        with self._watch_lock:
            self._requests += 1
        return super().request(*args, **kwargs)

    def getresponse(self):
        at = getattr(_deadline, "at", None)
        if at is None:
            return super().getresponse()
        watchdog = threading.Timer(max(0.0, at - time.monotonic()), self._shut,
                                   (self._requests,))
        watchdog.daemon = True
        watchdog.start()
        try:
            return super().getresponse()
        finally:
            watchdog.cancel()

    def _shut(self, request: int) -> None:
        with self._watch_lock:
            if request != self._requests or self.sock is None:
                return
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
            except OSError:
                pass


class _WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _RemoteConnection(RemoteConnection):
    def _get_connection_manager(self):
        manager = super()._get_connection_manager()
        # Executors are plain http on loopback or the Grid's network.
        manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme,
                                          "http": _WatchedPool}
        return manager


_pools: OrderedDict[tuple[str, float], _RemoteConnection] = OrderedDict()
_pools_lock = threading.Lock()
_errors = ErrorHandler()


def _connection(executor: str, timeout: float) -> _RemoteConnection:
    step = next((s for s in TIMEOUT_STEPS if s >= timeout), timeout)
    key = (executor, step)
    with _pools_lock:
        connection = _pools.get(key)
        if connection is None:
            config = ClientConfig(
                executor, keep_alive=True, timeout=step,
                # our own drivers and Grid: never through an environment's proxy
                proxy=Proxy(raw={"proxyType": ProxyType.DIRECT}),
                # a read that timed out is not sent again (a retried screenshot would
                # take twice the timeout); a stale kept-alive connection is replaced
                init_args_for_pool_manager={"init_args_for_pool_manager": {
                    "retries": urllib3.Retry(total=1, read=False, redirect=False)}})
            connection = _RemoteConnection(client_config=config)
            connection.add_command(STATUS, "GET", "/status")
            _pools[key] = connection
            while len(_pools) > KEPT_POOLS:
                _pools.popitem(last=False)[1].close()
        _pools.move_to_end(key)
    return connection


def forget(executor: str) -> None:
    """Close the pools of an executor that is gone (a stopped chromedriver)."""
    with _pools_lock:
        for key in [key for key in _pools if key[0] == executor]:
            _pools.pop(key).close()


def command(executor: str, name: str, params: dict | None = None, *, timeout: float):
    """One command (``selenium.webdriver.remote.command.Command``); its ``value``,
    within ``timeout`` seconds overall."""
    _deadline.at = time.monotonic() + timeout
    try:
        response = _connection(executor, timeout).execute(name, dict(params or {}))
    except urllib3.exceptions.HTTPError as exc:
        if time.monotonic() >= _deadline.at:
            raise Unreachable(f"{executor}: no answer within {timeout:g} s") from None
        raise Unreachable(f"{executor}: {exc.__class__.__name__}: {exc}") from None
    finally:
        _deadline.at = None
    _errors.check_response(response)
    return response.get("value")


def status(executor: str, timeout: float = 5.0) -> dict:
    """``GET /status``: ``ready``, and for a Grid its nodes and their slots."""
    return command(executor, STATUS, timeout=timeout) or {}


def new_session(executor: str, capabilities: dict, timeout: float) -> tuple[str, dict]:
    """A new session: its id, and the capabilities the driver answered (chromedriver's
    ``goog:processID`` is the browser's pid)."""
    value = command(executor, Command.NEW_SESSION,
                    {"capabilities": {"alwaysMatch": capabilities}}, timeout=timeout)
    return value["sessionId"], value.get("capabilities") or {}


def navigate(executor: str, session: str, url: str, timeout: float,
             set_page_load_timeout: bool = True) -> None:
    """Loads url; the driver itself gives up after ``timeout`` (its page load timeout,
    set here unless the session's capabilities already did), and answers a little
    before our own timeout would cut it off."""
    if set_page_load_timeout:
        command(executor, Command.SET_TIMEOUTS,
                {"sessionId": session, "pageLoad": int(timeout * 1000)},
                timeout=min(timeout, 10))
    try:
        command(executor, Command.GET, {"sessionId": session, "url": url},
                timeout=timeout + 10)
    except WebDriverException as exc:
        # A page that fails to load (refused, unknown name) is what the browser shows,
        # as it would to a user: not a failure of the browser.
        if "net::ERR_" not in str(exc.msg):
            raise


def screenshot(executor: str, session: str, timeout: float = 30.0) -> bytes:
    """The viewport, as PNG bytes."""
    return base64.b64decode(command(executor, Command.SCREENSHOT, {"sessionId": session},
                                    timeout=timeout))


def execute(executor: str, session: str, script: str, args: list | None = None,
            timeout: float = 10.0):
    """A synchronous script's return value."""
    return command(executor, Command.W3C_EXECUTE_SCRIPT,
                   {"sessionId": session, "script": script, "args": args or []},
                   timeout=timeout)


def alive(executor: str, session: str, timeout: float = 5.0) -> bool:
    """Whether the session still exists. Get Window Handle, because it never touches
    an open alert (other commands would dismiss it)."""
    try:
        command(executor, Command.W3C_GET_CURRENT_WINDOW_HANDLE, {"sessionId": session},
                timeout=timeout)
    except (NoSuchWindowException, UnexpectedAlertPresentException):
        return True
    except WebDriverException:
        return False
    return True


def delete_session(executor: str, session: str, timeout: float = 20.0) -> bool:
    """Ends the session (the driver quits the browser); False when it was already
    gone. Raises WebDriverException when the driver can't be asked."""
    try:
        command(executor, Command.QUIT, {"sessionId": session}, timeout=timeout)
    except InvalidSessionIdException:
        return False
    except WebDriverException as exc:
        if "404" in str(exc.msg) or "Not Found" in str(exc.msg):
            return False
        raise
    return True


class WebDriverBackend(WorkerBackend):
    """What every WebDriver backend does the same way through its handle's
    ``executor`` and ``session``."""

    one_session = False  # the driver takes commands from any number of processes

    @classmethod
    def navigate(cls, handle: WebDriverHandle, url: str, timeout: float = 60.0) -> None:
        navigate(handle.executor, handle.session, url, timeout)

    @classmethod
    def screenshot(cls, handle: WebDriverHandle, timeout: float = 30.0) -> bytes:
        return screenshot(handle.executor, handle.session, timeout)

    @classmethod
    def alive(cls, handle: WebDriverHandle) -> bool:
        return bool(handle.session) and alive(handle.executor, handle.session)
