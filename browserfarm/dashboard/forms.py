"""What the managing pages' forms share: a form is read into the API's request fields
and loaded by the API's own request schema, so a page refuses exactly what the API
refuses, with the same 211 error naming the same field (shown next to that field)."""
from __future__ import annotations

from marshmallow import ValidationError

from browserfarm.api.errors import validation_error


def load(schema_class, data: dict) -> dict:
    """``data`` loaded by an API request schema; its first error is raised as the API's
    211 ``BadRequest`` (``data["field"]`` names the field), as the API answers it."""
    try:
        return schema_class().load(data)
    except ValidationError as error:
        raise validation_error({"json": error.messages}) from None


def shown(value) -> str:
    """A stored value as a form field shows it (and as the form sends it back): a form
    field whose text is unchanged is an unchanged value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
