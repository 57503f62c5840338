"""``/agent/*``: the agents logged into the account, and windows opened or closed on
a chosen one through the cloud (``services/agents.py``). An agent takes its commands
by polling (``/agent/poll``, over its own outbound connection: it needs no inbound
port) and answers each with the Local API's answer (``/agent/result``)."""
from __future__ import annotations

from flask import g, request
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from browserfarm.api.base import Blueprint, farm, hung_up
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import (EXAMPLE_UUID, FlexibleBool, FlexibleFloat, FlexibleInt,
                                    args, doc, window_ref_args)
from browserfarm.services.agents import ACTIONS, POLL_WAIT_MAX, AgentService

blp = Blueprint("agents", __name__, description="Agents, and windows opened or closed on "
                                               "them through the cloud")


def agents() -> AgentService:
    return AgentService(farm(), g.caller)


_name = fields.String(required=True, validate=validate.Length(1, 200),
                      metadata=doc("The agent's name (a window's openAgent)", "desk 1"))
_id = FlexibleInt(required=True, validate=validate.Range(min=1),
                  metadata=doc("The command's ID", 1))
_ACTION = doc("open or close (the Local API's /browser/open or /browser/close)", "open")
_TIME = "2026-01-31T12:00:00+00:00"

PollArgs = args("AgentPollArgs", {
    "name": _name,
    "machine": fields.String(load_default="", validate=validate.Length(max=255),
                             metadata=doc("The agent's host name", "desk-1.local")),
    "version": fields.String(load_default="", validate=validate.Length(max=64),
                             metadata=doc("The agent's BrowserFarm version", "0.1.0")),
    "wait": FlexibleFloat(load_default=POLL_WAIT_MAX,
                          validate=validate.Range(0, POLL_WAIT_MAX),
                          metadata=doc("Seconds to wait for a command", POLL_WAIT_MAX))})
ResultArgs = args("AgentResultArgs", {
    "name": _name, "id": _id,
    "result": fields.Nested(Schema.from_dict({
        "code": fields.Integer(required=True, validate=validate.Range(0, 999),
                               metadata=doc("The Local API's code; 0: success", 0)),
        "msg": fields.String(required=True, validate=validate.Length(max=10_000),
                             metadata=doc("The Local API's msg", "Browser opened")),
        "data": fields.Dict(load_default=dict, metadata=doc(
            "The Local API's data", {"pid": 45678, "marionettePort": 2828}))},
        name="LocalAnswer"), required=True,
        metadata={"description": "The Local API's answer to the command's call"})})
CommandArgs = window_ref_args(
    "AgentCommandArgs",
    agent=_name,
    action=fields.String(required=True, validate=validate.OneOf(ACTIONS), metadata=_ACTION),
    headless=FlexibleBool(metadata=doc("open: as the Local API's headless", False)),
    args=fields.List(fields.String(validate=validate.Length(max=1000)),
                     validate=validate.Length(max=100),
                     metadata=doc("open: the browser's arguments, as the Local API's args",
                                  ["--mute-audio"])))
CommandIdArgs = args("AgentCommandIdArgs", {"id": _id})


class CommandForAgentSchema(Schema):
    id = fields.Integer(metadata=doc("The command's ID (answer it with /agent/result)", 1))
    action = fields.String(metadata={"enum": list(ACTIONS), **_ACTION})
    body = fields.Dict(metadata=doc("The Local API call's body", {"uuid": EXAMPLE_UUID}))


class CommandSchema(Schema):
    id = fields.Integer(metadata=doc("The command's ID", 1))
    agent = fields.String(metadata=doc("The agent it is for", "desk 1"))
    action = fields.String(metadata={"enum": list(ACTIONS), **_ACTION})
    windowId = fields.Integer(metadata=doc("The window's ID", 1))
    uuid = fields.String(metadata=doc("The window's UUID", EXAMPLE_UUID))
    status = fields.String(metadata={"enum": ["queued", "running", "done", "failed"],
                                     **doc("queued, running (the agent took it), done or "
                                           "failed", "done")})
    result = fields.Dict(allow_none=True, metadata=doc(
        "The Local API's answer {code, msg, data}: what /browser/open or /browser/close "
        "answered on the agent, or why the command failed; null until it ends",
        {"code": 0, "msg": "Browser opened", "data": {"pid": 45678}}))
    createdTime = fields.String(metadata=doc("When it was sent (UTC)", _TIME))
    takenTime = fields.String(allow_none=True, metadata=doc(
        "When the agent took it; null: not yet", _TIME))
    finishedTime = fields.String(allow_none=True, metadata=doc(
        "When it ended; null: not yet", _TIME))


class OpenWindowSchema(Schema):
    id = fields.Integer(metadata=doc("Window ID", 1))
    uuid = fields.String(metadata=doc("Window UUID", EXAMPLE_UUID))
    name = fields.String(metadata=doc("Window name", "shop 1"))
    openStatus = fields.String(metadata=doc("opening, opened or closing", "opened"))
    since = fields.String(allow_none=True, metadata=doc("Since when (UTC)", _TIME))


class AgentSchema(Schema):
    name = fields.String(metadata=doc("The agent's name", "desk 1"))
    machine = fields.String(metadata=doc("Its host name", "desk-1.local"))
    version = fields.String(metadata=doc("Its BrowserFarm version", "0.1.0"))
    online = fields.Boolean(metadata=doc("It polled lately", True))
    lastSeen = fields.String(metadata=doc("When it last polled (UTC)", _TIME))
    firstSeen = fields.String(metadata=doc("When it first polled (UTC)", _TIME))
    windows = fields.List(fields.Nested(OpenWindowSchema), metadata={
        "description": "The windows open on it"})


CommandEnvelope = envelope_schema(CommandSchema, "AgentCommandEnvelope")


@blp.route("/agent/poll")
class Poll(MethodView):
    @blp.arguments(PollArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"command": fields.Nested(CommandForAgentSchema, allow_none=True, metadata={
            "description": "The next command; null: none came while it waited"})},
        name="AgentPoll"), "AgentPollEnvelope"))
    def post(self, data):
        """An agent reports itself and waits for its next command (browser:open)."""
        connection = request.environ.get("gunicorn.socket") or request.environ.get(
            "werkzeug.socket")
        return success({"command": agents().poll(
            data["name"], data["machine"], data["version"], data["wait"],
            gone=lambda: connection is not None and hung_up(connection))})


@blp.route("/agent/result")
class Result(MethodView):
    @blp.arguments(ResultArgs)
    @blp.response(200, CommandEnvelope)
    def post(self, data):
        """An agent answers a command it took (browser:open)."""
        return success(agents().finish(data["name"], data["id"], data["result"]))


@blp.route("/agent/list")
class List(MethodView):
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"list": fields.List(fields.Nested(AgentSchema), metadata={
            "description": "The account's agents"})}, name="AgentList"),
        "AgentListEnvelope"))
    def post(self):
        """The account's agents, online or not, with the windows open on each
        (browser:list)."""
        return success({"list": agents().agents()})


@blp.route("/agent/command")
class Command(MethodView):
    @blp.arguments(CommandArgs)
    @blp.response(200, CommandEnvelope)
    def post(self, data):
        """Open or close a window on an online agent (browser:open); read the command
        back with /agent/command/detail until it is done or failed."""
        options = {key: data.pop(key) for key in ("headless", "args") if key in data}
        return success(agents().send(data.pop("agent"), data.pop("action"), data, options))


@blp.route("/agent/command/detail")
class CommandDetail(MethodView):
    @blp.arguments(CommandIdArgs)
    @blp.response(200, CommandEnvelope)
    def post(self, data):
        """A command as it stands (browser:list)."""
        return success(agents().command(data["id"]))
