"""JSON as the farm reads it from clients, on every API surface (cloud, v5, Local API)
and in fields that carry JSON as a string (``cookie``): standard JSON (RFC 8259) that
can be stored and answered again as JSON. ``loads`` refuses, naming where:

- ``NaN``, ``Infinity`` and numbers too large for a float (``1e400`` reads as
  Infinity): Python's json reads them, but an answer holding them is not JSON;
- integers of more digits than Python converts (a ValueError inside json.loads, and
  quadratic time before that limit existed);
- NUL characters (databases store none in text);
- lone surrogates (``"\\ud800"``): text that is not Unicode can't be stored or encoded;
- nesting deeper than a field may hold (``MAX_JSON_DEPTH``).

Nesting deep enough to exhaust the parser's recursion is text we can't read (``NotJson``).
``refusal`` is the same check for a value already parsed (stored-as-is fields)."""
from __future__ import annotations

import json
import math
import re
import sys

MAX_JSON_DEPTH = 32  # a JSON value stored as given (config, fingerprint, cookies)
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 1  # a body: an object of such fields
# Python's own limit on int <-> str (sys.set_int_max_str_digits can only lower our need).
MAX_INT_DIGITS = sys.int_info.default_max_str_digits
_INT_LIMIT = 10 ** MAX_INT_DIGITS

NOT_FINITE = "Must be a finite number (NaN and Infinity are not JSON)."
TOO_LONG = f"Must be a number of at most {MAX_INT_DIGITS} digits."
HAS_NUL = "Must not contain NUL characters (\\u0000)."
NOT_UNICODE = "Must be Unicode text (no lone surrogates such as \\ud800)."
# A surrogate, raw (bytes decoded with surrogatepass) or escaped; pairs match too.
_MAY_HOLD_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89abcdefABCDEF]")


class NotJson(ValueError):
    """The text can't be read as JSON (syntax, encoding, nesting beyond the parser)."""


class Refused(ValueError):
    """JSON the farm won't take; ``path`` names where (``config.a[0]``; "" for the
    whole value)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path or 'body'}: {message}")
        self.path, self.message = path, message


class _TooLong:
    """Stands for an integer too long to convert (json.loads would raise)."""


def loads(data: bytes | str, max_depth: int = MAX_BODY_DEPTH):
    """The value of ``data``; raises ``NotJson`` or ``Refused``."""
    suspect = []  # set when a hook saw something the walk must locate

    def constant(name):
        suspect.append(name)
        return float(name)

    def number(text):
        value = float(text)
        if math.isinf(value):
            suspect.append(text)
        return value

    def integer(text):
        if len(text) - text.startswith("-") > MAX_INT_DIGITS:
            suspect.append(text)
            return _TooLong()
        return int(text)

    try:
        if isinstance(data, bytes):  # as json.loads reads bytes (UTF-8, -16 or -32)
            data = data.decode(json.detect_encoding(data), "surrogatepass")
        value = json.loads(data, parse_constant=constant, parse_float=number,
                           parse_int=integer)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise NotJson(str(exc)) from None
    # Walk the value only when it may hold something to refuse (most bodies don't).
    if (suspect or "\\u0000" in data or data.count("[") + data.count("{") > max_depth
            or _MAY_HOLD_SURROGATE.search(data)):
        found = _body_refusal(value, max_depth)
        if found:
            raise Refused(*found)
    return value


def _body_refusal(value, max_depth: int):
    """``refusal`` field by field, so that too deep names the field."""
    if not isinstance(value, dict):
        return refusal(value, max_depth)
    for key, item in value.items():
        found = _text_refusal(key)
        if found:
            return "", found
        found = refusal(item, max_depth - 1)
        if found:
            return join(key, found[0]), found[1]
    return None


def refusal(value, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """Where the first thing in ``value`` that ``loads`` refuses is, and why: a path
    (``""`` for ``value`` itself) and a message."""
    stack = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            found = _text_refusal(item)
            if found:
                return path, found
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, NOT_FINITE
        elif isinstance(item, _TooLong) or (
                isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT_LIMIT):
            return path, TOO_LONG
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                return "", f"Must not nest deeper than {max_depth}."
            if isinstance(item, dict):
                for key in item:
                    found = isinstance(key, str) and _text_refusal(key)
                    if found:
                        return path, found
                children = [(child, join(path, str(key))) for key, child in item.items()]
            else:
                children = [(child, f"{path}[{index}]") for index, child in enumerate(item)]
            # Reversed: the first refusal in reading order is the one named.
            stack.extend((child, child_path, depth + 1)
                         for child, child_path in reversed(children))
    return None


def _text_refusal(text: str) -> str | None:
    """Why a string can't be stored (a message), or None."""
    if "\x00" in text:
        return HAS_NUL
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return NOT_UNICODE
    return None


def join(path: str, sub: str) -> str:
    """``config`` + ``a[0]`` -> ``config.a[0]``; ``cookie`` + ``[0].value``."""
    if not sub:
        return path
    return f"{path}{sub}" if sub.startswith("[") or not path else f"{path}.{sub}"

