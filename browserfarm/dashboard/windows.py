"""The windows pages: the list (search, filters, sorting, paging) and a window's page.

Both read through ``WindowService`` as the signed-in caller, as ``/browser/list`` and
``/browser/detail`` do: the same pages (from the same answer cache), the same secrets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import orjson
from flask import Blueprint, current_app, render_template, request, url_for

from browserfarm import permissions as perm
from browserfarm.dashboard.auth import current_caller
from browserfarm.dashboard.forms import shown
from browserfarm.dashboard.manage import CHOICE_WORDS, FINGERPRINT_LABELS, LABELS
from browserfarm.models import Window
from browserfarm.services.collections import GroupService, TagService
from browserfarm.services.revisions import current_revision
from browserfarm.services.windows import SORT_NAMES, WindowService

PAGE_SIZES = (20, 50, 100)
# The list's open filter -> the statuses agents report that it keeps (a window
# closing is still open).
OPEN_FILTERS = {"open": ["opening", "opened", "closing"], "closed": ["closed"]}
SORT_LABELS = {"seq": "No.", "name": "Name", "remark": "Remark", "createdTime": "Created",
               "updatedTime": "Updated", "id": "Id"}
FILTER_OPTIONS_MAX = 500  # groups and tags offered in the filters


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/windows", "windows", window_list)
    bp.add_url_rule("/windows/<int:window_id>", "window", window_page)


@dataclass(frozen=True)
class ListQuery:
    """The list's query string, read leniently: a value that makes no sense is left out
    (a hand-edited URL still shows a list)."""
    q: str = ""
    group: int = 0
    tag: int = 0
    status: str = ""
    sort: str = "seq"
    dir: str = "desc"
    page: int = 1
    size: int = 50

    @classmethod
    def from_args(cls, args) -> "ListQuery":
        status = args.get("status", "")
        sort = args.get("sort", "seq")
        size = args.get("size", 50, type=int)
        return cls(q=args.get("q", "").strip()[:200],
                   group=max(args.get("group", 0, type=int), 0),
                   tag=max(args.get("tag", 0, type=int), 0),
                   status=status if status in OPEN_FILTERS else "",
                   sort=sort if sort in SORT_NAMES else "seq",
                   dir="asc" if args.get("dir") == "asc" else "desc",
                   page=min(max(args.get("page", 1, type=int), 1), 1_000_000),
                   size=size if size in PAGE_SIZES else 50)

    def service_query(self) -> dict:
        """As ``/browser/list`` takes it."""
        query = {"page": self.page - 1, "pageSize": self.size,
                 "sortProperties": self.sort, "sortDirection": self.dir}
        if self.q:
            query["keyword"] = self.q
        if self.group:
            query["groupId"] = self.group
        if self.tag:
            query["tagIds"] = [self.tag]
        if self.status:
            query["openStatus"] = OPEN_FILTERS[self.status]
        return query

    def url(self, **changes) -> str:
        """This list with ``changes``, defaults left out of the URL."""
        values = {**self.__dict__, **changes}
        defaults = ListQuery().__dict__
        return url_for("dashboard.windows",
                       **{k: v for k, v in values.items() if v != defaults[k]})

    def sort_url(self, sort: str) -> str:
        """Sorted by ``sort``: descending first, the other way when already so."""
        flip = "asc" if self.sort == sort and self.dir == "desc" else "desc"
        return self.url(sort=sort, dir=flip, page=1)


def window_list():
    farm, caller = _farm(), current_caller()
    query = ListQuery.from_args(request.args)
    # The service answers with the API's JSON text (EncodedJson, cached as such).
    page = orjson.loads(str(WindowService(farm, caller).list(query.service_query())))
    windows = page["list"]
    pages = max(math.ceil(page["totalNum"] / query.size), 1)
    return render_template(
        "windows/list.html", query=query, windows=windows, total=page["totalNum"],
        pages=pages, since=open_since(caller.account_id, windows),
        groups=_options(GroupService, perm.GROUP_LIST),
        tags=_options(TagService, perm.TAG_LIST),
        sorts=SORT_LABELS, page_sizes=PAGE_SIZES)


def window_page(window_id: int):
    caller = current_caller()
    window = WindowService(_farm(), caller).detail({"id": window_id})
    return render_template("windows/detail.html", window=window,
                           since=open_since(caller.account_id, [window]).get(window["id"]),
                           fingerprint=fingerprint_rows(window["browserFingerPrint"] or {}),
                           labels=LABELS)


def fingerprint_rows(fingerprint: dict) -> list[tuple[str, str, str]]:
    """A window's fingerprint as a table: (label, value, the API's field name), the
    form's fields first in its order, then the rest as the API names them; a list or
    an object as compact JSON, a numbered choice with its words."""
    names = [*(n for n in FINGERPRINT_LABELS if n in fingerprint),
             *sorted(n for n in fingerprint if n not in FINGERPRINT_LABELS)]
    rows = []
    for name in names:
        value = fingerprint[name]
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (dict, list)):
            text = orjson.dumps(value).decode()
        else:
            text = shown(value)
            words = CHOICE_WORDS.get(name, {}).get(text)
            text = f"{words} ({text})" if words else text
        rows.append((FINGERPRINT_LABELS.get(name, name), text, name))
    return rows


def open_since(account_id: int, windows: list[dict]) -> dict[int, datetime]:
    """When each open window's status last changed (the API's answers leave it out)."""
    open_ids = [w["id"] for w in windows if w["openStatus"] != "closed"]
    if not open_ids:
        return {}
    rows = (Window.select(Window.id, Window.open_status_at)
            .where(Window.account == account_id, Window.id.in_(open_ids)).tuples())
    return {window_id: at for window_id, at in rows if at}


def _options(service, permission: str) -> list[dict]:
    """The groups or tags the filters offer, with their window counts: kept per account
    revision (any write to windows, groups or tags changes it), as list pages are,
    since counting over 10,000 windows took most of a page's time."""
    farm, caller = _farm(), current_caller()
    if not caller.can(permission):
        return []
    key = ("dashboard options", service.__name__, caller.account_id,
           current_revision(caller.account_id))
    return farm.answers.get_or_compute(
        key, lambda: service(farm, caller).list(0, FILTER_OPTIONS_MAX)["list"],
        size=lambda items: 200 * len(items) + 100)


def _farm():
    return current_app.extensions["browserfarm"]
