"""``/agent/live/<channel>``: the WebSocket an agent opens, over its own outbound
connection, to carry a live view of one of its windows to the viewer waiting on the
channel (``services/live_tunnel.py``). Authenticated as the API is (the agent's Bearer
token); refused before the upgrade, as a JSON error, unless the agent may attach.
Internal: not in the OpenAPI document (agents use it, not clients)."""
from __future__ import annotations

from flask import Blueprint, current_app, g, request
from flask_sock import Sock

from browserfarm.browsers.liveview import bridge
from browserfarm.errors import InvalidInput
from browserfarm.services.accounts import authenticate_bearer
from browserfarm.services.live_tunnel import attach

_sock = Sock()  # flask-sock: its route decorator only (routes go on the blueprint)


def create_blueprint() -> Blueprint:
    bp = Blueprint("agent_tunnel", __name__)
    bp.before_request(_attach)
    _sock.route("/agent/live/<channel>", bp=bp, endpoint="live")(_tunnel)
    return bp


def _attach():
    """Before the upgrade: who the agent is, and the viewer's stream it reaches."""
    caller = authenticate_bearer(request.headers.get("Authorization"))
    name = request.args.get("name", "")
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name", "the agent's name is required")
    farm = current_app.extensions["browserfarm"]
    g.live_viewer = attach(farm, caller, name, request.view_args["channel"])


def _tunnel(ws, channel):
    """The agent's bytes (its window's VNC server) to the viewer and back."""
    current_app.extensions["browserfarm"].db.close()  # no connection held meanwhile
    bridge(ws.receive, ws.send, g.live_viewer)
