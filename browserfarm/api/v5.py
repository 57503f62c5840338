"""The worker API v5 (BrowserStack's dialect, ``../shared/spec/worker-api-v5.txt``):
HTTP Basic with the account's v5 username and access key, JSON answers with
``X-API-Version: 5``, errors as ``{"message"[, "errors"]}`` (browserfarm.api.errors).
Views parse (browserfarm.api.v5_schemas), call WorkerService, serialise."""
from __future__ import annotations

from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import flask
from flask import current_app, g, jsonify, request, send_file, url_for
from webargs.flaskparser import FlaskParser

from browserfarm.api import strict_json
from browserfarm.api import v5_schemas as schemas
from browserfarm.api.base import Blueprint, farm
from browserfarm.api.errors import V5_PREFIX
from browserfarm.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed, invalid
from browserfarm.ratelimit import RateLimit
from browserfarm.services.workers import (OUT_OF_TIME, WorkerService, authenticate_basic,
                                          screenshot_format, stored_screenshot)

BODY = "body"  # v5's request location: JSON, a form or the query string


class V5Parser(FlaskParser):
    """Reads what v5 clients send: a JSON body (whatever its Content-Type), a form,
    or the query string; refusals in v5's words."""

    __location_map__ = dict(FlaskParser.__location_map__, **{BODY: "load_v5_body"})

    def load_v5_body(self, req, schema):
        data = req.get_data(cache=True)
        if not data:
            return req.args.to_dict()
        if req.mimetype == "application/x-www-form-urlencoded" or req.form:
            return req.form.to_dict()
        try:
            body = strict_json.loads(data)
        except strict_json.NotJson:
            raise BadRequest("The body is not valid JSON",
                             errors=[invalid("body", "not valid JSON")]) from None
        except strict_json.Refused as exc:
            raise ValidationFailed([invalid(exc.path or "body", exc.message)]) from None
        if not isinstance(body, dict):
            raise ValidationFailed([invalid("body", "must be a JSON object")])
        return body

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        (messages,) = error.messages.values()  # {location: {field: [message]}}
        raise ValidationFailed(schemas.v5_errors(messages))


# What each error status means in v5 (documented on the operations that answer it).
REASONS = {400: "The body is not valid JSON", 401: "No or wrong credentials",
           403: "Not your worker, or out of API time", 404: "Not found",
           405: "Method not allowed", 413: "The body is too large",
           422: "Validation failed, or not possible now (see the message)",
           429: "Over the rate limit"}
HEADERS = {401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
           405: {"Allow": {"schema": {"type": "string"}}},
           429: {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}}}
SIGNED_IN = (401, 403, 405, 429)  # what any authenticated operation may answer


class V5Blueprint(Blueprint):
    """v5's views: its parser, and its own error answers in the document."""
    ARGUMENTS_PARSER = V5Parser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = dict(
        Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING, **{BODY: "application/json"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_v5_errors_doc)

    @staticmethod
    def answers(*codes: int, public: bool = False):
        """Document the errors a view answers besides the signed-in ones (``public``:
        no credentials asked, so none of those)."""
        def decorator(func):
            func._apidoc = dict(getattr(func, "_apidoc", {}), v5_errors=(
                set(codes) | ({405, 429} if public else set(SIGNED_IN))), v5_public=public)
            return func
        return decorator

    @staticmethod
    def _prepare_v5_errors_doc(doc, doc_info, **kwargs):
        responses = {code: answer for code, answer in doc.get("responses", {}).items()
                     if code != "default" and not isinstance(answer, str)}
        for code in sorted(doc_info.get("v5_errors", SIGNED_IN)):
            responses[code] = {"description": REASONS[code], "content": {
                "application/json": {"schema": schemas.V5ErrorSchema}}} | (
                {"headers": HEADERS[code]} if code in HEADERS else {})
        doc["responses"] = responses
        doc["security"] = [] if doc_info.get("v5_public") else [{"basicAuth": []}]
        return doc


def create_blueprint(settings) -> V5Blueprint:
    """v5's views for an app: the new worker's schema carries this app's limits."""
    blp = V5Blueprint("v5", __name__, url_prefix=V5_PREFIX, description=(
        "BrowserStack's REST API v5: HTTP Basic with the account's v5 username and "
        "access key."))
    blp.before_request(_refuse_other_sites)
    blp.before_request(_authenticate)
    blp.after_request(_version_header)
    new_worker = schemas.new_worker_schema(settings.worker_max_seconds)

    @blp.route("", methods=["GET"])
    @blp.response(200, schemas.V5EmptySchema)
    @blp.answers()
    def root():
        """The API's root"""
        return {}

    _alias(blp, "/", root)

    @blp.route("/browsers", methods=["GET"])
    @blp.arguments(schemas.V5BrowsersQuerySchema, location="query")
    @blp.response(200, {"oneOf": [
        {"type": "array", "items": schemas.V5BrowserSchema},
        {"type": "object", "description": "os -> os_version -> browsers"}]})
    @blp.answers()
    def browsers(query):
        """Browsers by OS and version (`flat=true`: one list)"""
        catalogue = farm().catalogue
        return jsonify(catalogue.flat() if query["flat"] else catalogue.nested())

    @blp.route("/worker", methods=["POST"])
    @blp.arguments(new_worker, location=BODY, description=(
        "JSON; a form or the query string with the same fields works too."))
    @blp.response(200, schemas.V5CreatedSchema)
    @blp.answers(400, 413, 422)
    def create_worker(new):
        """Create a worker: answers once its page has loaded, or at once with status
        `queue` when the account's sessions are in use"""
        return g.workers.create(new)

    @blp.route("/workers", methods=["GET"])
    @blp.response(200, schemas.V5WorkerSchema(many=True))
    @blp.answers()
    def list_workers():
        """The account's queued and running workers"""
        return g.workers.live()

    @blp.route("/worker/<worker_id>", methods=["GET"])
    @blp.response(200, schemas.V5WorkerSchema)
    @blp.answers(404)
    def get_worker(worker_id):
        """One worker (an empty object once terminated)"""
        return g.workers.get(worker_id)

    @blp.route("/worker/<worker_id>", methods=["DELETE"], endpoint="delete_worker")
    @blp.response(200, schemas.V5TimeSchema)
    @blp.answers(404, 422)
    def delete_worker(worker_id):
        """Terminate: at once when queued, else at 60 s of running at the earliest
        (422 before)"""
        return g.workers.terminate(worker_id)

    @blp.route("/worker/<worker_id>/url.json", methods=["PUT"])
    @blp.arguments(schemas.V5NewUrlSchema, location=BODY)
    @blp.response(200, schemas.V5MessageSchema)
    @blp.answers(400, 404, 413, 422)
    def change_url(new, worker_id):
        """Load another URL in a running worker"""
        return g.workers.navigate(worker_id, new["url"])

    _alias(blp, "/worker/<worker_id>/url", change_url, methods=["PUT"])

    @blp.route("/worker/<worker_id>/screenshot.<fmt>", methods=["GET"], parameters=[
        {"in": "path", "name": "fmt", "schema": {"type": "string",
                                                 "enum": ["png", "json", "xml"]}}])
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png",
                  description="The viewport (png) or where it is stored (json, xml)")
    @blp.alt_response(200, schema=schemas.V5ScreenshotUrlSchema, success=True,
                      content_type="application/json")
    @blp.alt_response(200, schema={"type": "string"}, success=True,
                      content_type="text/xml")
    @blp.answers(404, 422)
    def screenshot(worker_id, fmt=None):
        """A screenshot of a running worker"""
        fmt = screenshot_format(fmt, request.accept_mimetypes.best_match)
        png, key = g.workers.screenshot(worker_id, store=fmt != "png")  # png: bytes only
        if fmt == "png":
            return _answer(png, "image/png")
        url = url_for("v5.screenshot_file", key=key, _external=True)
        if fmt == "xml":
            return _answer('<?xml version="1.0" encoding="UTF-8"?>\n'
                           f"<screenshot><url>{escape(url)}</url></screenshot>", "text/xml")
        return jsonify({"url": url})

    _alias(blp, "/worker/<worker_id>/screenshot", screenshot)

    @blp.route("/screenshots/<key>.png", methods=["GET"])
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
    @blp.answers(404, public=True)
    def screenshot_file(key):
        """A stored screenshot: the URL a json or xml screenshot gave (its key is the
        credential)"""
        return _answer(stored_screenshot(key), "image/png")

    @blp.route("/worker/<worker_id>/video", methods=["GET"])
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="video/mp4")
    @blp.answers(404)
    def video(worker_id):
        """Beyond v5: the recording of an ended `browserstack.video` worker"""
        path = g.workers.video(worker_id)
        return send_file(path, mimetype="video/mp4", download_name=path.name)

    @blp.route("/status", methods=["GET"])
    @blp.response(200, schemas.V5StatusSchema)
    @blp.answers()
    def status():
        """Time used and available, sessions running and allowed"""
        return g.workers.status()

    return blp


def init_app(app, api, settings) -> None:
    """v5 on the app: its views, its security scheme, its rate limit."""
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.register_blueprint(create_blueprint(settings))
    app.extensions["v5_rate_limit"] = RateLimit(
        settings.rate_limit, settings.rate_limit_storage, settings.data_dir)


def _alias(blp, rule: str, view, methods=("GET",)) -> None:
    """Another path to a view (``/5/``, ``url``, ``screenshot`` chosen by Accept),
    served and left out of the document."""
    flask.Blueprint.add_url_rule(blp, rule, f"{view.__name__}_alias", view,
                                 methods=list(methods))


def _refuse_other_sites():
    """A page on another site must not act with a browser's cached Basic credentials:
    a form or text/plain POST reaches us without a CORS preflight. Browsers say where
    a request comes from (Origin; Sec-Fetch-Site where they send no Origin); v5
    clients (curl, npm's browserstack) send neither, so they are unaffected."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        foreign = urlsplit(origin).netloc != request.host  # "null" is foreign too
    else:
        foreign = request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")
    if foreign:
        raise Forbidden("Requests from web pages of other sites are refused")


def _authenticate():
    """The caller's account, then its rate limit. Wrong keys for a username count
    against the sender's address, never against that account; stored screenshots
    (their key is the credential) have their own count per address, so a flood of
    wrong keys from an address doesn't lock its users out of their links."""
    limit = current_app.extensions["v5_rate_limit"]
    if request.endpoint == "v5.screenshot_file":
        limit.hit(f"screenshot-file:{request.remote_addr}")
        return
    auth = request.authorization
    try:
        account = authenticate_basic(auth and auth.username, auth and auth.password)
    except Unauthorized:
        limit.hit(f"address:{request.remote_addr}")  # a 429 before the 401
        raise
    limit.hit(f"account:{account.id}")
    g.workers = WorkerService(farm(), account)
    if g.workers.out_of_time():
        raise Forbidden(OUT_OF_TIME)


def _version_header(response):
    response.headers["X-API-Version"] = "5"
    return response


def _answer(body, mimetype: str):
    return current_app.response_class(body, mimetype=mimetype)
