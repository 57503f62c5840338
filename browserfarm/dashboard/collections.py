"""The groups and tags pages: list, create, rename, delete. Each form is loaded by the
API's own request schema (``/group/*``, ``/tag/*``) and done by the API's service."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from browserfarm import permissions as perm
from browserfarm.api import collections as api
from browserfarm.dashboard.auth import current_caller
from browserfarm.dashboard.forms import load
from browserfarm.dashboard.pages import counted, field_errors
from browserfarm.errors import BadRequest
from browserfarm.services.collections import GroupService, TagService

PAGE_SIZE = 100


@dataclass(frozen=True)
class Kind:
    """One kind of collection, as its page shows it."""
    name: str  # "group": its endpoints are <name>s, <name>_add, ...
    service: type
    add_args: type
    edit_args: type
    name_field: str  # the API's name for the name
    fields: tuple[str, ...]  # the form's fields besides the name
    manage: str  # the permission to change them
    labels: dict  # the API's field name -> the form's label

    @property
    def plural(self) -> str:
        return self.name + "s"


GROUPS = Kind("group", GroupService, api.GroupAddArgs, api.GroupEditArgs, "groupName",
              ("sortNum", "remark"), perm.GROUP_MANAGE,
              {"groupName": "Name", "sortNum": "Order", "remark": "Remark"})
TAGS = Kind("tag", TagService, api.TagAddArgs, api.TagEditArgs, "name", ("color",),
            perm.TAG_MANAGE, {"name": "Name", "color": "Color"})


def register(bp: Blueprint) -> None:
    for kind in (GROUPS, TAGS):
        bp.add_url_rule(f"/{kind.plural}", kind.plural, _page(kind))
        bp.add_url_rule(f"/{kind.plural}/add", f"{kind.name}_add", _add(kind),
                        methods=["POST"])
        bp.add_url_rule(f"/{kind.plural}/<int:item_id>/edit", f"{kind.name}_edit",
                        _edit(kind), methods=["POST"])
        bp.add_url_rule(f"/{kind.plural}/<int:item_id>/delete", f"{kind.name}_delete",
                        _delete(kind), methods=["POST"])


def _service(kind: Kind):
    return kind.service(current_app.extensions["browserfarm"], current_caller())


def _render(kind: Kind, values=None, errors=None, editing: int | None = None):
    page = max(request.args.get("page", 0, type=int), 0)
    listed = _service(kind).list(page, PAGE_SIZE)
    return render_template("collections/list.html", kind=kind, page=listed,
                           page_size=PAGE_SIZE, values=values or {}, errors=errors or {},
                           editing=editing), 400 if errors else 200


def _form_data(kind: Kind) -> dict:
    """The form's fields by their API names; blanks left out (the API's defaults)."""
    names = (kind.name_field, *kind.fields)
    return {name: request.form[name] for name in names
            if request.form.get(name, "") != "" or name == kind.name_field}


def _page(kind: Kind):
    def page():
        return _render(kind)
    return page


def _add(kind: Kind):
    def add():
        try:
            item = _service(kind).add(load(kind.add_args, _form_data(kind)))
        except BadRequest as error:
            return _render(kind, request.form, field_errors(error))
        flash(f"{kind.name.capitalize()} {item[kind.name_field]!r} created.", "success")
        return redirect(url_for(f"dashboard.{kind.plural}"))
    return add


def _edit(kind: Kind):
    def edit(item_id: int):
        try:
            item = _service(kind).edit(load(kind.edit_args,
                                            {"id": item_id, **_form_data(kind)}))
        except BadRequest as error:
            return _render(kind, request.form, field_errors(error), editing=item_id)
        flash(f"{kind.name.capitalize()} saved as {item[kind.name_field]!r}.", "success")
        return redirect(url_for(f"dashboard.{kind.plural}"))
    return edit


def _delete(kind: Kind):
    def delete(item_id: int):
        service = _service(kind)
        name = service.detail(item_id)[kind.name_field]
        windows = service.delete(item_id)["windows"]
        affected = f"{counted(windows, 'window')} " + (
            "left ungrouped" if kind is GROUPS else "lost the tag")
        flash(f"{kind.name.capitalize()} {name!r} deleted; {affected}.", "success")
        return redirect(url_for(f"dashboard.{kind.plural}"))
    return delete
