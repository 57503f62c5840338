"""The window API's answer shape, ``{code, msg, data}``, and its error codes.

| code | HTTP | meaning                                              |
|------|------|------------------------------------------------------|
| 0    | 200  | success                                              |
| 211  | 400  | missing parameter, wrong type, unsupported combination |
| 401  | 401  | no or invalid token (cloud) / not logged in (local)  |
| 403  | 403  | the token lacks the endpoint's permission            |
| 404  | 404  | unknown API, or unknown / foreign id                 |
| 500  | 500  | the server failed                                    |
"""
from __future__ import annotations

import json

from flask import current_app, jsonify
from marshmallow import Schema, fields

from browserfarm.errors import FarmError
from browserfarm.services.revisions import EncodedJson
from browserfarm.errors import CONFIG_NOT_OBJECT

STATUS_OF_CODE = {0: 200, 211: 400, 401: 401, 403: 403, 404: 404, 500: 500}


class ErrorEnvelopeSchema(Schema):
    code = fields.Integer(required=True, metadata={"enum": sorted(STATUS_OF_CODE)})
    msg = fields.String(required=True)
    data = fields.Dict(required=True)


def envelope_schema(data_schema, name: str) -> type[Schema]:
    """A ``{code, msg, data}`` schema whose data is ``data_schema``."""
    return Schema.from_dict({"code": fields.Integer(required=True),
                             "msg": fields.String(required=True),
                             "data": fields.Nested(data_schema, required=True)}, name=name)


def success(data, msg: str = "success"):
    """The answer, already in the API's shape: services build it, the view's
    documented schema describes it (schemathesis checks they agree), so it is not
    serialised a second time."""
    if isinstance(data, EncodedJson):
        body = f'{{"code":0,"msg":{json.dumps(msg)},"data":{data}}}'
        return current_app.response_class(body, mimetype="application/json")
    return jsonify({"code": 0, "msg": msg, "data": data})


def failure(code: int, msg: str, data: dict | None = None, status: int | None = None):
    response = jsonify({"code": code, "msg": msg, "data": data or {}})
    response.status_code = status or STATUS_OF_CODE.get(code, 400)
    return response


def from_farm_error(error: FarmError):
    return failure(error.code, error.msg, error.data, error.status)


def from_http_exception(error):
    """Werkzeug/webargs errors in our shape; validation errors name the field."""
    status = error.code or 500
    if status in (400, 422) and getattr(error, "data", None) and "messages" in error.data:
        return validation_failure(error.data["messages"])
    if status == 404:
        return failure(404, "API not found", status=404)
    if status == 405:
        return failure(211, "Method not allowed: use POST with a JSON body", status=405)
    if status == 413:
        return failure(211, "Request body too large", status=413)
    if status == 401:
        return failure(401, error.description or "Unauthorized")
    if status >= 500:
        return failure(500, "Internal server error", status=status)
    return failure(211, error.description or error.name, status=400)


def validation_failure(messages: dict):
    """Turn webargs' ``{location: {field: [msg]}}`` into one 211 naming the first field."""
    errors = _flatten(messages.get("json", messages))
    if not errors:
        return failure(211, "Invalid request")
    path, text = errors[0]
    if path == "_schema":
        path, msg = "body", "Request body must be a JSON object"
    elif path == "":
        path, msg = "body", text
    elif text == CONFIG_NOT_OBJECT:
        msg = text
    else:
        msg = f"{path}: {text}"
    return failure(211, msg, {"field": path, "errors": dict(errors)})


def _flatten(messages, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, str):
        return [(prefix, messages)]
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return [(prefix, " ".join(messages))]
        return [pair for m in messages for pair in _flatten(m, prefix)]
    out = []
    for key, value in messages.items():
        if key == "_schema" and prefix:  # an error of the nested object as a whole
            for _, text in _flatten(value)[:1]:
                wrong_type = text == "Invalid input type."
                out.append((prefix, "Must be a JSON object." if wrong_type else text))
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if prefix and isinstance(key, int):
            path = f"{prefix}[{key}]"
        out.extend(_flatten(value, path))
    return out
