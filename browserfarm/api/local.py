"""The Local API (shared/spec/browser-window-api.txt, Local API parts): the agent's
HTTP face on 127.0.0.1. ``/browser/open`` and ``/browser/close`` act on this desktop;
every other ``/browser/*`` call is forwarded to the cloud with the agent's login."""
from __future__ import annotations

import hmac
import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from browserfarm.api import envelope, errors
from browserfarm.errors import FarmError, Forbidden, InvalidInput, Unauthorized

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def create_local_app(agent) -> Flask:
    app = Flask("browserfarm-local")
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024

    @app.before_request
    def _guard():
        # A web page must not drive the agent: loopback Host only (DNS rebinding),
        # and no browser request from another origin.
        if request.host.rsplit(":", 1)[0] not in LOOPBACK_HOSTS:
            raise Forbidden("Host must be a loopback name")
        origin = request.headers.get("Origin")
        if origin and _host_of(origin) not in LOOPBACK_HOSTS:
            raise Forbidden("Requests from web pages are refused")
        if not agent.login.logged_in:
            raise Unauthorized("Client not logged in: run `browserfarm login`")
        given = request.headers.get("X-Cos-Local-Token", "")
        if not hmac.compare_digest(given.encode(), agent.login.local_token.encode()):
            raise Unauthorized("Invalid local access token")

    @app.post("/browser/open")
    def open_window():
        return envelope.success(agent.open_window(_body()), "Browser opened")

    @app.post("/browser/close")
    def close_window():
        return envelope.success(agent.close_window(_body()), "Browser closed")

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

    @app.post("/browser/<path:rest>")
    def forward(rest):
        status, answer = agent.cloud.forward(f"/browser/{rest}", _body())
        response = jsonify(answer)
        response.status_code = status
        return response

    app.register_error_handler(FarmError, errors.envelope)
    app.register_error_handler(HTTPException, errors.envelope)  # 404, 405 (Allow), 413
    app.register_error_handler(Exception, _failed)
    return app


def _failed(error: Exception):
    log.exception("the Local API failed on %s %s", request.method, request.path)
    return errors.envelope(FarmError(
        f"Local service execution failed: {error.__class__.__name__}"))


def _body() -> dict:
    body = request.get_json(force=True, silent=True)
    if body is None and request.get_data():
        raise InvalidInput("body", "Request body is not valid JSON")
    if body is not None and not isinstance(body, dict):
        raise InvalidInput("body", "Request body must be a JSON object")
    return body or {}


def _host_of(origin: str) -> str:
    host = origin.split("://", 1)[-1].split("/", 1)[0]
    return host if host.startswith("[") and host.endswith("]") else host.rsplit(":", 1)[0]
