"""The live view of a window open on an agent on another machine: a tunnel through the
agent's own outbound connection (it has no inbound port).

The viewer's thread (``Tunnel.connect``) listens on a Unix socket named by a fresh,
unguessable channel id, then queues the internal command ``live`` (never sendable
through ``/agent/command``) for the agent the window is open on. The agent, which gets
it from its poll, connects its window's display and opens a WebSocket to
``/agent/live/<channel>`` (``browserfarm.api.agent_tunnel``) with its own token; that
handler (``attach``), in whichever gunicorn process took it, connects to the viewer's
socket, and both ends are bridged. The socket is the pairing across processes: it lives
in the data dir's 0700 live-view folder (made 0600), exists only while its viewer
waits, and takes one connection.

A channel is single-use (attaching marks its command done) and lasts WAIT seconds; only
an agent of the command's account, under the name the command is addressed to and with
the token that name is bound to (``AgentService.own_agent``), attaches. Free of Flask."""
from __future__ import annotations

import hashlib
import secrets
import socket
import time
from dataclasses import dataclass

from browserfarm.browsers.liveview import Unavailable
from browserfarm.errors import FarmError, NotFound, Unprocessable
from browserfarm.models import AgentCommand, Window, utcnow
from browserfarm.services.agents import AgentService

ACTION = "live"  # the command's action: internal, not in services.agents.ACTIONS
WAIT = 15.0  # s the viewer waits for the agent's WebSocket
LOOK_EVERY = 0.5  # s between looks at the command (did the agent refuse it?)


def socket_path(data, channel: str):
    # Hashed: a short name (Unix socket paths are short), and no channel in a listing.
    return data.live_view_socket("tunnel-" + hashlib.blake2s(
        channel.encode(), digest_size=8).hexdigest())


@dataclass(frozen=True)
class Tunnel:
    """A window's display on the agent it is open on, through that agent (a Target:
    ``browserfarm.browsers.liveview``). ``caller`` may view (checked before)."""
    farm: object
    caller: object
    window_id: int
    agent: str

    def connect(self, timeout: float = WAIT) -> socket.socket:
        """A stream to the window's VNC server, once the agent attached; Unavailable,
        in words, when the agent is offline, refuses, or does not come in time."""
        data = self.farm.settings.data
        channel = secrets.token_urlsafe(32)
        path = socket_path(data, channel)
        data.make_folder(path.parent)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            path.chmod(0o600)
            listener.listen(1)
            listener.settimeout(LOOK_EVERY)
            command_id = self._queue(channel)  # the socket exists before the agent comes
            deadline = time.monotonic() + timeout
            while True:
                try:
                    stream, _ = listener.accept()
                    stream.settimeout(None)
                    return stream
                except TimeoutError:
                    pass
                self._refused(command_id)
                if time.monotonic() > deadline:
                    self._give_up(command_id)
                    raise Unavailable(f"The agent {self.agent} did not connect the live "
                                      f"view within {timeout:g} s: is it still running?")
        finally:
            listener.close()
            path.unlink(missing_ok=True)

    def _queue(self, channel: str) -> int:
        with self.farm.db.connection_context():
            window = Window.get_by_id(self.window_id)
            try:
                return AgentService(self.farm, self.caller).queue(
                    self.agent, ACTION, window, {"uuid": window.uuid, "channel": channel}).id
            except FarmError as error:  # e.g. the agent is offline: said to the viewer
                raise Unavailable(error.msg) from None

    def _refused(self, command_id: int) -> None:
        """Unavailable with the agent's words, if it answered the command with a
        failure (the window is not open there, it has no display), or it expired."""
        with self.farm.db.connection_context():
            command = AgentCommand.get_by_id(command_id)
        if command.status == "failed":
            raise Unavailable((command.result or {}).get("msg") or "The agent refused")

    def _give_up(self, command_id: int) -> None:
        with self.farm.db.connection_context():
            (AgentCommand.update(status="failed", finished_at=utcnow(), result={
                "code": 500, "msg": f"The viewer stopped waiting after {WAIT:g} s",
                "data": {}})
             .where(AgentCommand.id == command_id,
                    AgentCommand.status.in_(("queued", "running"))).execute())


def attach(farm, caller, agent_name: str, channel: str) -> socket.socket:
    """The agent ``agent_name`` (the caller's token) attaches to ``channel``: a stream
    to the viewer waiting on it. Once only, for a ``live`` command of the caller's
    account addressed to that agent and taken by it; NotFound otherwise (the same
    answer for a channel that never was)."""
    agent = AgentService(farm, caller).own_agent(agent_name)  # its name, its token
    taken = AgentCommand.select().where(
        AgentCommand.agent == agent.id, AgentCommand.account == caller.account_id,
        AgentCommand.action == ACTION, AgentCommand.status == "running")
    command = next((c for c in taken if secrets.compare_digest(
        str(c.args.get("channel", "")), channel)), None)
    if command is None or not (
            AgentCommand.update(status="done", finished_at=utcnow(),
                                result={"code": 0, "msg": "Live view connected", "data": {}})
            .where(AgentCommand.id == command.id, AgentCommand.status == "running")
            .execute()):
        raise NotFound("No live view waits on this channel for this agent")
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.connect(str(socket_path(farm.settings.data, channel)))
    except OSError:
        stream.close()
        raise Unprocessable("The viewer of this live view has gone") from None
    return stream
