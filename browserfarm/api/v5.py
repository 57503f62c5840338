"""The worker API v5 (BrowserStack's dialect, ``../shared/spec/worker-api-v5.txt``):
HTTP Basic with the account's v5 username and access key, JSON answers with
``X-API-Version: 5``, errors as ``{"message"[, "errors"]}``."""
from __future__ import annotations

import json
from xml.sax.saxutils import escape

from flask import Blueprint, current_app, g, jsonify, request, send_file

from browserfarm.api.base import farm
from browserfarm.ratelimit import OverLimit, RateLimit
from browserfarm.services.workers import (
    OUT_OF_TIME, Catalogue, V5Error, WorkerService, authenticate_basic,
    parse_worker_request, public_status, stored_screenshot, worker_to_api)

blp = Blueprint("v5", __name__, url_prefix="/5")
START_WAIT = 120.0  # POST /worker answers once the page loaded, or after this


def catalogue() -> Catalogue:
    return farm().catalogue


@blp.before_request
def _authenticate():
    """The caller's account, then its rate limit. Wrong keys for a username count
    against the sender's address, never against that account; stored screenshots
    (their key is the credential) have their own count per address, so a flood of
    wrong keys from an address doesn't lock its users out of their links."""
    if request.endpoint == "v5.screenshot_file":
        rate_limit_hit(f"screenshot-file:{request.remote_addr}")
        return None
    auth = request.authorization
    try:
        account = authenticate_basic(auth and auth.username, auth and auth.password)
    except V5Error:
        rate_limit_hit(f"address:{request.remote_addr}")  # a 429 before the 401
        raise
    rate_limit_hit(f"account:{account.id}")
    g.workers = WorkerService(farm(), account)
    if g.workers.out_of_time():
        raise V5Error(403, OUT_OF_TIME)
    return None


def rate_limit_hit(key: str) -> None:
    """One request against the app's limit (browserfarm.ratelimit); over it, a 429."""
    try:
        current_app.extensions["v5_rate_limit"].hit(key)
    except OverLimit as over:
        raise V5Error(429, str(over), retry_after=over.retry_after) from None


def init_app(app, settings) -> None:
    app.register_blueprint(blp)
    app.extensions["v5_rate_limit"] = RateLimit(settings.rate_limit,
                                                settings.rate_limit_storage, settings.data_dir)


@blp.after_request
def _version_header(response):
    response.headers["X-API-Version"] = "5"
    return response


@blp.errorhandler(V5Error)
def _v5_error(error: V5Error):
    response = jsonify(error.body())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="BrowserFarm v5"'
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


OTHER_VERSIONS = ("/1", "/2", "/3", "/4")  # BrowserStack's older APIs: clients default to 4


def _under(prefix: str) -> bool:
    return request.path == prefix or request.path.startswith(prefix + "/")


def asks_v5() -> bool:
    """The request is for the v5 API (or an older version of it, which a v5 client
    left at its default calls), so its errors answer in v5's shape (routing errors
    happen before any blueprint is chosen)."""
    return any(_under(prefix) for prefix in (blp.url_prefix, *OTHER_VERSIONS))


def v5_http_error(error):
    """Framework errors under /5 (404, 405, 413, 500) in v5's shape."""
    message = error.name
    if error.code == 404 and not _under(blp.url_prefix):
        message = "Not Found: this farm serves BrowserStack's API v5, under /5"
    response = jsonify({"message": message})
    response.status_code = error.code or 500
    headers = dict(error.get_headers())
    if "Allow" in headers:
        response.headers["Allow"] = headers["Allow"]
    response.headers["X-API-Version"] = "5"
    return response


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _body() -> dict:
    """JSON, a form or the query string: v5 clients send all three."""
    if request.get_data(cache=True):
        if request.mimetype == "application/x-www-form-urlencoded" or request.form:
            return request.form.to_dict()
        try:
            body = json.loads(request.get_data(cache=True))
        except ValueError:  # UnicodeDecodeError included
            raise V5Error(400, "The body is not valid JSON", [{
                "field": "body", "code": "invalid", "message": "not valid JSON"}]) from None
        if not isinstance(body, dict):
            raise V5Error(422, "Validation Failed", [{
                "field": "body", "code": "invalid", "message": "must be a JSON object"}])
        return body
    return request.args.to_dict()


@blp.get("")
@blp.get("/")
def root():
    return jsonify({})


@blp.get("/browsers")
def browsers():
    flat = request.args.get("flat", "").lower() in ("true", "1")
    return jsonify(catalogue().flat() if flat else catalogue().nested())


@blp.post("/worker")
def create_worker():
    data = parse_worker_request(_body(), catalogue(), farm().settings)
    worker = g.workers.create(data)
    # With a slot free and a runner alive, answer once the page has loaded.
    if g.workers.has_free_slot_for(worker) and g.workers.runner_alive():
        worker = g.workers.wait_started(worker.id, START_WAIT)
    answer = {"id": worker.id, "url": worker.url, "status": public_status(worker)}
    if worker.failed:
        answer["error"] = worker.end_reason
    return jsonify(answer)


@blp.get("/workers")
def list_workers():
    return jsonify([worker_to_api(w, _base_url()) for w in g.workers.live()])


@blp.get("/worker/<worker_id>")
def get_worker(worker_id):
    worker = g.workers.get(worker_id)
    if worker.status == "terminated":  # the spec: an empty answer; a failure says why
        return jsonify({"status": "terminated", "error": worker.end_reason}
                       if worker.failed else {})
    return jsonify(worker_to_api(worker, _base_url()))


@blp.delete("/worker/<worker_id>")
def delete_worker(worker_id):
    return jsonify(g.workers.terminate(worker_id))


@blp.put("/worker/<worker_id>/url.json")
@blp.put("/worker/<worker_id>/url")
def change_url(worker_id):
    return jsonify(g.workers.navigate(worker_id, _body().get("url")))


FORMATS = {"json": "text/json", "xml": "text/xml", "png": "image/png"}


@blp.get("/worker/<worker_id>/screenshot")
@blp.get("/worker/<worker_id>/screenshot.<fmt>")
def screenshot(worker_id, fmt=None):
    if fmt is None:
        accept = request.accept_mimetypes
        fmt = {"text/json": "json", "application/json": "json", "text/xml": "xml",
               "application/xml": "xml", "image/png": "png"}.get(
            accept.best_match(["text/json", "application/json", "text/xml",
                               "application/xml", "image/png"], default="text/json"), "json")
    if fmt not in FORMATS:
        raise V5Error(422, "Validation Failed", [{"field": "format", "code": "invalid",
                                                  "message": "json, xml or png"}])
    png, key = g.workers.screenshot(worker_id, store=fmt != "png")  # png: the bytes only
    if fmt == "png":
        return farm_response(png, "image/png")
    url = f"{_base_url()}/5/screenshots/{key}.png"
    if fmt == "xml":
        return farm_response('<?xml version="1.0" encoding="UTF-8"?>\n'
                             f"<screenshot><url>{escape(url)}</url></screenshot>",
                             "text/xml")
    return jsonify({"url": url})


@blp.get("/screenshots/<key>.png")
def screenshot_file(key):
    png = stored_screenshot(key)
    if png is None:
        raise V5Error(404, "Not Found")
    return farm_response(png, "image/png")


@blp.get("/worker/<worker_id>/video")
def video(worker_id):
    """Beyond the spec: the recording of a ``browserstack.video`` worker, once ended."""
    path = g.workers.video(worker_id)
    return send_file(path, mimetype="video/mp4", download_name=path.name)


@blp.get("/status")
def status():
    return jsonify(g.workers.status())


def farm_response(body, mimetype):
    return current_app.response_class(body, mimetype=mimetype)
