"""Our flask-smorest ``Api`` and ``Blueprint``: every error leaves through
``browserfarm.api.errors``, bodies are JSON whatever their Content-Type, and
validation errors are the window API's 211 (HTTP 400)."""
from __future__ import annotations

import functools
import select
import socket

import flask_smorest
from flask import current_app
from webargs import core
from webargs.flaskparser import FlaskParser

from browserfarm.api import envelope, errors, strict_json


class JsonBodyParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _get_schema(self, argmap, req):
        # One instance per schema class (webargs makes one per request: copying its
        # fields was a fifth of a cached /browser/list).
        if isinstance(argmap, type):
            return _schema_instance(argmap)
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        # Scripts often POST JSON without the header (curl -d): read it anyway.
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return strict_json.loads(data.decode())
        except (UnicodeDecodeError, strict_json.NotJson) as exc:
            return self._handle_invalid_json_error(exc, req)
        except strict_json.Refused as exc:
            flask_smorest.abort(400, messages={"json": {exc.path or "body": [exc.message]}})

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        flask_smorest.abort(400, messages={"json": ["Request body is not valid JSON"]})


@functools.cache
def _schema_instance(schema_class):
    return schema_class()


class Api(flask_smorest.Api):
    ERROR_SCHEMA = envelope.ErrorEnvelopeSchema

    def handle_http_exception(self, error):
        return errors.render(error)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonBodyParser()


def farm():
    """The current app's Farm (see app.create_app)."""
    return current_app.extensions["browserfarm"]


def hung_up(connection: socket.socket) -> bool:
    """Whether the client of ``connection`` closed it: readable, with nothing to read.
    For a long wait (an agent's poll) that should end when its caller is gone."""
    try:
        if not select.select([connection], [], [], 0)[0]:
            return False
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError, ValueError):  # ValueError: TLS sockets
        return False
    except OSError:
        return True
