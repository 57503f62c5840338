"""The window rules: create, edit, list, batch updates, the recycle bin.

Takes and returns dicts with the API's field names (``proxyType``, ``groupId``, ...);
the mapping to columns lives here and nowhere else. Every query is scoped to the
caller's account; every batch is one transaction with a fixed number of statements,
whatever the number of ids.
"""
from __future__ import annotations

import uuid as uuidlib
from datetime import timedelta
from operator import itemgetter
from typing import NamedTuple

import peewee as pw

from browserfarm import permissions as perm
from browserfarm.browsers.backends import DEFAULT_WINDOW_BACKEND, WindowBackend
from browserfarm.db import Prepared, database, json_merge, one_of, one_of_value, write_transaction
from browserfarm.errors import CONFIG_NOT_OBJECT, FarmError, InvalidInput
from browserfarm.models import (LIST_SORTS, JSONText, Account, Group, Tag, Window, WindowTag,
                                iso_utc, utcnow)
from browserfarm.net.proxy import ProxyFailure
from browserfarm.services import fingerprints
from browserfarm.services.profiles import collect_after_delete
from browserfarm.services.proxies import (PROXY_FIELDS, SECRET_URL_FIELDS, WINDOW_PROXY_COLUMNS,
                                         WindowProxy, window_proxy)
from browserfarm.services.revisions import (EncodedJson, account_write, current_revision,
                                           json_fragment)


# API field -> Window column, for the plain fields (the proxy's: services.proxies).
COLUMNS = {
    "name": "name",
    "remark": "remark",
    **WINDOW_PROXY_COLUMNS,
    "browserFingerPrint": "fingerprint",
    "config": "config",
    "syncCookies": "sync_cookies",
    "syncTabs": "sync_tabs",
    "syncLocalStorage": "sync_local_storage",
    "syncIndexedDb": "sync_indexed_db",
    "url": "url",
    "cookie": "cookie",
    # BitBrowser's other window fields: kept and shown; what a backend does with them
    # is its not_applied() (the detail's notApplied).
    "platform": "platform",
    "platformIcon": "platform_icon",
    "userName": "platform_user_name",
    "isSynOpen": "is_syn_open",
    "workbench": "workbench",
    "country": "country",
    "province": "province",
    "city": "city",
    "isIpv6": "is_ipv6",
    "isGlobalProxyInfo": "is_global_proxy_info",
    "duplicateCheck": "duplicate_check",
    "abortImage": "abort_image",
    "abortImageMaxSize": "abort_image_max_size",
    "abortMedia": "abort_media",
    "muteAudio": "mute_audio",
    "stopWhileNetError": "stop_while_net_error",
    "stopWhileIpChange": "stop_while_ip_change",
    "stopWhileCountryChange": "stop_while_country_change",
    "syncBookmarks": "sync_bookmarks",
    "syncAuthorization": "sync_authorization",
    "syncHistory": "sync_history",
    "syncSessions": "sync_sessions",
    "syncExtensions": "sync_extensions",
    "syncUserExtensions": "sync_user_extensions",
    "syncPaymentsAndAddress": "sync_payments_and_address",
    "credentialsEnableService": "credentials_enable_service",
    "isValidUsername": "is_valid_username",
    "allowedSignin": "allowed_signin",
    "clearCacheFilesBeforeLaunch": "clear_cache_files_before_launch",
    "clearCacheWithoutExtensions": "clear_cache_without_extensions",
    "clearCookiesBeforeLaunch": "clear_cookies_before_launch",
    "clearHistoriesBeforeLaunch": "clear_histories_before_launch",
    "randomFingerprint": "random_fingerprint",
    "disableGpu": "disable_gpu",
    "disableTranslatePopup": "disable_translate_popup",
    "disableNotifications": "disable_notifications",
    "disableClipboard": "disable_clipboard",
    "memorySaver": "memory_saver",
    "enableBackgroundMode": "enable_background_mode",
}
# The platform account's secrets: Fernet tokens at rest (the farm's cipher), shown
# like the proxy password, only to callers who may reveal it.
SECRET_COLUMNS = {"password": "platform_password_enc", "faSecretKey": "fa_secret_key_enc"}
COUNT_SIZE = 100  # bytes, about, of a cached count
# Up to this many windows a filter's whole order (ids, 8 bytes each) is kept per
# revision and sort, and pages are its slices: no OFFSET scan per page.
ORDER_KEPT_MAX = 100_000


#: What ``/browser/list`` sorts by (``sortProperties``): the model's list sorts.
SORT_NAMES = tuple(LIST_SORTS)


class Reveal(NamedTuple):
    """Which of a window's secrets an answer shows: its passwords (the proxy's, with
    the extraction URLs, which carry the provider's key, and the platform account's
    password and 2FA key) and its cookies (logged-in sessions). Part of a cached
    list's key: an answer is kept per level."""
    proxy: bool
    cookies: bool

    @classmethod
    def to(cls, caller) -> "Reveal":
        return cls(caller.can(perm.BROWSER_PROXY_REVEAL),
                   caller.can(perm.BROWSER_COOKIE_REVEAL))


REVEAL_ALL = Reveal(proxy=True, cookies=True)  # for agents and the runner


class WindowService:
    def __init__(self, farm, caller):
        self.farm = farm
        self.caller = caller
        self.account_id = caller.account_id
        self.proxy = WindowProxy(farm, caller.account_id,
                                 caller.can(perm.BROWSER_PROXY_REVEAL))

    # ----- reading -------------------------------------------------------------

    def detail(self, ref: dict) -> dict:
        self.caller.require(perm.BROWSER_LIST)
        window = Window.by_ref(self.account_id, ref, deleted=None)  # windows in the recycle bin too
        data = self._to_api([window])[0]
        data["notApplied"] = self._not_applied(data)
        return data

    def list(self, query: dict) -> EncodedJson:
        self.caller.require(perm.BROWSER_LIST)
        return self._cached_page(query, deleted=False)

    def recycle_list(self, query: dict) -> EncodedJson:
        self.caller.require(perm.BROWSER_LIST)
        self.purge_expired()
        return self._cached_page(query, deleted=True)

    def _cached_page(self, query: dict, deleted: bool) -> EncodedJson:
        """A page is a function of the account's revision and the query (see
        services.revisions); recent pages are answered from the farm's cache."""
        revision = current_revision(self.account_id)
        reveal = Reveal.to(self.caller)
        key = (self.account_id, revision, deleted, reveal, _cache_key(query))
        return self.farm.answers.get_or_compute(key, lambda: EncodedJson.of(
            self._page(query, deleted, revision, reveal)))

    def _page(self, query: dict, deleted: bool, revision: int, reveal: Reveal) -> dict:
        page, size = query.get("page", 0), query.get("pageSize", 10)
        filters = list_filters(query)
        # The count depends on the filters only: each page and sort of them shares it.
        count_key = ("count", self.account_id, revision, deleted, _cache_key(filters))
        total = self.farm.answers.get_or_compute(
            count_key, lambda: Window.list_count(self.account_id, deleted, filters),
            size=lambda _: COUNT_SIZE)
        sort = query.get("sortProperties", "seq")  # a key of LIST_SORTS
        ascending = query.get("sortDirection") == "asc"
        if total > ORDER_KEPT_MAX:
            window_ids = Window.list_page(self.account_id, deleted, filters, sort,
                                          ascending, page * size, size)
        else:  # each page and sort of a dashboard's list is a slice of a kept order
            order = self.farm.answers.get_or_compute(
                (*count_key, sort, ascending),
                lambda: Window.list_order(self.account_id, deleted, filters, sort, ascending),
                size=lambda ids: COUNT_SIZE + ids.itemsize * len(ids))
            window_ids = order[page * size:(page + 1) * size].tolist()
        return {"list": windows_to_api(self.farm, window_ids, reveal, stored_json=True),
                "page": page,
                "pageSize": size, "totalNum": total}

    # ----- writing -------------------------------------------------------------

    def save(self, data: dict) -> dict:
        """``/browser/update``: create without an id, edit with one."""
        if any(data.get(k) not in (None, "") for k in ("id", "browserId", "uuid")):
            self.caller.require(perm.BROWSER_UPDATE_SINGLE)
            return self._edit(data)
        self.caller.require(perm.BROWSER_CREATE)
        return self._create(data)

    def update_partial(self, data: dict) -> dict:
        ids = data.pop("ids")
        self.caller.require(perm.for_ids(ids, perm.BROWSER_UPDATE_SINGLE,
                                         perm.BROWSER_UPDATE_BATCH))
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids)
            # Partial means merged key by key into what each window has; the merges and
            # the plain fields go in one UPDATE (each rewrites every row: twice the cost).
            changes = self._merged_json_fields(data)
            changes.update(self._plain_changes(data))
            self._apply(window_ids, changes, data.get("tagIds"))
        return {"ids": window_ids, "updated": len(window_ids)}

    def update_group(self, ids: list, group_id) -> dict:
        self.caller.require(perm.for_ids(ids, perm.BROWSER_UPDATE_SINGLE,
                                         perm.BROWSER_UPDATE_BATCH))
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids)
            self._apply(window_ids, {"group": self._group_id(group_id)}, None)
        return {"ids": window_ids, "updated": len(window_ids)}

    def update_remark(self, ids: list, remark: str) -> dict:
        self.caller.require(perm.for_ids(ids, perm.BROWSER_UPDATE_SINGLE,
                                         perm.BROWSER_UPDATE_BATCH))
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids)
            self._apply(window_ids, {"remark": remark}, None)
        return {"ids": window_ids, "updated": len(window_ids)}

    def update_proxy(self, data: dict) -> dict:
        """The same proxy for every window; fields not given are reset, so nothing of
        an older proxy lingers."""
        ids = data.pop("ids")
        self.caller.require(perm.for_ids(ids, perm.BROWSER_UPDATE_SINGLE,
                                         perm.BROWSER_UPDATE_BATCH))
        changes = self.proxy.columns(data)
        if "ipCheckService" in data:
            changes.update(self._plain_changes({"ipCheckService": data["ipCheckService"]}))
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids)
            self._apply(window_ids, changes, None)
        return {"ids": window_ids, "updated": len(window_ids)}

    def delete(self, data: dict) -> dict:
        """First phase: into the recycle bin. ``ids``, or one of id/browserId/uuid
        (exactly one form: the request schema's rule, api.windows.DeleteArgs)."""
        self.caller.require(perm.BROWSER_DELETE_RECYCLE)
        with account_write(self.farm, self.account_id):
            # The aliases of the single form must all name the same window.
            window_ids = Window.ids_of(self.account_id, data["ids"]) if data.get("ids") else [Window.by_ref(self.account_id, data).id]
            self._apply(window_ids, {"deleted_at": utcnow()}, None, touch=False)
        return {"ids": window_ids, "deleted": len(window_ids)}

    def restore(self, ids: list) -> dict:
        self.caller.require(perm.BROWSER_RESTORE)
        self.purge_expired()
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids, deleted=True)
            self._apply(window_ids, {"deleted_at": None, "recycle_bin_remark": ""}, None)
        return {"ids": window_ids, "restored": len(window_ids)}

    def delete_permanently(self, ids: list) -> dict:
        self.caller.require(perm.BROWSER_DELETE_PERMANENT)
        with account_write(self.farm, self.account_id):
            window_ids = Window.ids_of(self.account_id, ids, deleted=True)
            WindowTag.delete().where(self._one_of(WindowTag.window, window_ids)).execute()
            Window.delete().where(self._one_of(Window.id, window_ids)).execute()
        collect_after_delete(self.farm, self.account_id)  # their profile archives went too
        return {"ids": window_ids, "deleted": len(window_ids)}

    def check_proxy(self, ref: dict, service: str | None = None) -> dict:
        """Check the window's proxy as an open would use it."""
        self.caller.require(perm.PROXY_CHECK)
        return self.proxy.check(Window.by_ref(self.account_id, ref), service)

    def refresh_proxy(self, ref: dict, service: str | None = None) -> dict:
        """Rotate the window's proxy, then check the new one."""
        self.caller.require(perm.BROWSER_UPDATE_SINGLE)
        self.caller.require(perm.PROXY_CHECK)
        return self.proxy.refresh(Window.by_ref(self.account_id, ref), service)

    # ----- what the Local API agent asks ---------------------------------------------

    def launch_config(self, ref: dict, fresh_proxy: bool = False) -> dict:
        """All an agent needs to open the window: the window (passwords and cookies
        included), its proxy as it should be used now (extracted if need be), and the
        start page."""
        self.caller.require(perm.BROWSER_OPEN)
        self.caller.require(perm.BROWSER_PROXY_REVEAL)  # the answer holds the secrets
        window = Window.by_ref(self.account_id, ref)
        try:
            proxy = window_proxy(self.farm, window, fresh=fresh_proxy)
        except ProxyFailure as failure:  # e.g. the extraction URL failed
            raise FarmError(f"{failure.kind}: {failure.message}",
                            {"kind": failure.kind}) from None
        answer = self._to_api([window], reveal=REVEAL_ALL)[0]
        fingerprint = answer["browserFingerPrint"] or {}
        if answer.get("randomFingerprint") and self._drawn_for_firefox(fingerprint):
            # BitBrowser's: a fresh one at each open (the given fields kept)
            answer["browserFingerPrint"] = fingerprints.redrawn(
                fingerprint, window.drawn_fingerprint, self._engine_version())
        return {"window": answer,
                "proxy": {"type": proxy.type, "host": proxy.host, "port": proxy.port,
                          "username": proxy.username, "password": proxy.password},
                "allowUdp": window.enable_socks5_udp, "url": window.url,
                "cookies": window.cookie or []}

    def sync_cookies(self, ref: dict, cookies: list) -> dict:
        """An agent closing a window with syncCookies stores its cookies here; a
        machine with no copy of the profile starts from them."""
        self.caller.require(perm.BROWSER_OPEN)
        window = Window.by_ref(self.account_id, ref)
        with account_write(self.farm, self.account_id):
            Window.update(cookie=cookies, updated_at=utcnow()).where(
                Window.id == window.id).execute()
        return {"id": window.id, "uuid": window.uuid, "cookies": len(cookies)}

    def report_status(self, ref: dict, status: str, pid: int | None, agent: str) -> dict:
        """An agent says where the window stands: opening, opened, closing, closed."""
        self.caller.require(perm.BROWSER_OPEN)
        window = Window.by_ref(self.account_id, ref)
        before = window.open_status
        with account_write(self.farm, self.account_id):
            Window.update(open_status=status, open_pid=pid, open_agent=agent,
                          open_status_at=utcnow()).where(Window.id == window.id).execute()
        return {"id": window.id, "uuid": window.uuid, "before": before, "status": status}

    def purge_expired(self) -> int:
        """Drop this account's windows that stayed in the recycle bin past retention."""
        return purge_recycle_bin(self.farm, self.account_id)

    # ----- internals -----------------------------------------------------------

    def _create(self, data: dict) -> dict:
        fingerprint, drawn = self._completed(data.get("browserFingerPrint") or {})
        data = {**data, "browserFingerPrint": fingerprint}
        proxy_columns = self.proxy.columns(data)
        with account_write(self.farm, self.account_id):
            seq = (Window.select(pw.fn.MAX(Window.seq))
                   .where(Window.account == self.account_id).scalar() or 0) + 1
            columns = self._plain_changes(data)
            columns.update(proxy_columns)
            columns["name"] = columns.get("name") or f"Window {seq}"
            columns["drawn_fingerprint"] = drawn
            window = Window.create(account=self.account_id, uuid=str(uuidlib.uuid4()),
                                   seq=seq, **columns)
            if data.get("tagIds"):
                self._set_tags([window.id], self._tag_ids(data["tagIds"]))
        return self._to_api([window])[0]

    def _edit(self, data: dict) -> dict:
        drawn = None
        if "browserFingerPrint" in data:  # replaced: completed as a new window's is
            fingerprint, drawn = self._completed(data["browserFingerPrint"])
            data = {**data, "browserFingerPrint": fingerprint}
        with account_write(self.farm, self.account_id):
            window = Window.by_ref(self.account_id, data)
            changes = self._plain_changes(data)
            if drawn is not None:
                changes["drawn_fingerprint"] = drawn
            changes.update(self.proxy.columns(data, window))
            self._apply([window.id], changes, data.get("tagIds"))
            window = Window.get_by_id(window.id)
        return self._to_api([window])[0]

    def _completed(self, fingerprint: dict) -> tuple[dict, dict]:
        """The fingerprint as stored: what the user gave, the rest drawn once for the
        desktops' Firefox (services.fingerprints); and what was drawn, kept so that
        randomFingerprint redraws only that."""
        if not self._drawn_for_firefox(fingerprint):
            return fingerprint, {}
        completed = fingerprints.complete(fingerprint, self._engine_version())
        return completed, fingerprints.drawn_values(fingerprint, completed)

    @staticmethod
    def _drawn_for_firefox(fingerprint: dict) -> bool:
        return (fingerprint.get("coreProduct") or DEFAULT_WINDOW_BACKEND) == fingerprints.ENGINE

    def _engine_version(self) -> str:
        """The Firefox windows are drawn for: the setting, else this server's, else the
        newest in the data (the cloud need not run browsers)."""
        backend = self.farm.plugins.window_backends.get(fingerprints.ENGINE)
        return self.farm.settings.firefox_version \
            or (backend.version() if backend is not None else "") \
            or fingerprints.newest_firefox()

    def _plain_changes(self, data: dict) -> dict:
        changes = {}
        for field, column in COLUMNS.items():
            if field in data and field not in PROXY_FIELDS:
                changes[column] = data[field]
        for field, column in SECRET_COLUMNS.items():
            if field in data:
                changes[column] = self.farm.cipher.encrypt(data[field] or "")
        self._check_json_fields(data)
        if "ipCheckService" in data:
            self.proxy.check_ip_service(data["ipCheckService"])
        if "groupId" in data:
            changes["group"] = self._group_id(data["groupId"])
        return changes

    def _merged_json_fields(self, data) -> dict:
        """The changes that merge ``data``'s JSON fields key by key into each window's
        own values (taken out of ``data``)."""
        self._check_json_fields(data)
        changes = {}
        for field, column in (("browserFingerPrint", Window.fingerprint),
                              ("config", Window.config)):
            patch = data.pop(field, None)
            if patch:
                if any('"' in key for key in patch):
                    raise InvalidInput(field, 'keys may not contain "')
                changes[column.name] = json_merge(self.farm.db, column, patch)
        return changes

    def _apply(self, window_ids, changes: dict, tag_ids, touch: bool = True):
        """One UPDATE for all windows (plus two statements when tags are replaced)."""
        if touch:
            changes["updated_at"] = utcnow()
        if changes:
            Window.update(changes).where(self._one_of(Window.id, window_ids)).execute()
        if tag_ids is not None:
            self._set_tags(window_ids, self._tag_ids(tag_ids))

    def _set_tags(self, window_ids, tag_ids):
        """The windows' tags become ``tag_ids``: the other pairs are deleted and the
        missing ones added; a pair they keep is left as it is (a batch that sends the
        tags the windows have writes nothing)."""
        WindowTag.delete().where(self._one_of(WindowTag.window, window_ids),
                                 WindowTag.tag.not_in(tag_ids)).execute()
        if tag_ids:  # every pair, built by the database from the two id lists
            pairs = (Window.select(Window.id, Tag.id).join(Tag, pw.JOIN.CROSS)
                     .where(self._one_of(Window.id, window_ids), Tag.id.in_(tag_ids)))
            WindowTag.insert_from(pairs, [WindowTag.window, WindowTag.tag]) \
                .on_conflict_ignore().execute()

    def _one_of(self, column, values):
        return one_of(self.farm.db, column, values)

    def _group_id(self, group_id):
        if group_id in (None, 0, "0", ""):
            return None
        if not Group.select().where(Group.id == group_id,
                                    Group.account == self.account_id).exists():
            raise InvalidInput("groupId", f"group {group_id} does not exist")
        return group_id

    def _tag_ids(self, tag_ids):
        wanted = list(dict.fromkeys(int(t) for t in tag_ids))
        found = {t.id for t in Tag.select(Tag.id).where(Tag.id.in_(wanted),
                                                         Tag.account == self.account_id)}
        missing = [t for t in wanted if t not in found]
        if missing:
            raise InvalidInput("tagIds", f"tags do not exist: {', '.join(map(str, missing))}")
        return wanted

    def _check_json_fields(self, data: dict) -> None:
        if "browserFingerPrint" in data:
            self._check_fingerprint(data["browserFingerPrint"])
        if "config" in data and not isinstance(data["config"], dict):
            raise InvalidInput("config", CONFIG_NOT_OBJECT)

    def _window_backends(self) -> dict:
        # Installed here or not: the window opens on a desktop's agent.
        return self.farm.plugins.browser_backends.offering(WindowBackend, available=False)

    def _not_applied(self, window: dict) -> dict[str, str]:
        """The stored fields the window's backend does not apply, and why."""
        product = (window["browserFingerPrint"] or {}).get("coreProduct")
        backend = self._window_backends().get(product or DEFAULT_WINDOW_BACKEND)
        if backend is None:
            return {"browserFingerPrint.coreProduct": f"no browser backend {product!r} "
                                                      "runs windows: none is applied"}
        return backend.not_applied(window)

    def _check_fingerprint(self, fingerprint: dict):
        windows = self._window_backends()
        product = fingerprint.get("coreProduct")
        if product and product not in windows:
            raise InvalidInput("browserFingerPrint.coreProduct",
                               f"no browser backend {product!r} runs windows (those that "
                               f"do: {', '.join(windows)})")
        backend = windows.get(product or DEFAULT_WINDOW_BACKEND)
        if backend is not None and not backend.accepts_version(fingerprint.get("coreVersion")):
            raise InvalidInput("browserFingerPrint.coreVersion",
                               f"newer than the installed {backend.name} ({backend.version()})")

    def _to_api(self, windows: list[Window], reveal: Reveal | None = None) -> list[dict]:
        return windows_to_api(self.farm, [w.id for w in windows],
                              reveal or Reveal.to(self.caller))


def _cache_key(fields: dict) -> tuple:
    """``fields`` (a list query or its filters) as part of a cache key: hashable, and
    the same whatever the order of its keys."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in fields.items()))


def list_filters(query: dict) -> dict:
    """The list query's filters, as ``Window.list_count``/``list_page`` take them."""
    filters = {}
    if query.get("groupId") not in (None, 0, "0", ""):
        filters["group"] = query["groupId"]
    for field, name in (("keyword", "keyword"), ("name", "name"), ("remark", "remark"),
                        ("tagIds", "tags"), ("openStatus", "open_status")):
        if query.get(field):
            filters[name] = query[field]
    return filters


# The windows as the API shows them: their columns and group name in one prepared
# select, their tags in another, read as tuples (no model instances: a page of 20
# cost ~3 ms in peewee, most of the cold list).
_SHOWN_FIELDS = [f for f in Window._meta.sorted_fields
                 if f.name not in ("account", "extracted_proxy", "extracted_at")]
_SHOWN = Prepared(lambda: Window.select(*_SHOWN_FIELDS, Group.name)
                  .join(Group, pw.JOIN.LEFT_OUTER)
                  .where(one_of(database.obj, Window.id, [])))
_SHOWN_TAGS = Prepared(lambda: WindowTag.select(WindowTag.window, Tag.id, Tag.name, Tag.color)
                       .join(Tag).where(one_of(database.obj, WindowTag.window, []))
                       .order_by(Tag.id))


def _time_text(value) -> str | None:
    """A DateTimeField's stored value as the API's ISO-8601 text. SQLite gives back
    what peewee wrote, ``str(datetime)``: ISO with a space, turned into the answer's
    form directly (parsing it and printing it again was a tenth of a cold list)."""
    if isinstance(value, str):
        if len(value) in (19, 26) and value[10] == " ":
            return f"{value[:10]}T{value[11:]}+00:00"
        value = pw.DateTimeField().python_value(value)
    return iso_utc(value)


def _reader(field, stored_json: bool):
    if isinstance(field, pw.DateTimeField):
        return _time_text
    if isinstance(field, JSONText):
        return json_fragment if stored_json else field.python_value
    if isinstance(field, pw.BooleanField):
        return bool  # what peewee's python_value does, without the call
    return None  # the driver's value is the value (text, numbers)


# Each answer field and the column of _SHOWN it is read from, in the answer's order.
# Fields computed from their column (groupId, groupName, proxyPassword, isDelete) or
# set afterwards (tagIds, tags) are patched in place, which keeps the order.
_ANSWER_COLUMNS = {
    **COLUMNS, **SECRET_COLUMNS, "id": "id", "seq": "seq", "uuid": "uuid",
    "groupId": "group", "groupName": "group_name", "tagIds": "id", "tags": "id",
    "proxyPassword": "proxy_password_enc", "isDelete": "deleted_at",
    "createdTime": "created_at", "updatedTime": "updated_at", "deletedTime": "deleted_at",
    "recycleBinRemark": "recycle_bin_remark", "openStatus": "open_status",
    "openAgent": "open_agent", "openPid": "open_pid",
}
_SHOWN_INDEX = {name: i for i, name in enumerate(
    [f.name for f in _SHOWN_FIELDS] + ["group_name"])}
_ANSWER_FIELDS = tuple(_ANSWER_COLUMNS)
_answer_values = itemgetter(*(_SHOWN_INDEX[c] for c in _ANSWER_COLUMNS.values()))
_ID = _SHOWN_INDEX["id"]
# The columns of the secrets an answer shows decrypted, or blank (see Reveal).
_SECRETS = {field: _SHOWN_INDEX[column] for field, column in
            {"proxyPassword": "proxy_password_enc", **SECRET_COLUMNS}.items()}
# The shown columns that need converting (by index): JSON decoded or kept as stored.
_SHOWN_READERS = {stored_json: [(_SHOWN_INDEX[f.name], _reader(f, stored_json))
                                for f in _SHOWN_FIELDS
                                if _reader(f, stored_json) is not None
                                and f.name in _ANSWER_COLUMNS.values()]
                  for stored_json in (False, True)}


def windows_to_api(farm, window_ids: list[int], reveal: Reveal,
                   stored_json: bool = False) -> list[dict]:
    """The windows of ``window_ids``, in that order, as the API shows them; ``reveal``:
    which of their secrets. ``stored_json``: JSON columns as ``json_fragment``s,
    for ``EncodedJson`` (which puts their text in as it is)."""
    if not window_ids:
        return []
    ids = one_of_value(database.obj, window_ids)
    readers = _SHOWN_READERS[stored_json]
    rows = {}
    for row in _SHOWN.tuples((), [ids]):
        row = list(row)
        for i, read in readers:
            if row[i] is not None:
                row[i] = read(row[i])
        rows[row[_ID]] = row
    tags: dict[int, list] = {i: [] for i in window_ids}
    for window_id, tag_id, name, color in _SHOWN_TAGS.tuples((), [ids]):
        tags[window_id].append({"id": tag_id, "name": name, "color": color})
    return [window_to_api(rows[i], tags[i], {
        field: farm.cipher.decrypt(rows[i][index]) for field, index in _SECRETS.items()}
        if reveal.proxy else None, reveal.cookies) for i in window_ids]


def window_to_api(row: list, tags: list, secrets: dict | None, cookies: bool) -> dict:
    """``row``: a row of ``_SHOWN`` (times as ISO text). ``secrets``: the passwords
    decrypted by field (proxyPassword, password, faSecretKey); None: the caller may not
    see them (blank), nor the extraction URLs, which carry the provider's key.
    ``cookies`` False: nor the cookies (null)."""
    data = dict(zip(_ANSWER_FIELDS, _answer_values(row)))
    data["groupId"] = data["groupId"] or 0
    data["groupName"] = data["groupName"] or ""
    data["tagIds"] = [t["id"] for t in tags]
    data["tags"] = tags
    for field in _SECRETS:
        data[field] = secrets[field] if secrets else ""
    data["isDelete"] = data["isDelete"] is not None
    if secrets is None:
        for field in SECRET_URL_FIELDS:
            data[field] = ""
    if not cookies:
        data["cookie"] = None
    return data


def purge_recycle_bin(farm, account_id: int | None = None) -> int:
    """Permanently delete windows deleted longer ago than the retention."""
    cutoff = utcnow() - timedelta(days=farm.settings.recycle_retention_days)
    expired = Window.select(Window.id).where(Window.deleted_at < cutoff)
    if account_id is not None:
        expired = expired.where(Window.account == account_id)
    with write_transaction(farm.db):
        accounts = [w.account_id for w in expired.select(Window.account).distinct()]
        if not accounts:
            return 0
        WindowTag.delete().where(WindowTag.window.in_(expired)).execute()
        purged = Window.delete().where(Window.id.in_(expired)).execute()
        Account.update(revision=Account.revision + 1).where(
            Account.id.in_(accounts)).execute()
    for account in accounts:  # their profile archives went too
        collect_after_delete(farm, account)
    return purged
