"""The worker API v5 in ``/openapi.json``, next to the window API. v5's views are plain
Flask (its errors and bodies are BrowserStack's, not the envelope), so its paths are
described here, as data, rather than derived from marshmallow schemas."""
from __future__ import annotations

ERROR = {"type": "object", "required": ["message"], "properties": {
    "message": {"type": "string"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "code": {"type": "string", "enum": ["required", "invalid"]},
        "message": {"type": "string"}}}}}}

WORKER = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "status": {"type": "string", "enum": ["queue", "running", "terminated"]},
    "os": {"type": "string"}, "os_version": {"type": "string"},
    "browser": {"type": "string", "nullable": True},
    "browser_version": {"type": "string", "nullable": True},
    "device": {"type": "string", "nullable": True},
    "real_mobile": {"type": "boolean", "nullable": True},
    "url": {"type": "string"}, "name": {"type": "string", "nullable": True},
    "build": {"type": "string", "nullable": True},
    "project": {"type": "string", "nullable": True},
    "resolution": {"type": "string"}, "timeout": {"type": "integer"},
    "browser_url": {"type": "string"}, "sessionId": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "started_at": {"type": "string", "format": "date-time", "nullable": True}}}

NEW_WORKER = {"type": "object", "required": ["os", "os_version", "url"], "properties": {
    "os": {"type": "string", "example": "Linux"},
    "os_version": {"type": "string"},
    "browser": {"type": "string", "example": "firefox",
                "description": "Required on desktop operating systems."},
    "browser_version": {"type": "string", "description": "Required on desktop operating "
                                                         "systems; `latest` works."},
    "device": {"type": "string"},
    "url": {"type": "string", "example": "https://example.com/"},
    "timeout": {"type": "integer", "minimum": 60, "maximum": 1800, "default": 300},
    "resolution": {"type": "string", "default": "1024x768"},
    "name": {"type": "string"}, "build": {"type": "string"}, "project": {"type": "string"},
    "browserstack.video": {"type": "boolean", "default": False},
    "window": {"type": "string", "format": "uuid",
               "description": "Beyond v5: run with this browser window's proxy and "
                              "fingerprint."}}}

WORKER_ID = {"name": "worker_id", "in": "path", "required": True,
             "schema": {"type": "string"}}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict:
    """v5's error answers: every operation can also answer 401, 403 (out of API time)
    and 429."""
    reasons = {400: "The body is not valid JSON", 401: "No or wrong credentials",
               403: "Not your worker, or out of API time", 404: "Not found",
               405: "Method not allowed", 422: "Validation failed, or not running",
               429: "Over the rate limit (see Retry-After)"}
    return {str(code): {"description": reasons[code], "content": _json(ERROR)}
            for code in sorted({401, 403, 405, 429, *codes})}


def _ok(description: str, content: dict) -> dict:
    return {"200": {"description": description, "content": content}}


def _op(summary: str, responses: dict, *codes: int, parameters=(), body=None) -> dict:
    operation = {"tags": ["Worker API v5"], "summary": summary,
                 "security": [{"basicAuth": []}], "parameters": list(parameters),
                 "responses": responses | _errors(*codes)}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def operations() -> dict[str, dict]:
    """OpenAPI path items by the Flask rule they describe."""
    worker = _ok("The worker", _json(WORKER))
    shot = {"description": "The viewport (png) or where it is stored (json, xml)",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                        "text/json": {"schema": {"type": "object", "properties": {
                            "url": {"type": "string"}}}},
                        "text/xml": {"schema": {"type": "string"}}}}
    return {
        "/5": {"get": _op("The API's root", _ok("Nothing more", _json({"type": "object"})))},
        "/5/browsers": {"get": _op(
            "Browsers by OS and version (`flat=true`: one list)",
            _ok("The catalogue", _json({})),
            parameters=[{"name": "flat", "in": "query", "schema": {"type": "boolean"}}])},
        "/5/worker": {"post": _op(
            "Create a worker: answers once its page has loaded, or at once with status "
            "`queue` when the account's sessions are in use",
            _ok("Created", _json({"type": "object", "properties": {
                "id": {"type": "integer"}, "url": {"type": "string"},
                "status": {"type": "string"}, "error": {"type": "string"}}})),
            400, 422, body=NEW_WORKER)},
        "/5/workers": {"get": _op("The account's queued and running workers",
                                  _ok("Workers", _json({"type": "array", "items": WORKER})))},
        "/5/worker/<worker_id>": {
            "get": _op("One worker (an empty object once terminated)", worker,
                       parameters=[WORKER_ID]),
            "delete": _op("Terminate: at once when queued, else at 60 s of running at "
                          "the earliest (422 before)",
                          _ok("Its time", _json({"type": "object", "properties": {
                              "time": {"type": "number"}}})), 422, parameters=[WORKER_ID])},
        "/5/worker/<worker_id>/url.json": {"put": _op(
            "Load another URL in a running worker",
            _ok("Done", _json({"type": "object", "properties": {
                "message": {"type": "string"}}})), 400, 422, parameters=[WORKER_ID],
            body={"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string"}}})},
        "/5/worker/<worker_id>/screenshot.<fmt>": {"get": _op(
            "A screenshot of a running worker", {"200": shot}, 422, parameters=[
                WORKER_ID, {"name": "fmt", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": ["png", "json", "xml"]}}])},
        "/5/worker/<worker_id>/video": {"get": _op(
            "Beyond v5: the recording of an ended `browserstack.video` worker",
            _ok("MP4", {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}),
            404, parameters=[WORKER_ID])},
        "/5/screenshots/<key>.png": {"get": {
            "tags": ["Worker API v5"], "security": [],
            "summary": "A stored screenshot: the URL a json or xml screenshot gave (its "
                       "key is the credential)",
            "parameters": [{"name": "key", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The PNG", "content": {"image/png": {
                "schema": {"type": "string", "format": "binary"}}}}} | _errors(404)}},
        "/5/status": {"get": _op("Time used and available, sessions running and allowed",
                                 _ok("Status", _json({"type": "object", "properties": {
                                     "used_time": {"type": "number"},
                                     "total_available_time": {},
                                     "running_sessions": {"type": "integer"},
                                     "sessions_limit": {"type": "integer"}}})))},
    }


def document(spec, url_map) -> None:
    """Add v5 to flask-smorest's ``APISpec``, path by path from the app's own rules (the
    aliases, such as ``/5/`` or ``screenshot`` chosen by ``Accept``, are left out)."""
    spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    spec.tag({"name": "Worker API v5", "description": "BrowserStack's REST API v5: "
              "HTTP Basic with the account's v5 username and access key."})
    rules = {rule.rule: rule for rule in url_map.iter_rules()}
    for rule, item in operations().items():
        spec.path(rule=rules[rule], operations=item)
