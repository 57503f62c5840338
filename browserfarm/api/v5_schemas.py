"""The worker API v5's requests and answers as marshmallow schemas: they validate,
serialise, and are what ``/openapi.json`` says about v5. Validation errors name every
bad field in v5's words (``browserfarm.errors.invalid`` / ``required``)."""
from __future__ import annotations

import math

from marshmallow import (EXCLUDE, Schema, ValidationError, fields, missing, post_dump,
                         pre_load, validates_schema)

from flask import url_for

from browserfarm.api.base import farm
from browserfarm.api.fields import doc
from browserfarm.errors import invalid, required
from browserfarm.models import iso_utc
from browserfarm.services.workers import (DEFAULT_RESOLUTION, MAX_URL, MOBILE_OS,
                                          RESOLUTIONS, is_http_url, public_status,
                                          resolutions_for)

MAX_TEXT = 255
MIN_SECONDS = 60
DEFAULT_SECONDS = 300


def _required(name: str) -> dict:
    return {"required": required(name)["message"]}


class Text(fields.String):
    """A text value as v5 clients send it (JSON, a form or a query string), stripped;
    with ``numbers_as_text``, ``"os_version": 10`` means ``"10"``."""

    default_error_messages = {"invalid": "must be a string",
                              "nul": "must not contain NUL characters",
                              "too_long": "is too long"}

    def __init__(self, max_length: int = MAX_TEXT, numbers_as_text: bool = False, **kwargs):
        metadata = {"maxLength": max_length} | kwargs.pop("metadata", {})
        super().__init__(metadata=metadata, **kwargs)
        self.max_length, self.numbers_as_text = max_length, numbers_as_text

    def _deserialize(self, value, attr, data, **kwargs):
        if self.numbers_as_text and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if "\x00" in value:  # databases store no NUL characters in text
            raise self.make_error("nul")
        if len(value) > self.max_length:
            raise self.make_error("too_long")
        return value.strip()


class Url(Text):
    default_error_messages = {"not_http": "must be an http(s) URL"}

    def __init__(self, **kwargs):
        super().__init__(max_length=MAX_URL, metadata={
            "format": "uri", "example": "https://example.com/",
            "description": "An http(s) URL."}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs)
        if not is_http_url(url):
            raise self.make_error("not_http")
        return url


class Seconds(fields.Float):
    """A number of seconds, at least 60 (numbers or their text)."""

    default_error_messages = {"invalid": "must be a number of seconds",
                              "too_short": f"the minimum is {MIN_SECONDS} seconds"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        try:
            seconds = float(value)
        except OverflowError:  # an integer past a float's range: capped like any long one
            seconds = math.inf
        except (TypeError, ValueError):
            raise self.make_error("invalid") from None
        if not seconds >= MIN_SECONDS:  # NaN fails this too
            raise self.make_error("too_short")
        return int(min(seconds, 10 ** 6))


class AnyText(fields.String):
    """True for ``true`` or ``1``, false for anything else (nothing is refused)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(value).lower() in ("true", "1")


class Flag(fields.Boolean):
    """true/false, and their words in a form or query string."""

    truthy = {True, "true", "1", "yes", "on"}
    falsy = {False, "false", "0", "no", "off"}
    default_error_messages = {"invalid": "must be true or false"}

    def _deserialize(self, value, attr, data, **kwargs):
        word = value if isinstance(value, bool) else str(value).lower()
        if word in self.truthy:
            return True
        if word in self.falsy:
            return False
        raise self.make_error("invalid")


def new_worker_schema(max_seconds: float) -> type[Schema]:
    """``POST /5/worker``'s request; ``max_seconds`` (BROWSERFARM_WORKER_MAX_SECONDS)
    is where a longer timeout is capped, as the document says."""
    timeout = Seconds(load_default=DEFAULT_SECONDS, metadata={
        "minimum": MIN_SECONDS, "default": DEFAULT_SECONDS, "x-capped-at": int(max_seconds),
        "description": f"Seconds before the worker ends, at least {MIN_SECONDS}; a longer "
                       f"one is accepted and capped at {int(max_seconds)}, the longest a "
                       "worker lives here.", "example": DEFAULT_SECONDS})
    return type("V5NewWorkerSchema", (NewWorkerBase,), {"timeout": timeout})


class NewWorkerBase(Schema):
    """The fields of a new worker; which OS, version and browser exist is the
    catalogue's to say (``GET /5/browsers``)."""

    class Meta:
        unknown = EXCLUDE

    os = Text(required=True, error_messages=_required("os"), metadata=doc(
        "A valid OS: the ones GET /5/browsers lists", "Windows"))
    os_version = Text(required=True, numbers_as_text=True,
                      error_messages=_required("os_version"), metadata=doc(
                          "A valid version of that OS (GET /5/browsers)", "11"))
    browser = Text(metadata=doc("Required on desktop operating systems: a browser GET "
                                "/5/browsers lists for that OS.", "chrome"))
    browser_version = Text(numbers_as_text=True, metadata=doc(
        "Required on desktop operating systems: exact, a major (`128`) or `latest`.",
        "latest"))
    device = Text(metadata=doc("Mobile operating systems: a device GET /5/browsers "
                               "lists; default: the first for that OS version",
                               "Samsung Galaxy S23"))
    url = Url(required=True, error_messages=_required("url"))
    resolution = Text(load_default=DEFAULT_RESOLUTION, metadata={
        "default": DEFAULT_RESOLUTION, "enum": RESOLUTIONS[None], **doc(
            "Desktop only. Windows and OS X take the sizes of the spec's table for them.",
            "1920x1080")})
    name = Text(load_default="", metadata=doc("A name for the worker", "checkout test"))
    build = Text(load_default="", metadata=doc("The build it runs under", "build 42"))
    project = Text(load_default="", metadata=doc("The project the build is under", "shop"))
    video = Flag(data_key="browserstack.video", load_default=False,
                 metadata={"default": False, **doc(
                     "Record a video (GET /5/worker/<id>/video once it has ended); "
                     "`video` is its alias", True)})
    window = Text(metadata={"format": "uuid", **doc(
        "Beyond v5: run with this browser window's proxy and fingerprint.",
        "2c5e9a61-8d1f-4b7a-9e3c-5f0a7d4b1e26")})

    @pre_load
    def _given(self, data, **kwargs):
        """Empty values are not given; ``video`` is ``browserstack.video``'s alias."""
        if not isinstance(data, dict):
            return data
        if "browserstack.video" not in data and "video" in data:
            data = dict(data, **{"browserstack.video": data["video"]})
        return {key: value for key, value in data.items() if not _empty(value)}

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _offered(self, data, original_data, **kwargs):
        """Browser fields on a desktop OS, a resolution its table has, and something
        the catalogue offers; each field that is wrong is named."""
        errors = {}
        given = original_data if isinstance(original_data, dict) else {}
        mobile = data.get("os", "").lower() in MOBILE_OS
        for name in () if mobile else ("browser", "browser_version"):
            if _empty(given.get(name)):
                errors[name] = [required(name)["message"]]
        if "os" in data and "os_version" in data:
            if not mobile and (data.get("resolution") or DEFAULT_RESOLUTION) not in (
                    allowed := resolutions_for(data["os"], data["os_version"])):
                errors["resolution"] = [f"one of {', '.join(allowed)}"]
            _, found = farm().catalogue.match(data)  # (the missing ones are required above)
            errors.update({error["field"]: [error["message"]] for error in found})
        if errors:
            raise ValidationError(errors)


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and value == "")


class V5NewUrlSchema(Schema):
    """``PUT /5/worker/<id>/url.json``'s request."""

    class Meta:
        unknown = EXCLUDE

    url = Url(required=True, error_messages=_required("url"))

    @pre_load
    def _given(self, data, **kwargs):
        return ({k: v for k, v in data.items() if not _empty(v)}
                if isinstance(data, dict) else data)


def v5_errors(messages: dict) -> list[dict]:
    """marshmallow's ``{field: [message]}`` as v5's errors, one per field."""
    out = []
    for field, texts in messages.items():
        text = texts[0] if isinstance(texts, list) else str(texts)
        field = "body" if field == "_schema" else field
        out.append(required(field) if text == required(field)["message"]
                   else invalid(field, text))
    return out


class V5BrowsersQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    flat = AnyText(load_default=False, metadata={
        "doc_default": "false", "description": "`true` or `1`: one flat list rather than entries by OS and "
                       "version (any other value: by OS)."})


# ----- answers --------------------------------------------------------------------

class V5ErrorSchema(Schema):
    """Every v5 error: a message, and for a 400 or 422 each bad field."""
    message = fields.String(required=True, metadata=doc("What went wrong",
                                                        "Validation Failed"))
    errors = fields.List(fields.Nested(Schema.from_dict({
        "field": fields.String(required=True, metadata=doc("The bad field", "os_version")),
        "code": fields.String(required=True, metadata={"enum": ["required", "invalid"],
                                                       **doc("required or invalid",
                                                             "invalid")}),
        "message": fields.String(required=True, metadata=doc("Why, in words",
                                                             "must be a string"))},
        name="V5FieldErrorSchema")), metadata={"description": "For a 400 or 422: each bad "
                                                              "field"})


class V5EmptySchema(Schema):
    pass


_OS = doc("The OS", "Linux")
_OS_VERSION = doc("The OS version", "bookworm")
_BROWSER = doc("The browser; null on a mobile device", "firefox")
_BROWSER_VERSION = doc("The browser version", "128.0")
_DEVICE = doc("The mobile device; null on a desktop", None)
_REAL_MOBILE = doc("A real mobile device; null on a desktop", None)


class V5BrowserSchema(Schema):
    os = fields.String(metadata=_OS)
    os_version = fields.String(metadata=_OS_VERSION)
    browser = fields.String(allow_none=True, metadata=_BROWSER)
    browser_version = fields.String(allow_none=True, metadata=_BROWSER_VERSION)
    device = fields.String(allow_none=True, metadata=_DEVICE)
    real_mobile = fields.Boolean(allow_none=True, metadata=_REAL_MOBILE)


class V5WorkerSchema(Schema):
    """A queued or running worker. A terminated one is ``{}``, or its status and why
    when it failed (the spec's empty answer, and a reason)."""
    id = fields.Integer(metadata=doc("The worker's ID", 1))
    status = fields.Function(public_status, metadata={
        "enum": ["queue", "running", "terminated"], **doc("queue, running or terminated",
                                                          "running")})
    os = fields.String(metadata=_OS)
    os_version = fields.String(metadata=_OS_VERSION)
    browser = fields.String(allow_none=True, metadata=_BROWSER)
    browser_version = fields.String(allow_none=True, metadata=_BROWSER_VERSION)
    real_mobile = fields.Boolean(allow_none=True, metadata=_REAL_MOBILE)
    device = fields.String(allow_none=True, metadata=_DEVICE)
    url = fields.String(metadata=doc("The URL it was sent to", "https://example.com/"))
    name = fields.String(allow_none=True, metadata=doc("Its name", "checkout test"))
    build = fields.String(allow_none=True, metadata=doc("Its build", "build 42"))
    project = fields.String(allow_none=True, metadata=doc("Its project", "shop"))
    resolution = fields.String(metadata=doc("Its screen size", "1024x768"))
    timeout = fields.Integer(metadata=doc("Seconds it may run", 300))
    browser_url = fields.Method("_browser_url", metadata={
        "format": "uri", **doc("The worker's page in the dashboard (sign in with an API "
                               "token of the account).", "http://127.0.0.1:8000/workers/1")})
    sessionId = fields.String(attribute="session_id", metadata=doc(
        "Its browser's automation session", "6b1e6d1c-8a3e-4f8e-9a51-0c2d7f4e9b10"))
    created_at = fields.Function(lambda worker: iso_utc(worker.created_at),
                                 metadata={"format": "date-time", **doc(
                                     "When it was asked for (UTC)", "2026-01-31T12:00:00Z")})
    started_at = fields.Function(lambda worker: iso_utc(worker.started_at),
                                 metadata={"format": "date-time", "nullable": True, **doc(
                                     "When its page had loaded (UTC); null while queued",
                                     "2026-01-31T12:00:04Z")})
    error = fields.String(metadata=doc("Why a terminated worker failed.",
                                       "the browser did not start"))

    @staticmethod
    def _browser_url(worker) -> str:
        return url_for("dashboard.worker", worker_id=worker.id, _external=True)

    @post_dump(pass_original=True)
    def _ended(self, data, worker, **kwargs):
        if worker.status != "terminated":
            return data
        return {"status": "terminated", "error": worker.end_reason} if worker.failed else {}


class V5CreatedSchema(Schema):
    """A new worker: ``queue``, or ``running`` once its page has loaded, or
    ``terminated`` with the reason when it failed to start."""
    id = fields.Integer(required=True, metadata=doc("The worker's ID", 1))
    url = fields.String(required=True, metadata=doc("The URL it was sent to",
                                                    "https://example.com/"))
    status = fields.Function(public_status, required=True, metadata={
        "enum": ["queue", "running", "terminated"], **doc("queue, running or terminated",
                                                          "running")})
    error = fields.Function(lambda worker: worker.end_reason if worker.failed else missing,
                            metadata=doc("Why it failed to start (terminated)",
                                         "the browser did not start"))


class V5TimeSchema(Schema):
    time = fields.Float(required=True, metadata=doc("Seconds it ran.", 42.5))


class V5MessageSchema(Schema):
    message = fields.String(required=True, metadata=doc("What was done",
                                                        "Browser updated with new url"))


class V5StatusSchema(Schema):
    used_time = fields.Float(required=True, metadata=doc(
        "Seconds run by the account's workers, ended and running", 4235.4))
    total_available_time = fields.Raw(required=True, metadata=doc(
        "Seconds, or `Unlimited Testing Time`.", "Unlimited Testing Time"))
    running_sessions = fields.Integer(required=True, metadata=doc("Workers running now", 1))
    sessions_limit = fields.Integer(required=True, metadata=doc(
        "Workers the account may run at once", 5))


class V5ScreenshotUrlSchema(Schema):
    url = fields.String(required=True, metadata=doc(
        "The stored PNG's URL (needs no credentials)",
        "http://127.0.0.1:8000/5/screenshots/3f2a9c.png"))
