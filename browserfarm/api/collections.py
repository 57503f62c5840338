"""``/group/*`` and ``/tag/*``: groups and tags of windows (BitBrowser's paths)."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import FlexibleInt
from browserfarm.services.collections import GroupService, TagService

blp = Blueprint("collections", __name__, description="Groups and tags of windows")

_id = {"id": FlexibleInt(required=True, validate=validate.Range(min=1))}
_page = {"page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000)),
         "pageSize": FlexibleInt(load_default=50, validate=validate.Range(1, 500))}
_name = validate.Length(1, 100)

IdArgs = Schema.from_dict(_id, name="CollectionIdArgs")
PageArgs = Schema.from_dict(_page, name="CollectionPageArgs")
GroupAddArgs = Schema.from_dict({
    "groupName": fields.String(required=True, validate=_name),
    "sortNum": FlexibleInt(validate=validate.Range(-1000000, 1000000)),
    "remark": fields.String(validate=validate.Length(max=1000))}, name="GroupAddArgs")
GroupEditArgs = Schema.from_dict({
    **_id, "groupName": fields.String(validate=_name),
    "sortNum": FlexibleInt(validate=validate.Range(-1000000, 1000000)),
    "remark": fields.String(validate=validate.Length(max=1000))}, name="GroupEditArgs")
_color = fields.String(validate=validate.Regexp(r"^(#[0-9a-fA-F]{3,8})?$",
                                                error="Must be a #rgb or #rrggbb color."))
TagAddArgs = Schema.from_dict({"name": fields.String(required=True, validate=_name),
                               "color": _color}, name="TagAddArgs")
TagEditArgs = Schema.from_dict({**_id, "name": fields.String(validate=_name),
                                "color": _color}, name="TagEditArgs")


class GroupSchema(Schema):
    id = fields.Integer()
    groupName = fields.String()
    sortNum = fields.Integer()
    remark = fields.String()
    windowCount = fields.Integer()


class TagSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    color = fields.String()
    windowCount = fields.Integer()


class DeletedSchema(Schema):
    id = fields.Integer()
    windows = fields.Integer(metadata={"description": "Windows released"})


def _page_of(item_schema, name):
    return envelope_schema(Schema.from_dict({
        "list": fields.List(fields.Nested(item_schema)), "page": fields.Integer(),
        "pageSize": fields.Integer(), "totalNum": fields.Integer()}, name=f"{name}Page"),
        f"{name}PageEnvelope")


GroupEnvelope = envelope_schema(GroupSchema, "GroupEnvelope")
GroupPageEnvelope = _page_of(GroupSchema, "Group")
TagEnvelope = envelope_schema(TagSchema, "TagEnvelope")
TagPageEnvelope = _page_of(TagSchema, "Tag")
DeletedEnvelope = envelope_schema(DeletedSchema, "DeletedEnvelope")


def _routes(kind, service, add_args, edit_args, one, page):
    """add, edit, detail, delete, list for one kind of collection."""
    make = lambda: service(farm(), g.caller)  # noqa: E731

    @blp.route(f"/{kind}/add", endpoint=f"{kind}_add")
    class Add(MethodView):
        @blp.arguments(add_args)
        @blp.response(200, one)
        def post(self, data):
            return success(make().add(data))

    @blp.route(f"/{kind}/edit", endpoint=f"{kind}_edit")
    class Edit(MethodView):
        @blp.arguments(edit_args)
        @blp.response(200, one)
        def post(self, data):
            return success(make().edit(data))

    @blp.route(f"/{kind}/detail", endpoint=f"{kind}_detail")
    class Detail(MethodView):
        @blp.arguments(IdArgs)
        @blp.response(200, one)
        def post(self, data):
            return success(make().detail(data["id"]))

    @blp.route(f"/{kind}/delete", endpoint=f"{kind}_delete")
    class Delete(MethodView):
        @blp.arguments(IdArgs)
        @blp.response(200, DeletedEnvelope)
        def post(self, data):
            return success(make().delete(data["id"]))

    @blp.route(f"/{kind}/list", endpoint=f"{kind}_list")
    class List(MethodView):
        @blp.arguments(PageArgs, required=False)
        @blp.response(200, page)
        def post(self, data):
            return success(make().list(data["page"], data["pageSize"]))


_routes("group", GroupService, GroupAddArgs, GroupEditArgs, GroupEnvelope, GroupPageEnvelope)
_routes("tag", TagService, TagAddArgs, TagEditArgs, TagEnvelope, TagPageEnvelope)
