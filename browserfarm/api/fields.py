"""Fields for the spec's loose types ("number/string") with strict checking."""
from __future__ import annotations

import json
import re
import uuid

from marshmallow import ValidationError, fields, validate

MAX_ID = 2**31 - 1  # integer columns on PostgreSQL
# str.isdigit() also accepts "²" and other digits int() refuses.
ASCII_INTEGER = re.compile(r"-?[0-9]+")
ASCII_DIGITS = re.compile(r"[0-9]+")


class FlexibleInt(fields.Integer):
    """A number or a numeric string ("number/string" in the spec); never a bool.
    ``blank_as`` is what ``""`` and ``null`` become, when they are accepted."""

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

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        if isinstance(value, str) and not ASCII_INTEGER.fullmatch(value.strip()):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if abs(number) > MAX_ID:
            raise ValidationError(f"Must be at most {MAX_ID}.")
        return number


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


MAX_JSON_DEPTH = 32


def json_depth(value, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``value`` nests, counting no further than ``limit + 1``."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


class JsonObject(fields.Dict):
    default_error_messages = {"invalid": "Must be a JSON object.",
                              "too_deep": f"Must not nest deeper than {MAX_JSON_DEPTH}."}

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if json_depth(result) > MAX_JSON_DEPTH:
            raise self.make_error("too_deep")
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
                value = json.loads(value)
            except ValueError:
                raise self.make_error("invalid") from None
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise self.make_error("invalid")
        if json_depth(value) > MAX_JSON_DEPTH:
            raise ValidationError(f"Must not nest deeper than {MAX_JSON_DEPTH}.")
        for index, cookie in enumerate(value):
            if not isinstance(cookie.get("name"), str) or not cookie["name"]:
                raise ValidationError(f"Cookie {index} needs a name.")
        return value


_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def openapi_property(converter, field, **kwargs) -> dict:
    """The OpenAPI view of the loose fields above (an apispec attribute function)."""
    if isinstance(field, WindowRef):
        return {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID},
                          {"type": "string", "pattern": rf"^([1-9]\d{{0,8}}|{_UUID})$"}]}
    if isinstance(field, FlexibleInt):
        low, high = -MAX_ID, MAX_ID
        for rule in field.validators:
            if isinstance(rule, validate.Range):
                low = rule.min if rule.min is not None else low
                high = rule.max if rule.max is not None else high
        digits = r"^\d{1,9}$" if low >= 0 else r"^-?\d{1,9}$"
        prop = {"oneOf": [{"type": "integer", "minimum": low, "maximum": high},
                          {"type": "string", "pattern": digits}]}
        return prop | ({"nullable": True} if field.accept_blank else {})
    if isinstance(field, Cookies):
        return {"oneOf": [{"type": "array", "items": {"type": "object"}},
                          {"type": "string"}]}
    return {}


LOOSE_FIELDS = (WindowRef, FlexibleInt, Cookies)
