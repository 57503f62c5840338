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
from browserfarm.api.fields import (FlexibleBool, FlexibleFloat, FlexibleInt, args,
                                    window_ref_args)
from browserfarm.services.agents import ACTIONS, POLL_WAIT_MAX, AgentService

blp = Blueprint("agents", __name__, description="Agents, and windows opened or closed on "
                                               "them through the cloud")


def agents() -> AgentService:
    return AgentService(farm(), g.caller)


_name = fields.String(required=True, validate=validate.Length(1, 200),
                      metadata={"description": "The agent's name (a window's openAgent)"})
_id = FlexibleInt(required=True, validate=validate.Range(min=1))

PollArgs = args("AgentPollArgs", {
    "name": _name,
    "machine": fields.String(load_default="", validate=validate.Length(max=255),
                             metadata={"description": "The agent's host name"}),
    "version": fields.String(load_default="", validate=validate.Length(max=64)),
    "wait": FlexibleFloat(load_default=POLL_WAIT_MAX,
                          validate=validate.Range(0, POLL_WAIT_MAX),
                          metadata={"description": "Seconds to wait for a command"})})
ResultArgs = args("AgentResultArgs", {
    "name": _name, "id": _id,
    "result": fields.Nested(Schema.from_dict({
        "code": fields.Integer(required=True, validate=validate.Range(0, 999)),
        "msg": fields.String(required=True, validate=validate.Length(max=10_000)),
        "data": fields.Dict(load_default=dict)}, name="LocalAnswer"), required=True,
        metadata={"description": "The Local API's answer to the command's call"})})
CommandArgs = window_ref_args(
    "AgentCommandArgs",
    agent=_name,
    action=fields.String(required=True, validate=validate.OneOf(ACTIONS)),
    headless=FlexibleBool(metadata={"description": "open: as the Local API's headless"}),
    args=fields.List(fields.String(validate=validate.Length(max=1000)),
                     validate=validate.Length(max=100),
                     metadata={"description": "open: the browser's arguments, as the Local "
                                              "API's args"}))
CommandIdArgs = args("AgentCommandIdArgs", {"id": _id})


class CommandForAgentSchema(Schema):
    id = fields.Integer()
    action = fields.String(metadata={"enum": list(ACTIONS)})
    body = fields.Dict(metadata={"description": "The Local API call's body"})


class CommandSchema(Schema):
    id = fields.Integer()
    agent = fields.String()
    action = fields.String(metadata={"enum": list(ACTIONS)})
    windowId = fields.Integer()
    uuid = fields.String()
    status = fields.String(metadata={"enum": ["queued", "running", "done", "failed"]})
    result = fields.Dict(allow_none=True, metadata={
        "description": "The Local API's answer {code, msg, data}: what /browser/open or "
                       "/browser/close answered on the agent, or why the command failed"})
    createdTime = fields.String()
    takenTime = fields.String(allow_none=True)
    finishedTime = fields.String(allow_none=True)


class OpenWindowSchema(Schema):
    id = fields.Integer()
    uuid = fields.String()
    name = fields.String()
    openStatus = fields.String()
    since = fields.String(allow_none=True)


class AgentSchema(Schema):
    name = fields.String()
    machine = fields.String()
    version = fields.String()
    online = fields.Boolean()
    lastSeen = fields.String()
    firstSeen = fields.String()
    windows = fields.List(fields.Nested(OpenWindowSchema))


CommandEnvelope = envelope_schema(CommandSchema, "AgentCommandEnvelope")


@blp.route("/agent/poll")
class Poll(MethodView):
    @blp.arguments(PollArgs)
    @blp.response(200, envelope_schema(Schema.from_dict(
        {"command": fields.Nested(CommandForAgentSchema, allow_none=True)},
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
        {"list": fields.List(fields.Nested(AgentSchema))}, name="AgentList"),
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
