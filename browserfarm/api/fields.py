"""The API's shared field definitions: the spec's loose types ("number/string") with
strict checking, the window reference (id, browserId or uuid), request-level rules
(``OneOf``) and how each appears in /openapi.json, so the document says what the
fields enforce (``document`` registers it all on the app's Api)."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from apispec import BasePlugin
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from browserfarm.api import strict_json
from browserfarm.api.errors import is_v5_path
from browserfarm.api.strict_json import MAX_JSON_DEPTH
from browserfarm.browsers.backends import WindowBackend
from browserfarm.errors import InvalidInput

MAX_ID = 2**31 - 1  # integer columns on PostgreSQL
MAX_SECRET = 8192  # a proxy password: room for an SSH private key
# str.isdigit() also accepts "²" and other digits int() refuses.
ASCII_INTEGER = re.compile(r"-?[0-9]+")
ASCII_DIGITS = re.compile(r"[0-9]+")
# float() also takes "1_000", "nan" and "infinity": a numeric string is this.
ASCII_NUMBER = r"\s*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*"


class _Blankable:
    """With ``accept_blank``, ``""`` and ``null`` become ``blank_as`` (None unless
    given), as BitBrowser's clients send them for "unset"."""

    def __init__(self, *args, blank_as=None, accept_blank=False, **kwargs):
        self.blank_as = blank_as
        self.accept_blank = accept_blank
        if accept_blank:
            kwargs.setdefault("allow_none", True)
        super().__init__(*args, **kwargs)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if self.accept_blank and (value is None or value == ""):
            return self.blank_as
        return super().deserialize(value, attr, data, **kwargs)


class FlexibleInt(_Blankable, fields.Integer):
    """A number or a numeric string ("number/string" in the spec); never a bool."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        if isinstance(value, str) and not ASCII_INTEGER.fullmatch(value.strip()):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if abs(number) > MAX_ID:
            raise ValidationError(f"Must be at most {MAX_ID}.")
        return number


class FlexibleFloat(_Blankable, fields.Float):
    """A number or a numeric string (ASCII_NUMBER); never a bool."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str) and not re.fullmatch(ASCII_NUMBER, value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class FlexibleBool(fields.Boolean):
    """A boolean as scripts send it: true/false, 1/0 or "yes", "on", "true"... (the
    sets marshmallow accepts; the document lists them)."""


class WindowRef(fields.Field):
    """A window's numeric id (number or numeric string) or its uuid."""

    default_error_messages = {"invalid": "Not a window id or uuid."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int) or (isinstance(value, str) and ASCII_DIGITS.fullmatch(value)):
            if not 1 <= int(value) <= MAX_ID:
                raise self.make_error("invalid")
            return int(value)
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
        raise self.make_error("invalid")


def check_stored_json(value) -> None:
    """A JSON value kept as given (config, cookies) must be answerable again as JSON:
    ``strict_json``'s rules, whatever produced the value."""
    found = strict_json.refusal(value, MAX_JSON_DEPTH)
    if found:
        path, message = found
        raise ValidationError(f"{path}: {message}" if path else message)


class JsonObject(fields.Dict):
    default_error_messages = {"invalid": "Must be a JSON object."}

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        check_stored_json(result)
        return result


class Cookies(fields.Field):
    """Cookies to import: a list of cookie objects, or a JSON string of one."""

    default_error_messages = {"invalid": "Must be a list of cookie objects or a JSON string "
                                         "of one."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                value = strict_json.loads(value, max_depth=MAX_JSON_DEPTH)
            except strict_json.NotJson:
                raise self.make_error("invalid") from None
            except strict_json.Refused as exc:
                raise ValidationError(str(exc) if exc.path else exc.message) from None
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise self.make_error("invalid")
        check_stored_json(value)
        for index, cookie in enumerate(value):
            if not isinstance(cookie.get("name"), str) or not cookie["name"]:
                raise ValidationError(f"Cookie {index} needs a name.")
        return value


# ----- a window named by id, browserId or uuid -----------------------------------

EXAMPLE_UUID = "2c5e9a61-8d1f-4b7a-9e3c-5f0a7d4b1e26"


def doc(description: str, example, **more) -> dict:
    """A field's words in /openapi.json (its ``metadata``): what it means and a value
    it may take; ``more``: other metadata (a registry, an enum...)."""
    return {"description": description, "example": example, **more}


def window_ref_fields() -> dict:
    return {"id": WindowRef(metadata=doc("The window's id (a number or numeric string)", 1)),
            "browserId": WindowRef(metadata=doc("Alias of id (BitBrowser's name)", 1)),
            "uuid": WindowRef(metadata=doc("The window's uuid (recommended; its id works "
                                           "too)", EXAMPLE_UUID))}


@dataclass(frozen=True)
class OneOf:
    """A rule no single field can say: the caller gives fields of exactly one of
    ``groups`` (at least one field of it). ``missing`` and ``mixed`` are the errors
    (field, message) when no group, or more than one, is given."""
    groups: tuple[tuple[str, ...], ...]
    missing: tuple[str, str]
    mixed: tuple[str, str] = ("", "")

    def check(self, data: dict) -> None:
        given = [g for g in self.groups if any(data.get(k) not in (None, "") for k in g)]
        if not given:
            raise InvalidInput(*self.missing)
        if len(given) > 1:
            raise InvalidInput(*self.mixed)

    def openapi(self) -> dict:
        """JSON Schema's words for it: ``anyOf`` the fields of a group, ``oneOf`` the
        groups."""
        alternatives = [{"anyOf": [{"required": [k]} for k in g]} if len(g) > 1
                        else {"required": list(g)} for g in self.groups]
        if len(alternatives) == 1:
            return alternatives[0]
        return {"oneOf": alternatives}


WINDOW_REF = OneOf((("id", "browserId", "uuid"),),
                   missing=("id", "one of id, browserId or uuid is required"))


class Args(Schema):
    """Request arguments; ``one_of`` is their ``OneOf`` rule, if any. The rule is
    checked after the fields (and only when they are valid)."""
    one_of: OneOf | None = None

    @validates_schema
    def _one_of(self, data, **kwargs):
        if self.one_of:
            self.one_of.check(data)


def args(name: str, fields_: dict, one_of: OneOf | None = None) -> type[Args]:
    """A request schema named ``name`` (its name in /openapi.json)."""
    schema = Args.from_dict(fields_, name=name)
    schema.one_of = one_of
    return schema


def window_ref_args(name: str, **more_fields) -> type[Args]:
    """Arguments naming one window, plus ``more_fields``."""
    return args(name, {**window_ref_fields(), **more_fields}, WINDOW_REF)


# ----- how these appear in /openapi.json -----------------------------------------

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def digits_pattern(low: int, high: int) -> str:
    """A regular expression for the decimal numbers ``low``..``high`` (both >= 0),
    leading zeros allowed: a numeric string accepted by ``FlexibleInt`` and
    ``WindowRef``."""
    alternatives = []
    for width in range(len(str(low)), len(str(high)) + 1):
        start, end = max(low, 10 ** (width - 1) if width > 1 else 0), min(high, 10 ** width - 1)
        if start <= end:
            alternatives += _digit_spans(str(start), str(end))
    return f"0*({'|'.join(alternatives)})"


def _digit_spans(low: str, high: str) -> list[str]:
    """Patterns for the numbers between two of the same width."""
    if not low:
        return [""]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _digit_spans(low[1:], high[1:])]
    tail = len(low) - 1
    spans, first, last = [], int(low[0]), int(high[0])
    if low[1:] != "0" * tail:  # the first leading digit covers only part of its block
        spans += [low[0] + rest for rest in _digit_spans(low[1:], "9" * tail)]
        first += 1
    whole_last = high[1:] == "9" * tail
    if not whole_last:
        last -= 1
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        spans.append(digit + (rf"\d{{{tail}}}" if tail else ""))
    if not whole_last:
        spans += [high[0] + rest for rest in _digit_spans("0" * tail, high[1:])]
    return spans


def _range(field) -> tuple[int, int]:
    low, high = -MAX_ID, MAX_ID
    for rule in field.validators:
        if isinstance(rule, validate.Range):
            low = rule.min if rule.min is not None else low
            high = rule.max if rule.max is not None else high
    return low, high


def _int_string(low: int, high: int) -> str:
    if low >= 0:
        return digits_pattern(low, high)
    # Only the full signed range is used with negatives.
    return f"-?{digits_pattern(0, max(-low, high))}"


#: ``metadata={"registry": ...}`` on a field: it names something plugins register,
#: checked by the services against the farm's registry; the document lists them.
REGISTRIES = {
    "proxy_methods": lambda plugins: sorted(source.method for source in plugins.proxy_sources),
    "ip_check_services": lambda plugins: [e.name for e in plugins.ip_check_services.entries()],
    # Installed here or not: a window opens on a desktop's agent.
    "window_backends": lambda plugins: sorted(plugins.browser_backends.offering(
        WindowBackend, available=False)),
}


def _registered(field, names: list) -> dict:
    if isinstance(field, FlexibleInt):
        numbers = "|".join(map(str, names))
        return {"oneOf": [{"type": "integer", "enum": names},
                          {"type": "string", "pattern": f"^0*({numbers})$"}]}
    return {"enum": ["", *names]}  # blank: the default


def openapi_property(converter, field, choices=None, **kwargs) -> dict:
    """The OpenAPI view of the loose fields above (an apispec attribute function);
    ``choices``: the registries' names, by registry."""
    if choices and field.metadata.get("registry") in choices:
        return _registered(field, choices[field.metadata["registry"]])
    if isinstance(field, WindowRef):
        return {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID},
                          {"type": "string",
                           "pattern": f"^({digits_pattern(1, MAX_ID)}|{_UUID})$"}]}
    if isinstance(field, FlexibleInt):
        low, high = _range(field)
        blank = "|" if field.accept_blank else ""
        prop = {"oneOf": [{"type": "integer", "minimum": low, "maximum": high},
                          {"type": "string", "pattern": f"^({blank}{_int_string(low, high)})$"}]}
        return prop | ({"nullable": True} if field.accept_blank else {})
    if isinstance(field, FlexibleFloat):
        number = {"type": "number"} | {k: v for k, v in zip(("minimum", "maximum"),
                                                           _range(field)) if abs(v) < MAX_ID}
        blank = "|" if field.accept_blank else ""
        prop = {"oneOf": [number, {"type": "string",
                                   "pattern": f"^({blank}{ASCII_NUMBER})$"}]}
        return prop | ({"nullable": True} if field.accept_blank else {})
    if isinstance(field, FlexibleBool):
        words = sorted(field.truthy | field.falsy, key=lambda v: (isinstance(v, str), v))
        return {"oneOf": [{"type": "boolean"}, {"enum": words}]}
    if isinstance(field, Cookies):
        cookie = {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string", "minLength": 1}}}
        return {"oneOf": [{"type": "array", "items": cookie},
                          {"type": "string", "pattern": r"^\s*$",
                           "description": "Blank: no cookies (or the list as JSON text)"}]}
    return {}


class RulesPlugin(BasePlugin):
    """Puts each request schema's ``OneOf`` rule into its component."""

    def schema_helper(self, name, definition, schema=None, **kwargs):
        cls = schema if isinstance(schema, type) else type(schema)
        rule = getattr(cls, "one_of", None)
        return rule.openapi() if isinstance(rule, OneOf) else None


# The window API's error answers besides 400 (every one in the envelope's shape).
WINDOW_API_ERRORS = {
    "401": "No or invalid token (code 401)",
    "403": "The token lacks this endpoint's permission (code 403)",
    "404": "Unknown id, or another account's (code 404)",
    "405": "Not POST (code 211); Allow names the methods",
    "413": "Body over the size limit (code 211)",
}


class WindowApiErrorsPlugin(BasePlugin):
    """Lists the window API's error answers on each of its operations (v5 documents
    its own)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path or is_v5_path(path):
            return
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, description in WINDOW_API_ERRORS.items():
                response = {"description": description, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
                if status == "405":
                    response["headers"] = {"Allow": {"schema": {"type": "string"},
                                                     "required": True}}
                responses.setdefault(status, response)


LOOSE_FIELDS = (WindowRef, FlexibleInt, FlexibleFloat, FlexibleBool, Cookies)


def document(api, plugins) -> None:
    """Teach the app's Api (flask-smorest) how these fields and rules look in the
    document, with what the farm's ``plugins`` registered; call before registering
    blueprints."""
    choices = {name: names_of(plugins) for name, names_of in REGISTRIES.items()}

    def attribute_function(converter, field, **kwargs):
        return openapi_property(converter, field, choices)

    for loose in LOOSE_FIELDS:
        api.register_field(loose, None, None)
    api.ma_plugin.converter.add_attribute_function(attribute_function)
    for plugin in (RulesPlugin(), WindowApiErrorsPlugin()):
        plugin.init_spec(api.spec)
        api.spec.plugins.append(plugin)
