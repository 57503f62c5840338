"""The agents logged into an account and the commands the cloud sends them.

An agent (``browserfarm local``) has no inbound port: it asks the cloud, over its
own outbound connection, for commands addressed to it (``poll``: a long poll), runs
each through the Local API's own flow, and posts the answer (``finish``). Polling
is how it reports itself: its name, machine and version, and when it was last seen
(online: within ``ONLINE_SECONDS``). A person (the dashboard, or a script) asks for a
window to be opened or closed on a chosen agent (``send``) and reads the command
until it is done or failed (``command``). Everything is scoped to the caller's
account. Free of Flask.

An agent's name is bound to the token that first polled under it: another token of
the account (any ``browser:open`` token could poll) can't poll, answer or attach as
that agent, so it can't take the agent's commands nor answer for it. The name is free
again once its token is revoked or deleted: an agent logged in again with a new
token (the old one revoked, as ``browserfarm up`` does) keeps its name and its row."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from browserfarm import permissions as perm
from browserfarm.errors import Forbidden, InvalidInput, NotFound, Unprocessable
from browserfarm.models import (AgentCommand, ApiToken, KnownAgent, Window, iso_utc,
                                utcnow)

ACTIONS = ("open", "close")
POLL_WAIT_MAX = 25.0  # s an agent's poll waits for a command, at most
POLL_INTERVAL = 0.2  # s between looks at the queue while a poll waits
# An agent polls again as soon as a poll ends: silent longer than a poll's wait and
# then some, it is gone.
ONLINE_SECONDS = 45.0
QUEUED_TTL = 30.0  # s a command waits for its agent to take it
# s an agent may take to answer a command it took (an open restores a profile and
# checks a proxy); past it, the command failed (the agent died or lost the cloud).
RUNNING_TTL = 300.0
FORGOTTEN_AFTER = timedelta(days=7)  # agents not seen since are no longer listed
OPEN_STATUSES = ("opening", "opened", "closing")


class AgentService:
    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller
        self.account_id = caller.account_id

    # ----- the agent's side ----------------------------------------------------------

    def poll(self, name: str, machine: str, version: str, wait: float,
             gone: Callable[[], bool] = lambda: False) -> dict | None:
        """The agent ``name`` is seen; the next command for it (now running), waiting
        up to ``wait`` seconds for one; None if none came, or once ``gone()`` says the
        agent hung up (a stopped agent must not hold a server thread, nor its stop)."""
        self.caller.require(perm.BROWSER_OPEN)
        agent = self._seen(name, machine, version)
        deadline = time.monotonic() + min(max(wait, 0.0), POLL_WAIT_MAX)
        while True:
            command = self._take(agent)
            if command is not None:
                return {"id": command.id, "action": command.action, "body": command.args}
            if time.monotonic() >= deadline or gone():
                return None
            time.sleep(POLL_INTERVAL)

    def finish(self, name: str, command_id: int, result: dict) -> dict:
        """The agent ``name`` answers a command it took, with the Local API's answer."""
        self.caller.require(perm.BROWSER_OPEN)
        command = (AgentCommand.select().join(KnownAgent)
                   .where(AgentCommand.id == command_id,
                          AgentCommand.account == self.account_id,
                          KnownAgent.name == name).first())
        if command is None:
            raise NotFound(f"No command {command_id} for this agent")
        self._refuse_unless_bound(command.agent)
        status = "done" if result.get("code") == 0 else "failed"
        updated = (AgentCommand.update(status=status, result=result, finished_at=utcnow())
                   .where(AgentCommand.id == command.id, AgentCommand.status == "running")
                   .execute())
        if not updated:  # given up on meanwhile (see RUNNING_TTL): the answer came late
            raise Unprocessable(f"Command {command_id} is no longer running: "
                                f"{AgentCommand.get_by_id(command.id).status}")
        return self._shown(AgentCommand.get_by_id(command.id))

    def own_agent(self, name: str) -> KnownAgent:
        """The agent ``name`` of the account, if the caller's token is the one its name
        is bound to (e.g. to attach a live view's tunnel as that agent); else refused."""
        self.caller.require(perm.BROWSER_OPEN)
        agent = KnownAgent.get_or_none(KnownAgent.account == self.account_id,
                                       KnownAgent.name == name)
        if agent is None:
            raise NotFound("No such agent")
        self._refuse_unless_bound(agent)
        return agent

    # ----- a person's side -----------------------------------------------------------

    def agents(self) -> list[dict]:
        """The account's agents, online first, each with the windows open on it."""
        self.caller.require(perm.BROWSER_LIST)
        now = utcnow()
        rows = (KnownAgent.select()
                .where(KnownAgent.account == self.account_id,
                       KnownAgent.seen_at > now - FORGOTTEN_AFTER)
                .order_by(KnownAgent.seen_at.desc()))
        windows = self._open_windows([row.name for row in rows])
        shown = [{"name": row.name, "machine": row.machine, "version": row.version,
                  "online": _online(row, now), "lastSeen": iso_utc(row.seen_at),
                  "firstSeen": iso_utc(row.created_at),
                  "windows": windows.get(row.name, [])} for row in rows]
        return sorted(shown, key=lambda agent: not agent["online"])  # stable: by seen

    def send(self, agent_name: str, action: str, ref: dict, options: dict) -> dict:
        """Queue ``action`` (open or close) of the window ``ref`` on the agent; its
        body is the Local API call's (``options``: open's ``headless``, ``args``)."""
        self.caller.require(perm.BROWSER_OPEN)
        if action not in ACTIONS:
            raise InvalidInput("action", f"must be one of {', '.join(ACTIONS)}")
        window = Window.by_ref(self.account_id, ref)
        return self._shown(self.queue(agent_name, action, window, {"uuid": window.uuid,
                                                                   **options}))

    def queue(self, agent_name: str, action: str, window: Window,
              body: dict) -> AgentCommand:
        """A command for an online agent, any action (send's, or the live view's
        ``live`` of services/live_tunnel.py, which no client sends): the caller checked
        it may."""
        agent = KnownAgent.get_or_none(KnownAgent.account == self.account_id,
                                       KnownAgent.name == agent_name)
        if agent is None:
            raise InvalidInput("agent", f"no agent named {agent_name!r} has logged into "
                                        "this account")
        now = utcnow()
        if not _online(agent, now):
            seconds = int((now - agent.seen_at).total_seconds())
            raise Unprocessable(
                f"The agent {agent.name} on {agent.machine or 'its machine'} is offline "
                f"(last seen {_ago(seconds)}): start `browserfarm local` there and try "
                "again", {"field": "agent"})
        return AgentCommand.create(account=self.account_id, agent=agent, window=window,
                                   action=action, args=body,
                                   expires_at=now + timedelta(seconds=QUEUED_TTL))

    def command(self, command_id: int) -> dict:
        """A command as it stands (queued, running, done or failed, with its answer)."""
        self.caller.require(perm.BROWSER_LIST)
        self._expire()
        command = AgentCommand.get_or_none(AgentCommand.id == command_id,
                                           AgentCommand.account == self.account_id)
        if command is None:
            raise NotFound(f"No command {command_id}")
        return self._shown(command)

    # ----- internals -----------------------------------------------------------------

    def _seen(self, name: str, machine: str, version: str) -> KnownAgent:
        """The agent ``name`` seen now, its name bound to the caller's token if free
        (new, never bound, or its token revoked); refused if bound to another token.
        Each step is one statement: two tokens polling a new name at once can't both
        get it."""
        now, mine = utcnow(), self.caller.token_id
        named = (KnownAgent.account == self.account_id) & (KnownAgent.name == name)
        (KnownAgent.insert(account=self.account_id, name=name, token=mine, created_at=now,
                           seen_at=now).on_conflict_ignore().execute())
        live = ApiToken.select(ApiToken.id).where(ApiToken.account == self.account_id,
                                                  ApiToken.revoked_at.is_null())
        (KnownAgent.update(token=mine)
         .where(named, KnownAgent.token.is_null() | KnownAgent.token.not_in(live))
         .execute())
        (KnownAgent.update(machine=machine, version=version, seen_at=now)
         .where(named, KnownAgent.token == mine).execute())
        agent = KnownAgent.get(named)
        self._refuse_unless_bound(agent)
        return agent

    def _refuse_unless_bound(self, agent: KnownAgent) -> None:
        if agent.token_id is None or agent.token_id != self.caller.token_id:
            raise Forbidden(
                f"The agent name {agent.name!r} belongs to another token of this account "
                f"(token {agent.token_id}), the one it first polled with: revoke that "
                "token to give the name to this one (`browserfarm token revoke "
                f"{agent.token_id}`), or run this agent under another name "
                "(`browserfarm local --name`)", {"field": "name"})

    def _take(self, agent: KnownAgent) -> AgentCommand | None:
        """The oldest queued command for ``agent``, claimed (one statement: two polls
        never take the same one)."""
        self._expire()
        for command in (AgentCommand.select().where(AgentCommand.agent == agent.id,
                                                    AgentCommand.status == "queued")
                        .order_by(AgentCommand.id).limit(5)):
            now = utcnow()
            taken = (AgentCommand.update(status="running", taken_at=now,
                                         expires_at=now + timedelta(seconds=RUNNING_TTL))
                     .where(AgentCommand.id == command.id,
                            AgentCommand.status == "queued").execute())
            if taken:
                return AgentCommand.get_by_id(command.id)
        return None

    def _expire(self) -> None:
        """The account's commands past their time: failed, saying why in words."""
        now = utcnow()
        for status, why in (
                ("queued", f"No agent took the command within {QUEUED_TTL:.0f} s: is "
                           "`browserfarm local` running on that machine?"),
                ("running", f"The agent took the command and gave no answer within "
                            f"{RUNNING_TTL:.0f} s (it stopped, or lost the cloud)")):
            (AgentCommand.update(status="failed", finished_at=now,
                                 result={"code": 500, "msg": why, "data": {}})
             .where(AgentCommand.account == self.account_id,
                    AgentCommand.status == status, AgentCommand.expires_at < now)
             .execute())

    def _open_windows(self, names: list[str]) -> dict[str, list[dict]]:
        if not names:
            return {}
        found: dict[str, list[dict]] = {}
        rows = (Window.select(Window.id, Window.uuid, Window.name, Window.open_agent,
                              Window.open_status, Window.open_status_at)
                .where(Window.account == self.account_id, Window.deleted_at.is_null(),
                       Window.open_agent.in_(names),
                       Window.open_status.in_(OPEN_STATUSES))
                .order_by(Window.id))
        for window in rows:
            found.setdefault(window.open_agent, []).append({
                "id": window.id, "uuid": window.uuid, "name": window.name,
                "openStatus": window.open_status,
                "since": iso_utc(window.open_status_at)})
        return found

    @staticmethod
    def _shown(command: AgentCommand) -> dict:
        return {"id": command.id, "agent": command.agent.name, "action": command.action,
                "windowId": command.window_id, "uuid": command.args.get("uuid"),
                "status": command.status, "result": command.result,
                "createdTime": iso_utc(command.created_at),
                "takenTime": iso_utc(command.taken_at),
                "finishedTime": iso_utc(command.finished_at)}


def _online(agent: KnownAgent, now) -> bool:
    return (now - agent.seen_at).total_seconds() <= ONLINE_SECONDS


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
