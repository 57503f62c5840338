"""The Local API (shared/spec/browser-window-api.txt, Local API parts): the agent's
HTTP face on 127.0.0.1. ``/browser/open`` and ``/browser/close`` act on this desktop;
the spec's window calls (``FORWARDED``) are forwarded to the cloud with the agent's
login, and nothing else: the agent's login may do more than a script should."""
from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from browserfarm.agent.commands import CLOSED, LOCAL_FAILED, OPENED
from browserfarm.api import envelope, errors, strict_json
from browserfarm.errors import FarmError, Forbidden, InvalidInput, Unauthorized

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The cloud calls a script may make through the Local API: the spec's window calls,
# and the recycle bin's list. Matched as whole paths after decoding (see _forwarded).
FORWARDED = ("/browser/update", "/browser/update/partial", "/browser/detail",
             "/browser/list", "/browser/delete", "/browser/delete/ids",
             "/browser/group/update", "/browser/remark/update", "/browser/proxy/update",
             "/browser/recycle/list")


def make_local_server(agent, port: int) -> BaseWSGIServer:
    """The Local API's HTTP server on 127.0.0.1 (port 0: any free port)."""
    return make_server("127.0.0.1", port, create_local_app(agent), threaded=True,
                       request_handler=_RawTargetHandler)


class _RawTargetHandler(WSGIRequestHandler):
    """Gives the app the request target as sent: Python's http.server reduces a
    leading "//" to "/" before werkzeug sets RAW_URI/REQUEST_URI from it."""

    def make_environ(self):
        environ = super().make_environ()
        words = self.requestline.split()
        if len(words) >= 2:
            environ["RAW_URI"] = environ["REQUEST_URI"] = words[1]
        return environ


def create_local_app(agent) -> Flask:
    app = Flask("browserfarm-local")
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.url_map.merge_slashes = False  # "/browser//list" is no path of ours: 404

    @app.before_request
    def _guard():
        # A web page must not drive the agent: loopback Host only (DNS rebinding),
        # and no browser request from another origin.
        if not _loopback("//" + request.host):
            raise Forbidden("Host must be a loopback name")
        origin = request.headers.get("Origin")
        if origin and not _loopback(origin):
            raise Forbidden("Requests from web pages are refused")
        if not agent.login.logged_in:
            raise Unauthorized("Client not logged in: run `browserfarm login`")
        given = request.headers.get("X-Cos-Local-Token", "")
        if not hmac.compare_digest(given.encode(), agent.login.local_token.encode()):
            raise Unauthorized("Invalid local access token")
        if "//" in _raw_path():
            raise NotFound()  # the server reads "//browser/list" as "/browser/list"

    @app.post("/browser/open")
    def open_window():
        return envelope.success(agent.open_window(_body()), OPENED)

    @app.post("/browser/close")
    def close_window():
        return envelope.success(agent.close_window(_body()), CLOSED)

    @app.post("/browser/pids")
    def pids():
        return envelope.success(agent.pids())

    @app.post("/browser/ports")
    def ports():
        return envelope.success(agent.ports())

    @app.post("/browser/cookies")
    def cookies():
        return envelope.success(agent.cookies(_body()))

    @app.post("/browser/close/all")
    def close_all():
        return envelope.success(agent.close_all())

    @app.post("/browser/closing/reset")
    def reset():
        return envelope.success(agent.reset(_body()))

    def forward():
        status, answer = agent.cloud.forward(_forwarded(), _body())
        response = jsonify(answer)
        response.status_code = status
        return response

    for path in FORWARDED:
        app.add_url_rule(path, f"forward {path}", forward, methods=["POST"])

    app.register_error_handler(FarmError, errors.envelope)
    app.register_error_handler(HTTPException, errors.envelope)  # 404, 405 (Allow), 413
    app.register_error_handler(Exception, _failed)
    return app


def _failed(error: Exception):
    log.exception("the Local API failed on %s %s", request.method, request.path)
    return errors.envelope(FarmError(
        f"{LOCAL_FAILED}: {error.__class__.__name__}"))


def _body() -> dict:
    data = request.get_data()
    try:
        body = strict_json.loads(data) if data else None
    except strict_json.NotJson:
        body = None
    except strict_json.Refused as exc:
        raise InvalidInput(exc.path or "body", exc.message) from None
    if body is None and data:
        raise InvalidInput("body", "Request body is not valid JSON")
    if body is not None and not isinstance(body, dict):
        raise InvalidInput("body", "Request body must be a JSON object")
    return body or {}


def _forwarded() -> str:
    """The cloud path of a forwarded call: the allowed route it matched (a whole
    path, after decoding: no dot segments get through), never text of the request.
    A path that matches only once an encoded slash or backslash is decoded is
    refused as unknown."""
    if any(encoded in _raw_path().lower() for encoded in ("%2f", "%5c")):
        raise NotFound()
    return request.url_rule.rule


def _raw_path() -> str:
    """The path of the request target as the client sent it (RAW_URI/REQUEST_URI,
    see _RawTargetHandler): the server reads "//browser/list" as "/browser/list",
    so PATH_INFO cannot tell. A test client sets neither: its path then."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw is None:
        return request.path
    path = raw.split("?", 1)[0]
    return path if path.startswith("/") else urlsplit(path).path  # absolute form


def _loopback(url: str) -> bool:
    """Whether the host of ``url`` (an Origin, or ``//`` + a Host header) is a
    loopback name: anything else is a web page's, or a rebound DNS name's."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS
