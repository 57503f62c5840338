"""The window API's answer shape, ``{code, msg, data}``, and its error codes (errors
are rendered by ``browserfarm.api.errors``).

| code | HTTP | meaning                                              |
|------|------|------------------------------------------------------|
| 0    | 200  | success                                              |
| 211  | 400  | missing parameter, wrong type, unsupported combination |
| 211  | 405  | a method other than POST (``Allow`` names it)        |
| 211  | 413  | a body over the app's limit                          |
| 401  | 401  | no or invalid token (cloud) / not logged in (local)  |
| 403  | 403  | the token lacks the endpoint's permission            |
| 404  | 404  | unknown API, or unknown / foreign id                 |
| 500  | 500  | the server failed                                    |
"""
from __future__ import annotations

import json

from flask import current_app, jsonify
from marshmallow import Schema, fields

from browserfarm.services.revisions import EncodedJson

STATUS_OF_CODE = {0: 200, 211: 400, 401: 401, 403: 403, 404: 404, 500: 500}


class ErrorEnvelopeSchema(Schema):
    code = fields.Integer(required=True, metadata={
        "enum": sorted(set(STATUS_OF_CODE) - {0}), "example": 211,
        "description": "211 bad input, 401 no or invalid token, 403 not permitted, 404 not "
                       "found, 500 the server failed"})
    msg = fields.String(required=True, metadata={
        "description": "What went wrong, in words", "example": "one of id, browserId or uuid is "
                                                              "required"})
    data = fields.Dict(required=True, metadata={
        "description": "For 211 the bad input's field, for 403 the permission lacking",
        "example": {"field": "id"}})


def envelope_schema(data_schema, name: str) -> type[Schema]:
    """A ``{code, msg, data}`` schema whose data is ``data_schema``."""
    return Schema.from_dict({
        "code": fields.Integer(required=True, metadata={"description": "0: success",
                                                        "example": 0}),
        "msg": fields.String(required=True, metadata={"description": "success, or what was "
                                                                     "done, in words",
                                                      "example": "success"}),
        "data": fields.Nested(data_schema, required=True, metadata={
            "description": "The answer"})}, name=name)


def success(data, msg: str = "success"):
    """The answer, already in the API's shape: services build it, the view's
    documented schema describes it (schemathesis checks they agree), so it is not
    serialised a second time."""
    if isinstance(data, EncodedJson):
        body = f'{{"code":0,"msg":{json.dumps(msg)},"data":{data}}}'
        return current_app.response_class(body, mimetype="application/json")
    return jsonify({"code": 0, "msg": msg, "data": data})
