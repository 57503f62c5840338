"""The data model. Query logic lives here as class methods; every query a request
makes is scoped to the caller's account. The schema itself is created by the frozen
models in ``migrations/``; keep both in step."""
from __future__ import annotations

import json
import re
import uuid as uuidlib
from array import array
from datetime import datetime, timezone

import peewee as pw

from browserfarm.db import Prepared, database, one_of, one_of_value
from browserfarm.errors import InvalidInput, NotFound


def utcnow() -> datetime:
    """Naive UTC: what both SQLite and PostgreSQL columns store the same way."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso_utc(stored: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO-8601 with its zone, as the API answers it."""
    return stored.replace(tzinfo=timezone.utc).isoformat() if stored else None


class JSONText(pw.TextField):
    """JSON stored as text: the same on SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Account(BaseModel):
    """A team. Its members and tokens act on its windows and workers only."""
    name = pw.CharField(max_length=200)
    v5_username = pw.CharField(max_length=100, unique=True)
    v5_key_hash = pw.CharField(max_length=64)
    sessions_limit = pw.IntegerField(default=2)
    created_at = pw.DateTimeField(default=utcnow)
    revision = pw.IntegerField(default=0)  # see services.revisions
    # v5 accounting: seconds of ended workers; the limit (None: unlimited).
    used_time = pw.FloatField(default=0.0)
    api_time_limit = pw.FloatField(null=True)


class Member(BaseModel):
    account = pw.ForeignKeyField(Account, backref="members", on_delete="CASCADE")
    name = pw.CharField(max_length=200)
    email = pw.CharField(max_length=254, null=True)
    role = pw.CharField(max_length=20)
    created_at = pw.DateTimeField(default=utcnow)


class ApiToken(BaseModel):
    """A bearer token; only its SHA-256 is stored."""
    account = pw.ForeignKeyField(Account, backref="tokens", on_delete="CASCADE")
    member = pw.ForeignKeyField(Member, null=True, backref="tokens", on_delete="CASCADE")
    name = pw.CharField(max_length=200)
    token_hash = pw.CharField(max_length=64, unique=True)
    prefix = pw.CharField(max_length=16)  # shown in listings to tell tokens apart
    permissions = JSONText()
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


class Group(BaseModel):
    account = pw.ForeignKeyField(Account, backref="groups", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    sort_num = pw.IntegerField(default=0)
    remark = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class Tag(BaseModel):
    account = pw.ForeignKeyField(Account, backref="tags", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    color = pw.CharField(max_length=20, default="")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class Window(BaseModel):
    """A persistent browser identity: profile, proxy, fingerprint, metadata."""
    account = pw.ForeignKeyField(Account, backref="windows", on_delete="CASCADE")
    uuid = pw.CharField(max_length=36, unique=True)
    seq = pw.IntegerField()  # per-account display number, 1, 2, ...
    name = pw.CharField(max_length=200)
    group = pw.ForeignKeyField(Group, null=True, backref="windows", on_delete="SET NULL")
    remark = pw.TextField(default="")
    proxy_method = pw.IntegerField(default=2)
    proxy_type = pw.CharField(max_length=32, default="direct")
    host = pw.CharField(max_length=255, default="")
    port = pw.IntegerField(null=True)
    proxy_username = pw.CharField(max_length=255, default="")
    proxy_password_enc = pw.TextField(default="")  # Fernet token; see security.ProxyCipher
    proxy_id = pw.IntegerField(null=True)  # proxy pool binding (proxyMethod 4)
    dynamic_ip_url = pw.TextField(default="")
    dynamic_ip_channel = pw.CharField(max_length=64, default="")
    is_dynamic_ip_change_ip = pw.BooleanField(default=False)
    refresh_proxy_url = pw.TextField(default="")
    ip_check_service = pw.CharField(max_length=32, default="ip-api")
    enable_socks5_udp = pw.BooleanField(default=False)
    fingerprint = JSONText(default=dict)
    config = JSONText(null=True)
    sync_cookies = pw.BooleanField(default=True)
    sync_tabs = pw.BooleanField(default=False)
    sync_local_storage = pw.BooleanField(default=False)
    sync_indexed_db = pw.BooleanField(default=False)
    url = pw.TextField(default="")
    cookie = JSONText(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    deleted_at = pw.DateTimeField(null=True, index=True)  # in the recycle bin since
    recycle_bin_remark = pw.TextField(default="")
    # proxyMethod 3: the proxy last extracted from dynamicIpUrl (password encrypted),
    # reused at open unless isDynamicIpChangeIp asks for a new one each time.
    extracted_proxy = JSONText(null=True)
    extracted_at = pw.DateTimeField(null=True)
    # Where the window is open, as its agent reports: opening, opened, closing, closed.
    open_status = pw.CharField(max_length=16, default="closed")
    open_agent = pw.CharField(max_length=200, default="")
    open_pid = pw.IntegerField(null=True)
    open_status_at = pw.DateTimeField(null=True)
    # BitBrowser's other window fields (migration 012): the platform account (its
    # password and 2FA key as Fernet tokens, like proxy_password_enc) and settings.
    platform = pw.TextField(default="")
    platform_icon = pw.CharField(max_length=255, default="")
    platform_user_name = pw.CharField(max_length=255, default="")
    platform_password_enc = pw.TextField(default="")
    fa_secret_key_enc = pw.TextField(default="")
    is_syn_open = pw.IntegerField(default=1)
    workbench = pw.CharField(max_length=16, default="localserver")
    country = pw.CharField(max_length=64, default="")
    province = pw.CharField(max_length=64, default="")
    city = pw.CharField(max_length=64, default="")
    is_ipv6 = pw.BooleanField(default=False)
    is_global_proxy_info = pw.BooleanField(default=False)
    duplicate_check = pw.IntegerField(default=0)
    abort_image = pw.BooleanField(default=False)
    abort_image_max_size = pw.IntegerField(null=True)
    abort_media = pw.BooleanField(default=False)
    mute_audio = pw.BooleanField(default=False)
    stop_while_net_error = pw.BooleanField(default=False)
    stop_while_ip_change = pw.BooleanField(default=False)
    stop_while_country_change = pw.BooleanField(default=False)
    sync_bookmarks = pw.BooleanField(default=False)
    sync_authorization = pw.BooleanField(default=False)
    sync_history = pw.BooleanField(default=False)
    sync_sessions = pw.BooleanField(default=False)
    sync_extensions = pw.BooleanField(default=False)
    sync_user_extensions = pw.BooleanField(default=False)
    sync_payments_and_address = pw.BooleanField(default=False)
    credentials_enable_service = pw.BooleanField(default=False)
    is_valid_username = pw.BooleanField(default=False)
    allowed_signin = pw.BooleanField(default=False)
    clear_cache_files_before_launch = pw.BooleanField(default=False)
    clear_cache_without_extensions = pw.BooleanField(default=False)
    clear_cookies_before_launch = pw.BooleanField(default=False)
    clear_histories_before_launch = pw.BooleanField(default=False)
    random_fingerprint = pw.BooleanField(default=False)
    # The fingerprint fields drawn by default, as drawn (migration 013): randomFingerprint
    # redraws those only; None: not known (all drawable fields are redrawn)
    drawn_fingerprint = JSONText(null=True)
    disable_gpu = pw.BooleanField(default=False)
    disable_translate_popup = pw.BooleanField(default=False)
    disable_notifications = pw.BooleanField(default=False)
    disable_clipboard = pw.BooleanField(default=False)
    memory_saver = pw.BooleanField(default=False)
    enable_background_mode = pw.BooleanField(default=False)

    class Meta:
        # The list's sorts read their pages from these, and from the ascending
        # "(..., column, id DESC)" ones of migration 009 (tuples here can't say DESC).
        indexes = ((("account", "deleted_at", "seq"), False),
                   (("account", "deleted_at", "name"), False),
                   (("account", "deleted_at", "created_at"), False),
                   (("account", "deleted_at", "updated_at"), False),
                   (("account", "seq"), True))

    @classmethod
    def of_account(cls, account_id: int, deleted: bool | None = False):
        """The account's windows: live (``deleted`` False), in the recycle bin (True)
        or both (None)."""
        query = cls.select().where(cls.account == account_id)
        return query if deleted is None else query.where(cls.deleted_at.is_null(not deleted))

    @classmethod
    def by_ref(cls, account_id: int, ref: dict, deleted: bool | None = False) -> "Window":
        """The account's window named by ``id``, ``browserId`` or ``uuid`` of ``ref``;
        when several are given they must all name it."""
        given = [ref[k] for k in ("id", "browserId", "uuid") if ref.get(k) not in (None, "")]
        if not given:
            raise InvalidInput("id", "one of id, browserId or uuid is required")
        window_ids = cls.ids_of(account_id, given, deleted=deleted)
        if len(window_ids) > 1:
            raise InvalidInput("id", "id, browserId and uuid name different windows")
        return cls.get_by_id(window_ids[0])

    @classmethod
    def ids_of(cls, account_id: int, refs: list, deleted: bool | None = False) -> list[int]:
        """The ids of the account's windows named by ``refs`` (numeric ids or uuids),
        in the order asked, each once, found in one query; any unknown or foreign one
        fails the whole call (404 naming them)."""
        ids, uuids = split_refs(refs)
        if not refs:
            return []
        values = [account_id] + [one_of_value(database.obj, given)
                                 for given in (ids, uuids) if given]
        id_of = {}
        for window_id, *window_uuid in _IDS_OF.tuples((bool(ids), bool(uuids), deleted),
                                                      values):
            id_of[window_id] = window_id
            if window_uuid:
                id_of[window_uuid[0]] = window_id
        missing = [r for r in ids + uuids if r not in id_of]
        if missing:
            where = " in the recycle bin" if deleted else ""
            raise NotFound(f"Window not found{where}: {', '.join(map(str, missing))}",
                           {"missing": missing})
        return list(dict.fromkeys(id_of[ref] for ref in refs_in_order(refs)))

    # ----- lists: a page of the account's windows, filtered and sorted ---------------
    # Built by peewee once per shape (which filters, which sort) and then run with
    # each request's values: a list is asked with ever new pages, sorts and words.

    @classmethod
    def list_count(cls, account_id: int, deleted: bool, filters: dict) -> int:
        """How many of the account's windows ``filters`` (see ``LIST_FILTERS``) keep."""
        shape, values = _list_shape(filters)
        return _LIST_COUNT.tuples((deleted, shape), [account_id, *values])[0][0]

    @classmethod
    def list_page(cls, account_id: int, deleted: bool, filters: dict, sort: str,
                  ascending: bool, offset: int, limit: int) -> list[int]:
        """The ids of one page of the windows ``filters`` keep, ordered by the column
        ``sort`` names (a key of ``LIST_SORTS``), ties newest first."""
        shape, values = _list_shape(filters)
        rows = _LIST_PAGE.tuples((deleted, shape, sort, ascending),
                                 [account_id, *values, limit, offset])
        return [row[0] for row in rows]

    @classmethod
    def list_order(cls, account_id: int, deleted: bool, filters: dict, sort: str,
                   ascending: bool) -> array:
        """The ids of all the windows ``filters`` keep, in the order of ``list_page``
        (whose pages are slices of it)."""
        shape, values = _list_shape(filters)
        cursor = _LIST_ORDER.execute((deleted, shape, sort, ascending), [account_id, *values])
        try:
            return array("q", (row[0] for row in cursor))
        finally:
            cursor.close()


class PoolProxy(BaseModel):
    """A proxy of the account's pool; windows bind one with proxyMethod 4."""
    account = pw.ForeignKeyField(Account, backref="pool", on_delete="CASCADE")
    proxy_type = pw.CharField(max_length=32)
    host = pw.CharField(max_length=255)
    port = pw.IntegerField()
    username = pw.CharField(max_length=255, default="")
    password_enc = pw.TextField(default="")  # Fernet token; see security.ProxyCipher
    remark = pw.TextField(default="")
    last_check = JSONText(null=True)  # the latest check's result
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "proxy_type", "host", "port", "username"), True),)


HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class ProfileArchive(BaseModel):
    """A window's profile as its agent last synced it: a manifest of files, each a
    list of content-addressed chunks kept in the profile store."""
    window = pw.ForeignKeyField(Window, backref="archives", on_delete="CASCADE")
    manifest = JSONText()
    size = pw.BigIntegerField(default=0)
    agent = pw.CharField(max_length=200, default="")
    created_at = pw.DateTimeField(default=utcnow)

    @classmethod
    def chunks_of_account(cls, account_id: int) -> set[str]:
        """Every chunk the account's archives name (read from the stored text: no
        need to parse each manifest to find its hashes)."""
        texts = (cls.select(cls.manifest.cast("TEXT")).join(Window)
                 .where(Window.account == account_id).tuples())
        return {digest for (text,) in texts for digest in HEX_SHA256.findall(text or "")}


class ProfileChunk(BaseModel):
    """A chunk an account stored (its bytes: ``DataDir.profile_chunk``). Accounts
    never share one: each stores, sees and pays for its own copy."""
    account = pw.ForeignKeyField(Account, on_delete="CASCADE")
    sha256 = pw.CharField(max_length=64)
    size = pw.BigIntegerField()
    # Last stored, reported present or committed: spared by garbage collection for a
    # while, so an upload between /missing and /commit can rely on it.
    touched_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "sha256"), True),)

    @classmethod
    def of(cls, account_id: int, hashes):
        return cls.select().where(cls.account == account_id,
                                  one_of(database.obj, cls.sha256, hashes))

    @classmethod
    def touch(cls, account_id: int, hashes) -> None:
        cls.update(touched_at=utcnow()).where(
            cls.account == account_id, one_of(database.obj, cls.sha256, hashes)).execute()

    @classmethod
    def used_bytes(cls, account_id: int) -> int:
        return (cls.select(pw.fn.COALESCE(pw.fn.SUM(cls.size), 0))
                .where(cls.account == account_id).scalar())


class WindowTag(BaseModel):
    window = pw.ForeignKeyField(Window, backref="window_tags", on_delete="CASCADE")
    tag = pw.ForeignKeyField(Tag, backref="window_tags", on_delete="CASCADE")

    class Meta:
        indexes = ((("window", "tag"), True),)


class Worker(BaseModel):
    """A v5 browser worker: queued, then started by a runner, then terminated.
    ``starting`` is a claimed worker whose browser is on its way (shown as queue)."""
    account = pw.ForeignKeyField(Account, backref="workers", on_delete="CASCADE")
    status = pw.CharField(max_length=12, default="queue")  # queue starting running terminated
    os = pw.CharField(max_length=64)
    os_version = pw.CharField(max_length=64)
    browser = pw.CharField(max_length=64, null=True)
    browser_version = pw.CharField(max_length=64, null=True)
    device = pw.CharField(max_length=128, null=True)
    real_mobile = pw.BooleanField(null=True)
    backend = pw.CharField(max_length=64)
    url = pw.TextField()
    timeout = pw.IntegerField(default=300)  # seconds, as asked (capped)
    name = pw.CharField(max_length=255, default="")
    build = pw.CharField(max_length=255, default="")
    project = pw.CharField(max_length=255, default="")
    resolution = pw.CharField(max_length=16, default="1024x768")
    video = pw.BooleanField(default=False)
    window = pw.ForeignKeyField(Window, null=True, on_delete="SET NULL")
    session_id = pw.CharField(max_length=64, unique=True)  # the spec's sessionId
    handle = JSONText(null=True)  # how any process reaches the browser (backends)
    runner = pw.CharField(max_length=200, default="")
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    ends_at = pw.DateTimeField(null=True)  # the runner ends it then
    ended_at = pw.DateTimeField(null=True)
    end_reason = pw.TextField(default="")
    failed = pw.BooleanField(default=False)  # ended by an error, not by time or DELETE

    class Meta:
        indexes = ((("status", "id"), False), (("account", "status"), False))


class Screenshot(BaseModel):
    """A stored PNG; its URL carries the unguessable ``key`` (like a signed URL)."""
    worker = pw.ForeignKeyField(Worker, backref="screenshots", on_delete="CASCADE")
    key = pw.CharField(max_length=64, unique=True)
    png = pw.BlobField()
    created_at = pw.DateTimeField(default=utcnow)


class Runner(BaseModel):
    """A ``browserfarm runner`` process, seen alive at ``seen_at`` (its heartbeat)."""
    name = pw.CharField(max_length=200, unique=True)
    host = pw.CharField(max_length=255, default="")
    pid = pw.IntegerField()
    seen_at = pw.DateTimeField(default=utcnow)


ALL_MODELS = (Account, Member, ApiToken, Group, Tag, Window, WindowTag, PoolProxy,
              ProfileArchive, ProfileChunk, Worker, Screenshot, Runner)


# ----- window references -----------------------------------------------------------

def _is_id(ref) -> bool:
    return (isinstance(ref, int) and not isinstance(ref, bool)) or (
        isinstance(ref, str) and ref.isascii() and ref.isdigit())


def refs_in_order(refs):
    """Each ref as ``split_refs`` normalises it (int id or canonical uuid)."""
    for ref in refs:
        if _is_id(ref):
            yield int(ref)
        else:
            yield str(uuidlib.UUID(str(ref)))


def split_refs(refs) -> tuple[list[int], list[str]]:
    """Numeric ids and uuids, in order, without duplicates; anything else is a 211."""
    ids, uuids = {}, {}  # dicts: ordered and de-duplicated
    for ref in refs:
        if isinstance(ref, bool):
            raise InvalidInput("ids", f"{ref!r} is not a window id or uuid")
        if _is_id(ref):
            ids[int(ref)] = None
            continue
        try:
            uuids[str(uuidlib.UUID(str(ref)))] = None
        except ValueError:
            raise InvalidInput("ids", f"{ref!r} is not a window id or uuid") from None
    return list(ids), list(uuids)


def _ids_of_select(by_id: bool, by_uuid: bool, deleted: bool | None):
    """``Window.ids_of``'s select. The uuid is read only when some are asked: ids
    alone come from an index (``window_list_id``) without reading the rows."""
    columns = (Window.id, Window.uuid) if by_uuid else (Window.id,)
    conditions = ([one_of(database.obj, Window.id, [])] if by_id else []) + \
                 ([one_of(database.obj, Window.uuid, [])] if by_uuid else [])
    return Window.of_account(0, deleted).select(*columns).where(
        conditions[0] | conditions[1] if len(conditions) == 2 else conditions[0])


_IDS_OF = Prepared(_ids_of_select)


# ----- window lists ------------------------------------------------------------------

#: What a list sorts by: the API's sort name -> the column. ``seq`` and ``id`` are
#: unique in an account; the others have ties, which go to the newest window (id
#: descending).
LIST_SORTS = {"seq": "seq", "id": "id", "name": "name", "remark": "remark",
              "createdTime": "created_at", "updatedTime": "updated_at"}
UNIQUE_SORTS = ("seq", "id")


def _contains(column):
    """``column`` (lower-cased) contains a word: LIKE with an escaped pattern, whatever
    the word holds (peewee's ``contains`` changes its SQL when the word has a wildcard)."""
    return pw.Expression(pw.fn.LOWER(column), pw.OP.ILIKE, pw.NodeList((
        pw.Value("", converter=False), pw.SQL("ESCAPE"), pw.Value("\\", converter=False))))


def _like(word: str) -> list:
    escaped = word.lower().replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return [f"%{escaped}%", "\\"]


#: What a list can be filtered by, in the order the SQL takes their values: the
#: condition (placeholder values) and the values it takes for the filter's value.
LIST_FILTERS = {
    "group": (lambda: Window.group == 0, lambda group_id: [int(group_id)]),
    "keyword": (lambda: _contains(Window.name) | _contains(Window.remark),
                lambda word: _like(word) + _like(word)),
    "name": (lambda: _contains(Window.name), _like),
    "remark": (lambda: _contains(Window.remark), _like),
    "tags": (lambda: Window.id.in_(WindowTag.select(WindowTag.window).where(
                 one_of(database.obj, WindowTag.tag, []))),
             lambda tag_ids: [one_of_value(database.obj, tag_ids)]),
    # the dashboard's "open" / "closed" (statuses as agents report them)
    "open_status": (lambda: one_of(database.obj, Window.open_status, []),
                    lambda statuses: [one_of_value(database.obj, statuses)]),
}


def _list_shape(filters: dict) -> tuple[tuple, list]:
    """The filters given (their names, in ``LIST_FILTERS`` order) and their values."""
    shape, values = [], []
    for name, (_, values_of) in LIST_FILTERS.items():
        if filters.get(name) is not None:
            shape.append(name)
            values += values_of(filters[name])
    return tuple(shape), values


def _listed(selection, deleted: bool, shape: tuple):
    conditions = [LIST_FILTERS[name][0]() for name in shape]
    return selection.where(Window.account == 0, Window.deleted_at.is_null(not deleted),
                           *conditions)


_LIST_COUNT = Prepared(lambda deleted, shape: _listed(
    Window.select(pw.fn.COUNT(Window.id)), deleted, shape))


def _ordered_select(deleted: bool, shape: tuple, sort: str, ascending: bool):
    column = getattr(Window, LIST_SORTS[sort])
    order = [column.asc() if ascending else column.desc()]
    if sort not in UNIQUE_SORTS:  # the (account, deleted_at, column, id DESC) indexes
        order.append(Window.id.desc())
    return _listed(Window.select(Window.id), deleted, shape).order_by(*order)


_LIST_ORDER = Prepared(_ordered_select)
_LIST_PAGE = Prepared(lambda *shape: _ordered_select(*shape).limit(0).offset(0))


# ----- agents and their commands (appended: the dashboard opens windows on agents) --

class KnownAgent(BaseModel):
    """A Local API agent logged into the account, as it last reported itself; its
    ``name`` is what a window's ``open_agent`` names. Online: seen lately
    (``services.agents.ONLINE_SECONDS``). ``token``: the token the name is bound to
    (the first to poll under it; free again once that token is revoked or gone)."""
    account = pw.ForeignKeyField(Account, backref="agents", on_delete="CASCADE")
    name = pw.CharField(max_length=200)
    token = pw.ForeignKeyField(ApiToken, null=True, on_delete="SET NULL")
    machine = pw.CharField(max_length=255, default="")
    version = pw.CharField(max_length=64, default="")
    created_at = pw.DateTimeField(default=utcnow)
    seen_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class AgentCommand(BaseModel):
    """A window to open or close on an agent, asked from the cloud: queued until the
    agent takes it (or it expires), running, then done or failed with the Local API's
    answer (``result``: ``{code, msg, data}``)."""
    account = pw.ForeignKeyField(Account, on_delete="CASCADE")
    agent = pw.ForeignKeyField(KnownAgent, backref="commands", on_delete="CASCADE")
    window = pw.ForeignKeyField(Window, on_delete="CASCADE")
    action = pw.CharField(max_length=8)  # open close
    args = JSONText()  # the Local API call's body
    status = pw.CharField(max_length=8, default="queued")  # queued running done failed
    result = JSONText(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()  # when a queued or running one is given up
    taken_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("agent", "status", "id"), False),)


ALL_MODELS += (KnownAgent, AgentCommand)


class DashboardSession(BaseModel):
    """A sign-in to the dashboard: its cookie holds a random key, stored here as
    SHA-256, so signing out (the row deleted) ends it on the server, for every copy
    of the cookie."""
    key_hash = pw.CharField(max_length=64, unique=True)
    token = pw.ForeignKeyField(ApiToken, on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(index=True)


ALL_MODELS += (DashboardSession,)
