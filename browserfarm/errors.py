"""Every error the farm raises, in one hierarchy. Each carries what any API surface
needs to answer it: the HTTP ``status``, the window envelope's ``code``, the message
``msg``, the envelope's ``data``, and for the worker API v5 the ``errors`` naming each
bad field and extra ``headers`` (Retry-After). Services raise them and know nothing of
shapes: ``browserfarm.api.errors`` renders them per API surface."""
from __future__ import annotations

#: The spec's own words for a config that isn't an object (kept verbatim).
CONFIG_NOT_OBJECT = "Configuration must be a JSON object"


class FarmError(Exception):
    """The server failed (500), unless a subclass says what the caller got wrong."""
    status = 500
    code = 500

    def __init__(self, msg: str, data: dict | None = None, *, errors: list | None = None,
                 headers: dict | None = None):
        super().__init__(msg)
        self.msg = msg
        self.data = data or {}
        self.errors = errors or []  # v5's [{"field", "code", "message"}]
        self.headers = headers or {}


class BadRequest(FarmError):
    """The request can't be read (a body that isn't JSON, ...)."""
    code = 211
    status = 400


class InvalidInput(BadRequest):
    """Missing parameter, wrong type or unsupported combination; names the field."""

    def __init__(self, field: str, msg: str, **details):
        super().__init__(f"{field}: {msg}", {"field": field, **details},
                         errors=[invalid(field, msg)])
        self.field = field


class Unauthorized(FarmError):
    code = 401
    status = 401


class Forbidden(FarmError):
    code = 403
    status = 403


class NotFound(FarmError):
    code = 404
    status = 404


class MethodNotAllowed(FarmError):
    """The path exists, the method doesn't (the renderer adds ``Allow``)."""
    code = 211
    status = 405


class TooLarge(FarmError):
    """The body is over the app's limit."""
    code = 211
    status = 413


class Unprocessable(FarmError):
    """Understood, and refused for what it asks of its target now (a worker that is
    not running, a browser that did not answer): v5's 422 with a message."""
    code = 211
    status = 422


class ValidationFailed(Unprocessable):
    """v5's 422 naming every bad field (see ``invalid`` and ``required``)."""

    def __init__(self, errors: list[dict]):
        super().__init__("Validation Failed", {"field": errors[0]["field"]} if errors else {},
                         errors=errors)


class TooManyRequests(FarmError):
    """Over the rate limit; ``retry_after`` says when to come back (seconds)."""
    code = 429
    status = 429

    def __init__(self, limit: str, retry_after: int):
        super().__init__(f"Too many requests: the limit is {limit}",
                         headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class UpstreamError(FarmError):
    """Another server we call (the cloud, for the agent) answered with an error or
    not at all: its code, message and status are passed on."""

    def __init__(self, code: int, msg: str, data: dict | None = None, status: int = 500):
        super().__init__(msg, data)
        self.code, self.status = code, status


def invalid(field: str, message: str) -> dict:
    """One of v5's ``errors``: a field with a wrong value."""
    return {"field": field, "code": "invalid", "message": message}


def required(field: str) -> dict:
    """One of v5's ``errors``: a field that is missing."""
    return {"field": field, "code": "required", "message": f"{field} is required"}
