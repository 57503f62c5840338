"""Groups and tags: named collections of an account's windows.

A window is in at most one group and has any number of tags. Deleting a group leaves
its windows ungrouped; deleting a tag takes it off its windows.
"""
from __future__ import annotations

import peewee as pw
from peewee import IntegrityError

from browserfarm import permissions as perm
from browserfarm.errors import InvalidInput, NotFound
from browserfarm.models import Group, Tag, Window, WindowTag
from browserfarm.services.revisions import account_write


class _Collections:
    model: type[pw.Model]
    kind = ""
    list_permission = ""
    manage_permission = ""
    name_field = "name"  # the API's name for the name

    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller

    def list(self, page: int, page_size: int) -> dict:
        self.caller.require(self.list_permission)
        query = self.model.select().where(self.model.account == self.caller.account_id)
        rows = list(query.order_by(*self._order()).offset(page * page_size).limit(page_size))
        counts = self._window_counts([r.id for r in rows])
        return {"list": [self._to_api(r, counts.get(r.id, 0)) for r in rows],
                "page": page, "pageSize": page_size, "totalNum": query.count()}

    def detail(self, item_id: int) -> dict:
        self.caller.require(self.list_permission)
        item = self._get(item_id)
        return self._to_api(item, self._window_counts([item.id]).get(item.id, 0))

    def add(self, data: dict) -> dict:
        self.caller.require(self.manage_permission)
        try:
            with account_write(self.farm, self.caller.account_id):
                self._check_unique(data[self.name_field])
                item = self.model.create(account=self.caller.account_id,
                                         **self._columns(data))
        except IntegrityError:  # created meanwhile by someone else
            raise InvalidInput(self.name_field, f"a {self.kind} with this name exists") \
                from None
        return self._to_api(item, 0)

    def edit(self, data: dict) -> dict:
        self.caller.require(self.manage_permission)
        with account_write(self.farm, self.caller.account_id):
            item = self._get(data["id"])
            if self.name_field in data:
                self._check_unique(data[self.name_field], except_id=item.id)
            columns = self._columns(data)
            if columns:
                self.model.update(columns).where(self.model.id == item.id).execute()
        # Answered without the list permission: managing it is enough to see it.
        return self._to_api(self.model.get_by_id(item.id),
                            self._window_counts([item.id]).get(item.id, 0))

    def delete(self, item_id: int) -> dict:
        self.caller.require(self.manage_permission)
        with account_write(self.farm, self.caller.account_id):
            item = self._get(item_id)
            released = self._release_windows(item.id)
            item.delete_instance()
        return {"id": item_id, "windows": released}

    # ----- per kind ------------------------------------------------------------

    def _columns(self, data: dict) -> dict:
        raise NotImplementedError

    def _to_api(self, item, window_count: int) -> dict:
        raise NotImplementedError

    def _window_counts(self, ids: list[int]) -> dict[int, int]:
        raise NotImplementedError

    def _release_windows(self, item_id: int) -> int:
        raise NotImplementedError

    def _order(self):
        return (self.model.id,)

    # ----- shared --------------------------------------------------------------

    def _get(self, item_id):
        item = self.model.get_or_none(self.model.id == item_id,
                                      self.model.account == self.caller.account_id)
        if item is None:
            raise NotFound(f"{self.kind.capitalize()} not found: {item_id}")
        return item

    def _check_unique(self, name: str, except_id: int | None = None):
        query = self.model.select().where(self.model.account == self.caller.account_id,
                                          self.model.name == name)
        if except_id is not None:
            query = query.where(self.model.id != except_id)
        if query.exists():
            raise InvalidInput(self.name_field, f"a {self.kind} named {name!r} exists")


class GroupService(_Collections):
    model = Group
    kind = "group"
    list_permission = perm.GROUP_LIST
    manage_permission = perm.GROUP_MANAGE
    name_field = "groupName"

    def _columns(self, data):
        columns = {"groupName": "name", "sortNum": "sort_num", "remark": "remark"}
        return {column: data[field] for field, column in columns.items() if field in data}

    def _to_api(self, group, window_count):
        return {"id": group.id, "groupName": group.name, "sortNum": group.sort_num,
                "remark": group.remark, "windowCount": window_count}

    def _order(self):
        return (Group.sort_num, Group.id)

    def _window_counts(self, ids):
        query = (Window.select(Window.group, pw.fn.COUNT(Window.id).alias("n"))
                 .where(Window.group.in_(ids), Window.deleted_at.is_null())
                 .group_by(Window.group))
        return {row.group_id: row.n for row in query} if ids else {}

    def _release_windows(self, group_id):
        return Window.update(group=None).where(Window.group == group_id).execute()


class TagService(_Collections):
    model = Tag
    kind = "tag"
    list_permission = perm.TAG_LIST
    manage_permission = perm.TAG_MANAGE

    def _columns(self, data):
        return {field: data[field] for field in ("name", "color") if field in data}

    def _to_api(self, tag, window_count):
        return {"id": tag.id, "name": tag.name, "color": tag.color,
                "windowCount": window_count}

    def _window_counts(self, ids):
        query = (WindowTag.select(WindowTag.tag, pw.fn.COUNT(WindowTag.id).alias("n"))
                 .join(Window).where(WindowTag.tag.in_(ids), Window.deleted_at.is_null())
                 .group_by(WindowTag.tag))
        return {row.tag_id: row.n for row in query} if ids else {}

    def _release_windows(self, tag_id):
        return WindowTag.delete().where(WindowTag.tag == tag_id).execute()
