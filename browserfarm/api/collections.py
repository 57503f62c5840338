"""``/group/*`` and ``/tag/*``: groups and tags of windows (BitBrowser's paths)."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from browserfarm.api.base import Blueprint, farm
from browserfarm.api.envelope import envelope_schema, success
from browserfarm.api.fields import FlexibleInt, doc
from browserfarm.services.collections import GroupService, TagService

blp = Blueprint("collections", __name__, description="Groups and tags of windows")

_id = {"id": FlexibleInt(required=True, validate=validate.Range(min=1),
                        metadata=doc("The group's or tag's ID", 1))}
_page = {"page": FlexibleInt(load_default=0, validate=validate.Range(0, 1_000_000),
                             metadata=doc("Page number, from 0", 0)),
         "pageSize": FlexibleInt(load_default=50, validate=validate.Range(1, 500),
                                 metadata=doc("Items per page, 1 to 500", 50))}
_name = validate.Length(1, 100)


def _sort_num():
    return FlexibleInt(validate=validate.Range(-1000000, 1000000),
                       metadata=doc("Sort order; lower first", 0))


def _group_remark():
    return fields.String(validate=validate.Length(max=1000),
                         metadata=doc("Group remark", "EU shops"))


IdArgs = Schema.from_dict(_id, name="CollectionIdArgs")
PageArgs = Schema.from_dict(_page, name="CollectionPageArgs")
GroupAddArgs = Schema.from_dict({
    "groupName": fields.String(required=True, validate=_name,
                               metadata=doc("Group name, unique in the account", "shops")),
    "sortNum": _sort_num(), "remark": _group_remark()}, name="GroupAddArgs")
GroupEditArgs = Schema.from_dict({
    **_id, "groupName": fields.String(validate=_name, metadata=doc(
        "New group name, unique in the account", "shops")),
    "sortNum": _sort_num(), "remark": _group_remark()}, name="GroupEditArgs")
_color = fields.String(validate=validate.Regexp(r"^(#[0-9a-fA-F]{3,8})?$",
                                                error="Must be a #rgb or #rrggbb color."),
                       metadata=doc("Tag colour, #rgb or #rrggbb", "#3b82f6"))
TagAddArgs = Schema.from_dict({"name": fields.String(required=True, validate=_name,
                                                     metadata=doc("Tag name, unique in the "
                                                                  "account", "vip")),
                               "color": _color}, name="TagAddArgs")
TagEditArgs = Schema.from_dict({**_id, "name": fields.String(validate=_name, metadata=doc(
    "New tag name, unique in the account", "vip")), "color": _color}, name="TagEditArgs")

_WINDOW_COUNT = doc("Windows in it", 3)


class GroupSchema(Schema):
    id = fields.Integer(metadata=doc("Group ID", 1))
    groupName = fields.String(metadata=doc("Group name", "shops"))
    sortNum = fields.Integer(metadata=doc("Sort order; lower first", 0))
    remark = fields.String(metadata=doc("Group remark", "EU shops"))
    windowCount = fields.Integer(metadata=_WINDOW_COUNT)


class TagSchema(Schema):
    id = fields.Integer(metadata=doc("Tag ID", 1))
    name = fields.String(metadata=doc("Tag name", "vip"))
    color = fields.String(metadata=doc("Tag colour", "#3b82f6"))
    windowCount = fields.Integer(metadata=_WINDOW_COUNT)


class DeletedSchema(Schema):
    id = fields.Integer(metadata=doc("The deleted group's or tag's ID", 1))
    windows = fields.Integer(metadata=doc("Windows released (ungrouped or untagged)", 3))


def _page_of(item_schema, name):
    return envelope_schema(Schema.from_dict({
        "list": fields.List(fields.Nested(item_schema), metadata={
            "description": "This page's items"}),
        "page": fields.Integer(metadata=doc("This page, from 0", 0)),
        "pageSize": fields.Integer(metadata=doc("Items per page", 50)),
        "totalNum": fields.Integer(metadata=doc("Items in all", 1))}, name=f"{name}Page"),
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
