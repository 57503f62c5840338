"""The agent's side of the cloud: its login (``agent.json`` in the data dir) and the
HTTP client that calls the cloud API with it.

Owns: the login file, and one kept-alive HTTP client (httpx) to the cloud. Every
failure is an ``UpstreamError``: the cloud's own code and status passed on, or 500 when
the cloud can't be reached. The desktop does not trust the cloud with its files: a
window uuid it answers names folders and files here only once it is a well-formed uuid
(``checked_uuid``)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import secrets
import threading
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import httpx

from browserfarm.datadir import DataDir
from browserfarm.errors import UpstreamError

# What a cloud that can't be reached, or not within the deadline (or a login whose
# server is no URL) raises.
UNREACHABLE = (httpx.HTTPError, httpx.InvalidURL, TimeoutError)


@dataclass
class Login:
    """The agent's login, kept in the data dir's ``agent.json`` (0600)."""
    server: str = ""
    token: str = ""
    local_token: str = ""

    @classmethod
    def load(cls, data_dir: Path) -> "Login":
        path = DataDir(data_dir).agent_login
        login = cls(**json.loads(path.read_text())) if path.exists() else cls()
        if not login.local_token:  # made once per data dir, kept across logins
            login.local_token = secrets.token_urlsafe(24)
            login.save(data_dir)
        return login

    def save(self, data_dir: Path) -> None:
        data = DataDir(data_dir)
        data.write_private(data.agent_login, json.dumps(vars(self), indent=2))

    @property
    def logged_in(self) -> bool:
        return bool(self.server and self.token)


class Cloud:
    """The cloud API, as the agent's login calls it. Every call ends by one deadline
    (``timeout``: connecting, headers and body together). httpx's own timeouts are per
    step, which an answer sent a byte at a time never trips: so calls run on httpx's
    async client, on a loop of the Cloud's own (a thread started at the first call),
    each under ``asyncio.timeout``."""

    def __init__(self, login: Login, timeout: float = 30.0):
        self.login = login
        self.timeout = timeout
        # The cloud is reached directly, never via an env proxy; redirects are followed.
        # A kept-alive connection is dropped before the server's own idle limit
        # (gunicorn: 2 s): reused right as the server closed it, a call failed with
        # ReadError (seen once in ~15 opens by a new user).
        self.http = httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=True,
                                      limits=httpx.Limits(keepalive_expiry=1.0))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self._calls: set[concurrent.futures.Future] = set()  # waited for, on the loop

    def call(self, path: str, body: dict) -> dict:
        """The ``data`` of a successful answer; a ``UpstreamError`` otherwise."""
        status, payload = self.forward(path, body)
        if payload.get("code") != 0:
            raise UpstreamError(payload.get("code", 500), payload.get("msg", "cloud error"),
                                payload.get("data"), status)
        return payload.get("data") or {}

    def detail(self, ref: dict) -> dict:
        """The window ``ref`` names (``/browser/detail``), its uuid checked."""
        detail = self.call("/browser/detail", ref)
        checked_uuid(detail.get("uuid"))
        return detail

    def launch_config(self, uuid: str) -> dict:
        """How to open the window ``uuid`` (``/browser/launch``): for that window only."""
        config = self.call("/browser/launch", {"uuid": uuid})
        if config.get("window", {}).get("uuid") != uuid:
            raise UpstreamError(500, "the cloud answered the launch configuration of "
                                     "another window")
        return config

    def forward(self, path: str, body) -> tuple[int, dict]:
        """POST ``body`` as is; the cloud's status and envelope, unchanged."""
        response = self._post(path, json=body)
        return response.status_code, self._envelope(response)

    def send_bytes(self, path: str, params: dict, data: bytes) -> dict:
        payload = self._envelope(self._post(path, params=params, content=data, headers={
            "Content-Type": "application/octet-stream"}))
        if payload.get("code") != 0:
            raise UpstreamError(payload.get("code", 500), payload.get("msg", "cloud error"))
        return payload["data"]

    def receive_bytes(self, path: str, params: dict, limit: int) -> bytes:
        """The answer's bytes, at most ``limit``: read as they come, and a longer answer
        refused once past it (not held whole)."""
        response = self._post(path, params=params, json={}, limit=limit)
        if response.status_code != 200:
            raise UpstreamError(response.status_code, f"chunk not delivered "
                                                      f"(HTTP {response.status_code})")
        return response.content

    def close(self) -> None:
        """Close the kept-alive connections (the agent stops), and the loop; a call
        still waiting (the command poll's) ends at once as an ``UpstreamError``."""
        with self._loop_lock:
            loop, self._loop = self._loop, None
            calls, self._calls = self._calls, set()
        # Its caller answered here, not by the loop: a cancelled httpx call takes a few
        # turns of the loop to end, and the loop may stop first (then it never did).
        for call in calls:
            call.cancel()
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(self.timeout)
            loop.call_soon_threadsafe(loop.stop)

    async def _aclose(self) -> None:
        calls = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in calls:
            task.cancel()
        if calls:  # ended before the client closes (their connections freed)
            await asyncio.wait(calls, timeout=1.0)
        await self.http.aclose()

    def __enter__(self) -> "Cloud":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _post(self, path: str, headers: dict | None = None, limit: int | None = None,
              **kwargs) -> httpx.Response:
        try:
            return self._run(self._post_by_deadline(
                self.login.server.rstrip("/") + path, limit,
                headers={"Authorization": f"Bearer {self.login.token}", **(headers or {})},
                **kwargs))
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from None

    async def _post_by_deadline(self, url: str, limit: int | None,
                                **kwargs) -> httpx.Response:
        async with asyncio.timeout(self.timeout):
            if limit is None:
                return await self.http.post(url, **kwargs)  # the body read whole
            async with self.http.stream("POST", url, **kwargs) as response:
                body = bytearray()
                async for block in response.aiter_bytes():
                    body += block
                    if len(body) > limit:
                        raise UpstreamError(500, f"the cloud answered more than {limit} "
                                                 "bytes")
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=bytes(body), request=response.request)

    def _run(self, coroutine):
        """Run ``coroutine`` on the Cloud's loop; its result or its exception."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(self._loop,), daemon=True,
                                 name="cloud-client").start()
            # Submitted under the lock: close() then finds the call on the loop (and
            # cancels it) or makes it start a loop of its own, never a stopped one.
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            self._calls.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise UpstreamError(500, "the call to the cloud was cancelled: the agent "
                                     "stops") from None
        finally:
            with self._loop_lock:
                self._calls.discard(future)

    def _envelope(self, response: httpx.Response) -> dict:
        """The answer's JSON; none (e.g. a proxy's error page) counts as no cloud."""
        try:
            return response.json()
        except ValueError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> UpstreamError:
        return UpstreamError(500, f"the cloud at {self.login.server} is unreachable: "
                                  f"{exc.__class__.__name__}")


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_forever()
    loop.close()


def checked_uuid(value) -> str:
    """``value``, a window uuid from the cloud (or a file the agent wrote), if it is
    one in canonical form: it names profile folders and files in the data dir, so
    nothing else (``..``, slashes) may."""
    try:
        if isinstance(value, str) and str(uuidlib.UUID(value)) == value:
            return value
    except ValueError:
        pass
    raise UpstreamError(500, f"the cloud answered an invalid window uuid: {str(value)[:80]!r}")
