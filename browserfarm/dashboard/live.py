"""The live view on the dashboard: noVNC in the page, its WebSocket on the dashboard's
own origin, bridged to the VNC server on the browser's display
(browserfarm.browsers.liveview). A person may watch and take over (mouse, keyboard,
scroll) a running worker with ``browser:open``, what stopping it takes; a read-only
member sees no view.

A share link lets someone without a token watch one worker: made by a signed-in person
who may view it, signed with the session's key, it names the worker, its account and
the token that made it, and works SHARE_SECONDS (10 minutes); a view through it ends
then too. Once that token is revoked or loses ``browser:open``, the link opens no view,
and the views open through it end within seconds (liveview.ALLOWED_EVERY), as a signed-in
person's views end with their token, or with their session (signed out, expired).

A window open on an agent on another machine is reached through that agent's own
outbound connection (services/live_tunnel.py); one on an agent sharing this data dir
(the embedded farm), directly.

The WebSocket is refused before the upgrade (an error page, as every page's) unless the
caller may view: the signed-in session (auth) or a live share link, and a request from
another site's page (its Origin) is refused too.
"""
from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, request, session, url_for
from flask_sock import Sock
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from browserfarm import permissions
from browserfarm.agent.registry import Registry
from browserfarm.browsers.handles import Handle
from browserfarm.browsers.liveview import (FRAME_EVERY, LocalDisplay, Target, Unavailable,
                                           bridge)
from browserfarm.dashboard.auth import current_caller
from browserfarm.errors import Forbidden, NotFound, Unprocessable
from browserfarm.models import ApiToken, DashboardSession, Window, Worker, utcnow
from browserfarm.models import Runner as RunnerRow
from browserfarm.security import digest
from browserfarm.services.live_tunnel import Tunnel

SHARE_SECONDS = 600
SHARE_SALT = "live view share"
WEBSOCKET_ENDPOINTS = {"dashboard.live_worker_websocket", "dashboard.live_window_websocket",
                       "dashboard.live_shared_websocket"}

_sock = Sock()  # flask-sock: its route decorator only (routes go on the blueprint)


def register(bp: Blueprint) -> None:
    bp.before_request(_check_websocket)
    bp.add_url_rule("/workers/<int:worker_id>/live/share", "live_share", share,
                    methods=["POST"])
    bp.add_url_rule("/live/<token>", "live_shared", shared_page)
    _sock.route("/workers/<int:worker_id>/live/websocket", bp=bp,
                endpoint="live_worker_websocket")(_websocket)
    _sock.route("/windows/<int:window_id>/live/websocket", bp=bp,
                endpoint="live_window_websocket")(_websocket)
    _sock.route("/live/<token>/websocket", bp=bp,
                endpoint="live_shared_websocket")(_websocket)


# ----- what a view reaches (no Flask) -------------------------------------------------

@dataclass(frozen=True)
class Share:
    """What a share link grants: one worker of one account, until ``expires``."""
    account_id: int
    worker_id: int
    token_id: int
    expires: float


def worker_target(farm, account_id: int, worker_id: int) -> Target:
    """The display of the account's running worker, to bridge a viewer to."""
    worker = Worker.get_or_none(Worker.id == worker_id, Worker.account == account_id)
    if worker is None:
        raise NotFound(f"There is no worker {worker_id} in this account.")
    if worker.status != "running" or not worker.handle:
        raise Unprocessable(f"Worker {worker_id} is not running: there is nothing to view.")
    runner = RunnerRow.get_or_none(RunnerRow.name == worker.runner)
    if runner is not None and runner.host != socket.gethostname():
        raise Unprocessable(f"Worker {worker_id} runs on another machine ({runner.host}); "
                            "its live view is shown only on that machine's dashboard.")
    target = LocalDisplay.of(Handle.from_json(worker.handle), farm.settings.data)
    if target is None:
        raise Unprocessable(f"Worker {worker_id}'s browser has no display of its own "
                            "(headless, or on a Grid): there is no live view of it.")
    return target


def window_target(farm, caller, window_id: int) -> Target:
    """The display of the caller's account's open window: directly when its agent
    shares this data dir (the embedded farm), else through a tunnel its agent opens."""
    window = Window.get_or_none(Window.id == window_id, Window.account == caller.account_id)
    if window is None:
        raise NotFound(f"There is no window {window_id} in this account.")
    if window.open_status != "opened":
        raise Unprocessable(f"Window {window_id} is not open: there is nothing to view.")
    entry = Registry(farm.settings.data).left_behind().get(window.uuid)
    if entry is None:
        if not window.open_agent:
            raise Unprocessable(f"Window {window_id} is open on no known agent: there is "
                                "no live view of it.")
        return Tunnel(farm, caller, window.id, window.open_agent)
    target = LocalDisplay.of(Handle.from_json(entry["handle"]), farm.settings.data)
    if target is None:
        raise Unprocessable(f"Window {window_id} has no display of its own (opened "
                            "headless, or on a desktop's screen): there is no live view.")
    return target


def make_share(secret: bytes, share: Share) -> str:
    return _serializer(secret).dumps([share.account_id, share.worker_id, share.token_id])


def read_share(secret: bytes, text: str) -> Share:
    """The share a link's token grants, while it lasts and its maker's token may still
    view; Forbidden otherwise."""
    try:
        (account_id, worker_id, token_id), signed = _serializer(secret).loads(
            text, max_age=SHARE_SECONDS, return_timestamp=True)
    except SignatureExpired:
        raise Forbidden("This share link has expired: ask for a new one.") from None
    except (BadSignature, ValueError, TypeError):
        raise Forbidden("This is not a share link of this farm.") from None
    if not may_view(account_id, token_id):
        raise Forbidden("The token that made this share link was revoked or may no "
                        "longer view this worker.")
    return Share(account_id, worker_id, token_id, signed.timestamp() + SHARE_SECONDS)


def may_view(account_id: int, token_id: int) -> bool:
    """Whether the token behind a view (its maker's, or the session's) may still
    view: not revoked, of the account, with ``browser:open``."""
    token = ApiToken.get_or_none(ApiToken.id == token_id, ApiToken.revoked_at.is_null())
    return token is not None and token.account_id == account_id \
        and permissions.BROWSER_OPEN in token.permissions


def session_lasts(key_hash: str) -> bool:
    """Whether a dashboard sign-in (its key's hash) still lasts: neither signed out nor
    expired."""
    return DashboardSession.select().where(DashboardSession.key_hash == key_hash,
                                           DashboardSession.expires_at > utcnow()).exists()


def _serializer(secret: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SHARE_SALT)


# ----- views --------------------------------------------------------------------------

def _farm():
    return current_app.extensions["browserfarm"]


def share(worker_id: int):
    """A link to this worker's live view for someone without a token (10 minutes)."""
    caller = current_caller()
    caller.require(permissions.BROWSER_OPEN)
    worker_target(_farm(), caller.account_id, worker_id)  # it exists, runs, is seen here
    token = make_share(current_app.secret_key, Share(caller.account_id, worker_id,
                                                     caller.token_id, 0))
    link = url_for("dashboard.live_shared", token=token, _external=True)
    return render_template("live/_share.html", link=link, minutes=SHARE_SECONDS // 60)


def shared_page(token: str):
    granted = read_share(current_app.secret_key, token)
    return render_template("live/shared.html", worker_id=granted.worker_id,
                           expires=time.strftime("%H:%M:%S", time.gmtime(granted.expires)),
                           websocket=url_for("dashboard.live_shared_websocket", token=token))


def _check_websocket():
    """Before a live view's WebSocket is accepted: who asks, and what it will reach
    (g.live_target, g.live_until). Refusals are pages, before any upgrade."""
    if request.endpoint not in WEBSOCKET_ENDPOINTS:
        return
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("The live view is only shown on the dashboard's own pages.")
    args = request.view_args or {}
    if request.endpoint == "dashboard.live_shared_websocket":
        granted = read_share(current_app.secret_key, args["token"])
        g.live_until = granted.expires
        g.live_viewer = (granted.account_id, granted.token_id, None)
        g.live_target = worker_target(_farm(), granted.account_id, granted.worker_id)
        return
    caller = current_caller()
    caller.require(permissions.BROWSER_OPEN)
    g.live_until = None
    # The sign-in too: a view ends when its person signs out or the session expires.
    g.live_viewer = (caller.account_id, caller.token_id, digest(session["key"]))
    if "window_id" in args:
        g.live_target = window_target(_farm(), caller, args["window_id"])
    else:
        g.live_target = worker_target(_farm(), caller.account_id, args["worker_id"])


def _websocket(ws, **_):
    """The viewer's bytes to the VNC server and back, until either ends."""
    farm = _farm()
    farm.db.close()  # a view lasts long: no database connection held meanwhile
    try:
        server = g.live_target.connect()
    except Unavailable as error:
        _refuse(ws, str(error))
        return

    def allowed(viewer=g.live_viewer) -> bool:
        account_id, token_id, key_hash = viewer
        with farm.db.connection_context():  # opened for the look only
            return may_view(account_id, token_id) and (
                key_hash is None or session_lasts(key_hash))
    bridge(ws.receive, ws.send, server, until=g.live_until, allowed=allowed,
           frame_every=FRAME_EVERY)


def _refuse(ws, reason: str) -> None:
    """Tell the viewer why there is no view as RFB does, a handshake with no security
    types and the reason (noVNC shows it: its "securityfailure"), and close saying it."""
    ws.send(b"RFB 003.008\n")
    ws.receive(5)  # the viewer's version: the answer is the same for any
    text = reason.encode()
    ws.send(b"\0" + struct.pack(">I", len(text)) + text)
    ws.close(reason=1011, message=reason[:120])
