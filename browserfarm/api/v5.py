"""The worker API v5 (BrowserStack's dialect, ``../shared/spec/worker-api-v5.txt``):
HTTP Basic with the account's v5 username and access key, JSON answers with
``X-API-Version: 5``, errors as ``{"message"[, "errors"]}``."""
from __future__ import annotations

import json
import math
import threading
import time
from xml.sax.saxutils import escape

from flask import Blueprint, current_app, g, jsonify, request, send_file
from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from browserfarm.api.base import farm
from browserfarm.services.workers import (
    OUT_OF_TIME, Catalogue, V5Error, WorkerService, authenticate_basic,
    parse_worker_request, public_status, stored_screenshot, worker_to_api)

blp = Blueprint("v5", __name__, url_prefix="/5")
START_WAIT = 120.0  # POST /worker answers once the page loaded, or after this


def catalogue() -> Catalogue:
    return farm().catalogue


class RateLimit:
    """v5's limit per user (``BROWSERFARM_RATE_LIMIT``), on the ``limits`` library
    that flask-limiter is built on. Used directly: flask-limiter's own per-request
    work was 60% of a v5 call's time in the API (docs/benchmarks.md)."""

    def __init__(self, limit: str, storage_uri: str):
        self.text, self.item = limit, parse(limit)
        counts = (ProcessCounts() if storage_uri == "memory://"
                  else storage_from_string(storage_uri))
        self.limiter = FixedWindowRateLimiter(counts)

    def hit(self, key: str) -> None:
        """Count one request; over the limit, the 429 that says when to come back."""
        if not self.limiter.hit(self.item, "v5", key):
            reset = self.limiter.get_window_stats(self.item, "v5", key).reset_time
            raise V5Error(429, f"Too many requests: the limit is {self.text}",
                          retry_after=max(1, math.ceil(reset - time.time())))


class ProcessCounts(Storage):
    """The default store: counts in this process, expired on access and swept once a
    minute. ``limits``' own memory store starts a 10 ms timer thread on nearly every
    hit, which was a fifth of the API's time on a v5 screenshot (docs/benchmarks.md).
    Fixed windows only, which is what ``RateLimit`` uses."""

    SWEEP_EVERY = 60.0

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._counts: dict[str, list] = {}  # key: [count, expires at]
        self._swept = time.time()

    @property
    def base_exceptions(self):
        return ValueError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if now - self._swept > self.SWEEP_EVERY:  # keys of one-off addresses
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._swept = now
            entry = self._counts.get(key)
            if entry is None or entry[1] <= now:
                entry = self._counts[key] = [0, now + expiry]
            entry[0] += amount
            return entry[0]

    def get(self, key: str) -> int:
        entry = self._counts.get(key)
        return entry[0] if entry and entry[1] > time.time() else 0

    def get_expiry(self, key: str) -> float:
        entry = self._counts.get(key)
        return entry[1] if entry and entry[1] > time.time() else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        with self._lock:
            count, self._counts = len(self._counts), {}
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


@blp.before_request
def _authenticate():
    """The caller's account, then its rate limit. Wrong keys for a username count
    against the sender's address, never against that account; stored screenshots
    (their key is the credential) have their own count per address, so a flood of
    wrong keys from an address doesn't lock its users out of their links."""
    if request.endpoint == "v5.screenshot_file":
        rate_limit().hit(f"screenshot-file:{request.remote_addr}")
        return None
    auth = request.authorization
    try:
        account = authenticate_basic(auth and auth.username, auth and auth.password)
    except V5Error:
        rate_limit().hit(f"address:{request.remote_addr}")  # a 429 before the 401
        raise
    rate_limit().hit(f"account:{account.id}")
    g.workers = WorkerService(farm(), account)
    if g.workers.out_of_time():
        raise V5Error(403, OUT_OF_TIME)
    return None


def rate_limit() -> RateLimit:
    """The app's limit (its storage is per process unless the setting shares it)."""
    return current_app.extensions["v5_rate_limit"]


def init_app(app, settings) -> None:
    app.register_blueprint(blp)
    app.extensions["v5_rate_limit"] = RateLimit(settings.rate_limit, settings.rate_limit_storage)


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
