"""Commands from the cloud: windows opened or closed on this desktop from the dashboard
(or any client of ``/agent/command``), with no inbound port here.

``Commands`` polls the cloud over the agent's own outbound connection (``/agent/poll``:
a long poll, which also reports the agent as online), runs each command it gets
through the same calls the Local API makes (``Agent.open_window`` /
``close_window``), and posts the Local API's answer back (``/agent/result``). The
poll has a client of its own (one deadline per call, cancelled when the agent
stops) and commands run on threads of their own: a slow or dead cloud, or a long
open, never holds up the Local API or the next poll.

One more command, internal: ``live`` (a viewer on the dashboard watches a window open
here). The agent connects the window's display here (``LocalDisplay``) and opens a
WebSocket to the cloud's ``/agent/live/<channel>`` with its own token, and bridges the
two, on a thread of its own for as long as the view lasts
(``browserfarm.services.live_tunnel`` is the cloud's side). A window not open here is
refused, in words the viewer is shown."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from urllib.parse import urlencode, urlsplit

import websocket

from browserfarm import __version__
from browserfarm.agent.cloud import Cloud
from browserfarm.browsers.liveview import LocalDisplay, Unavailable, bridge
from browserfarm.errors import FarmError, NotFound, UpstreamError

log = logging.getLogger(__name__)

# The Local API's success messages, and its words for a failure it did not foresee.
OPENED = "Browser opened"
CLOSED = "Browser closed"
LOCAL_FAILED = "Local service execution failed"
CALLS = {"open": ("open_window", OPENED), "close": ("close_window", CLOSED)}

POLL_WAIT = 25.0  # s the cloud holds a poll open waiting for a command
RETRY_MAX = 30.0  # s between polls at most while the cloud fails
RUNNING_AT_ONCE = 4  # commands run in parallel (each window has its own lock)
LIVE = "live"  # a live view's tunnel (services.live_tunnel.ACTION)
TUNNEL_CONNECT = 10.0  # s to reach the cloud's live view WebSocket, handshake included


def local_answer(agent, action: str, body: dict) -> dict:
    """What the Local API answers for the call (``{code, msg, data}``), success or
    error: the same flow, the same words."""
    if action not in CALLS:
        return {"code": 211, "msg": f"action: unknown command {action!r}",
                "data": {"field": "action"}}
    method, msg = CALLS[action]
    try:
        return {"code": 0, "msg": msg, "data": getattr(agent, method)(body)}
    except FarmError as exc:
        return {"code": exc.code, "msg": exc.msg, "data": exc.data}
    except Exception as exc:  # noqa: BLE001 - answered, as the Local API answers it
        log.exception("command %s failed", action)
        return {"code": 500, "msg": f"{LOCAL_FAILED}: {exc.__class__.__name__}", "data": {}}


class Commands:
    """The agent's poll thread: started once the agent runs logged in, stopped with
    it (``Agent.shutdown``)."""

    def __init__(self, agent, wait: float = POLL_WAIT):
        self.agent = agent
        self.wait = wait
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._cloud: Cloud | None = None
        self._running: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._thread is not None or not self.agent.login.logged_in:
            return
        # Its own client: its deadline is the poll's, and closing it (stop) ends a
        # poll that waits, not the Local API's calls.
        self._cloud = Cloud(self.agent.login, timeout=self.wait + 15.0)
        self._running = ThreadPoolExecutor(RUNNING_AT_ONCE,
                                           thread_name_prefix="agent-command")
        self._thread = threading.Thread(target=self._poll, daemon=True,
                                        name="agent-commands")
        self._thread.start()

    def stop(self) -> None:
        """No more polls; the commands running finish and answer (the agent's own
        client is still open: ``Agent.shutdown`` closes it after this)."""
        if self._thread is None:
            return
        self._stopping.set()
        # Closing the client ends a poll waiting for a command; a poll that started
        # just as it closed opened it again: closed again, until the thread is gone.
        for _ in range(20):  # 10 s at most
            self._cloud.close()
            self._thread.join(0.5)
            if not self._thread.is_alive():
                break
        self._running.shutdown(wait=True)

    def _poll(self) -> None:
        retry, said = 1.0, ""
        machine = socket.gethostname()
        try:
            while not self._stopping.is_set():
                try:
                    data = self._cloud.call("/agent/poll", {
                        "name": self.agent.name, "machine": machine,
                        "version": __version__, "wait": self.wait})
                except UpstreamError as exc:
                    if exc.msg != said:  # said once, not at every retry
                        log.warning("commands from the cloud: %s", exc.msg)
                        said = exc.msg
                    self._stopping.wait(retry)
                    retry = min(retry * 2, RETRY_MAX)
                    continue
                retry, said = 1.0, ""
                command = data.get("command")
                if command and command.get("action") == LIVE:  # lasts: not in the pool
                    threading.Thread(target=self._live, args=(command,), daemon=True,
                                     name="agent-live-view").start()
                elif command:
                    self._running.submit(self._run, command)
        finally:
            # A poll that started just as stop() closed the client opened it again.
            self._cloud.close()

    def _run(self, command: dict) -> None:
        self._answer(command, local_answer(self.agent, command.get("action"),
                                           command.get("body") or {}))

    def _live(self, command: dict) -> None:
        """A viewer's tunnel to a window's display here, until either side ends."""
        body = command.get("body") or {}
        try:
            display = self._display(str(body.get("uuid", "")))
            vnc = display.connect()
        except (FarmError, Unavailable, OSError) as exc:
            self._answer(command, {"code": getattr(exc, "code", 500),
                                   "msg": getattr(exc, "msg", str(exc)), "data": {}})
            return
        try:
            cloud = open_tunnel(self.agent.login.server, self.agent.login.token,
                                str(body.get("channel", "")), self.agent.name)
        except (OSError, websocket.WebSocketException) as exc:
            vnc.close()
            self._answer(command, {"code": 500, "data": {}, "msg": (
                f"The agent {self.agent.name} could not carry the live view to the "
                f"cloud: {exc.__class__.__name__}: {exc}"[:500])})
            return
        try:
            bridge(cloud.receive, cloud.send, vnc)
        finally:
            cloud.close()

    def _display(self, uuid: str) -> LocalDisplay:
        window = self.agent.windows.get(uuid)
        if window is None:
            raise NotFound(f"The window {uuid} is not open on the agent {self.agent.name}")
        display = LocalDisplay.of(window.handle, self.agent.data)
        if display is None:
            raise Unavailable(f"The window is open on {self.agent.name} without a display "
                              "of its own (headless, or on the desktop's screen): there "
                              "is no live view of it")
        return display

    def _answer(self, command: dict, result: dict) -> None:
        try:
            self.agent.cloud.call("/agent/result", {"name": self.agent.name,
                                                    "id": command["id"], "result": result})
        except UpstreamError as exc:
            log.warning("the answer to command %s was not delivered: %s", command["id"],
                        exc.msg)


class Tunnel:
    """The agent's WebSocket to the cloud's ``/agent/live/<channel>``, as the bridge
    reads it: ``receive(timeout)`` (None when nothing came, raising once it closed)
    and ``send``. A thread reads it, so a read never waits on a send."""

    def __init__(self, ws: websocket.WebSocket):
        self.ws = ws
        self._received: SimpleQueue = SimpleQueue()
        threading.Thread(target=self._read, daemon=True, name="agent-live-read").start()

    def _read(self) -> None:
        try:
            while True:
                data = self.ws.recv()
                if data == "":  # a close frame (RFB's messages are binary)
                    break
                self._received.put(data)
        except Exception:  # noqa: BLE001 - closed, either side: the view ends
            pass
        self._received.put(None)

    def receive(self, timeout: float):
        try:
            data = self._received.get(timeout=timeout)
        except Empty:
            return None
        if data is None:
            self._received.put(None)  # ended: every later receive says so too
            raise ConnectionError("the cloud closed the live view")
        return data

    def send(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def close(self) -> None:
        self.ws.close(timeout=1)


def open_tunnel(server: str, token: str, channel: str, name: str) -> Tunnel:
    """The WebSocket to the cloud's ``/agent/live/<channel>`` as the agent ``name``, with
    its token; reached and upgraded within one deadline (TUNNEL_CONNECT), directly
    (never through an environment's proxy, as the agent's other calls)."""
    url = urlsplit(server)
    secure = url.scheme == "https"
    host, port = url.hostname, url.port or (443 if secure else 80)
    sock = socket.create_connection((host, port), timeout=TUNNEL_CONNECT)
    # The rest of the deadline: the socket is shut when it passes, ending the handshake.
    deadline = threading.Timer(TUNNEL_CONNECT, lambda: _shut(sock))  # sock: TLS's too
    deadline.start()
    try:
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        target = (f"{'wss' if secure else 'ws'}://{url.netloc}{url.path.rstrip('/')}"
                  f"/agent/live/{channel}?{urlencode({'name': name})}")
        ws = websocket.create_connection(target, socket=sock, timeout=TUNNEL_CONNECT,
                                         header=[f"Authorization: Bearer {token}"],
                                         suppress_origin=True)
    except BaseException:
        sock.close()
        raise
    finally:
        deadline.cancel()
    ws.settimeout(None)  # a view may stay still for long: the bridge ends it
    return Tunnel(ws)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
