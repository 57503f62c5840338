"""The errors services raise. Each API surface turns them into its own shape:
the window API into ``{code, msg, data}`` (see ``browserfarm.api.envelope``)."""


#: The spec's own words for a config that isn't an object (kept verbatim).
CONFIG_NOT_OBJECT = "Configuration must be a JSON object"


class FarmError(Exception):
    code = 500
    status = 500

    def __init__(self, msg: str, data: dict | None = None):
        super().__init__(msg)
        self.msg = msg
        self.data = data or {}


class InvalidInput(FarmError):
    """Missing parameter, wrong type or unsupported combination; names the field."""
    code = 211
    status = 400

    def __init__(self, field: str, msg: str, **details):
        super().__init__(f"{field}: {msg}", {"field": field, **details})
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
