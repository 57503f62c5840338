"""Where an error becomes an answer: one function per API surface.

- ``envelope``: the window API's ``{code, msg, data}``, for the cloud API and the
  Local API alike (codes and statuses: ``browserfarm.api.envelope``);
- ``v5``: the worker API v5's ``{"message"[, "errors"]}`` with ``X-API-Version: 5``,
  ``WWW-Authenticate`` on a 401 and the error's own headers (``Retry-After``).

Both take a ``FarmError`` (browserfarm.errors) or one of werkzeug's HTTP errors (404,
405, 413, 500, and webargs' validation errors); a 405 says which methods the path
allows (``Allow``) on every surface. ``render`` picks the surface of the request."""
from __future__ import annotations

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from browserfarm.errors import (CONFIG_NOT_OBJECT, BadRequest, FarmError, MethodNotAllowed,
                                NotFound, TooLarge, Unauthorized)

V5_PREFIX = "/5"
# BrowserStack's older APIs: a v5 client left at its default (the node client's is 4)
# calls them, and is told where the API is, in v5's shape.
OLDER_V5_PREFIXES = ("/1", "/2", "/3", "/4")
V5_ELSEWHERE = "Not Found: this farm serves BrowserStack's API v5, under /5"
V5_REALM = 'Basic realm="BrowserFarm v5"'


def render(error: FarmError | HTTPException):
    """The app's error handler: v5's shape for v5's paths (routing errors happen
    before any blueprint is chosen, so the path decides), else the envelope."""
    return v5(error) if is_v5_path(request.path) else envelope(error)


def is_v5_path(path: str) -> bool:
    return any(_under(path, prefix) for prefix in (V5_PREFIX, *OLDER_V5_PREFIXES))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def envelope(error: FarmError | HTTPException):
    headers = _allow(error)
    if isinstance(error, HTTPException):
        error = _envelope_error(error)
    response = jsonify({"code": error.code, "msg": error.msg, "data": error.data})
    response.status_code = error.status
    response.headers.update(error.headers | headers)
    return response


def v5(error: FarmError | HTTPException):
    headers = _allow(error)
    if isinstance(error, HTTPException):
        status = error.code or 500
        outside = status == 404 and not _under(request.path, V5_PREFIX)
        body = {"message": V5_ELSEWHERE if outside else error.name}
    else:
        status, headers = error.status, error.headers | headers
        body = {"message": error.msg} | ({"errors": error.errors} if error.errors else {})
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    if status == 401:
        response.headers["WWW-Authenticate"] = V5_REALM
    response.headers["X-API-Version"] = "5"
    return response


def _allow(error) -> dict:
    """A 405's ``Allow`` header (werkzeug knows the path's methods)."""
    if isinstance(error, HTTPException):
        return {k: v for k, v in error.get_headers() if k == "Allow"}
    return {}


def _envelope_error(error: HTTPException) -> FarmError:
    """Werkzeug's and webargs' errors as the window API words them."""
    status = error.code or 500
    messages = (getattr(error, "data", None) or {}).get("messages")
    if status in (400, 422) and messages:
        return validation_error(messages)
    if status == 404:
        return NotFound("API not found")
    if status == 405:
        return MethodNotAllowed("Method not allowed: use POST with a JSON body")
    if status == 413:
        return TooLarge("Request body too large")
    if status == 401:
        return Unauthorized(error.description or "Unauthorized")
    if status >= 500:
        failed = FarmError("Internal server error")
        failed.status = status
        return failed
    return BadRequest(error.description or error.name)


def validation_error(messages: dict) -> BadRequest:
    """webargs' ``{location: {field: [msg]}}`` as one 211 naming the first field."""
    errors = _flatten(messages.get("json", messages))
    if not errors:
        return BadRequest("Invalid request")
    path, text = errors[0]
    if path == "_schema":
        path, msg = "body", "Request body must be a JSON object"
    elif path == "":
        path, msg = "body", text
    elif text == CONFIG_NOT_OBJECT:
        msg = text
    else:
        msg = f"{path}: {text}"
    return BadRequest(msg, {"field": path, "errors": dict(errors)})


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
