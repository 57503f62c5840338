"""Commands from the cloud: windows opened or closed on this desktop from the dashboard
(or any client of ``/agent/command``), with no inbound port here.

``Commands`` polls the cloud over the agent's own outbound connection (``/agent/poll``:
a long poll, which also reports the agent as online), runs each command it gets
through the same calls the Local API makes (``Agent.open_window`` /
``close_window``), and posts the Local API's answer back (``/agent/result``). The
poll has a client of its own (one deadline per call, cancelled when the agent
stops) and commands run on threads of their own: a slow or dead cloud, or a long
open, never holds up the Local API or the next poll."""
from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from browserfarm import __version__
from browserfarm.agent.cloud import Cloud
from browserfarm.errors import FarmError, UpstreamError

log = logging.getLogger(__name__)

# The Local API's success messages, and its words for a failure it did not foresee.
OPENED = "Browser opened"
CLOSED = "Browser closed"
LOCAL_FAILED = "Local service execution failed"
CALLS = {"open": ("open_window", OPENED), "close": ("close_window", CLOSED)}

POLL_WAIT = 25.0  # s the cloud holds a poll open waiting for a command
RETRY_MAX = 30.0  # s between polls at most while the cloud fails
RUNNING_AT_ONCE = 4  # commands run in parallel (each window has its own lock)


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
        self._cloud.close()  # ends a poll waiting for a command
        self._thread.join(10)
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
                if command:
                    self._running.submit(self._run, command)
        finally:
            # A poll that started just as stop() closed the client opened it again.
            self._cloud.close()

    def _run(self, command: dict) -> None:
        result = local_answer(self.agent, command.get("action"), command.get("body") or {})
        try:
            self.agent.cloud.call("/agent/result", {"name": self.agent.name,
                                                    "id": command["id"], "result": result})
        except UpstreamError as exc:
            log.warning("the answer to command %s was not delivered: %s", command["id"],
                        exc.msg)
