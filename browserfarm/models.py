"""The data model. Query logic lives here as class methods; every query a request
makes is scoped to the caller's account. The schema itself is created by the frozen
models in ``migrations/``; keep both in step."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import peewee as pw

from browserfarm.db import database


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

    class Meta:
        indexes = ((("account", "deleted_at", "seq"), False),
                   (("account", "deleted_at", "name"), False),
                   (("account", "deleted_at", "created_at"), False),
                   (("account", "deleted_at", "updated_at"), False),
                   (("account", "seq"), True))

    @classmethod
    def of_account(cls, account_id: int, deleted: bool = False):
        query = cls.select().where(cls.account == account_id)
        return query.where(cls.deleted_at.is_null(not deleted))


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


class ProfileArchive(BaseModel):
    """A window's profile as its agent last synced it: a manifest of files, each a
    list of content-addressed chunks kept in the profile store."""
    window = pw.ForeignKeyField(Window, backref="archives", on_delete="CASCADE")
    manifest = JSONText()
    size = pw.BigIntegerField(default=0)
    agent = pw.CharField(max_length=200, default="")
    created_at = pw.DateTimeField(default=utcnow)


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
              ProfileArchive, Worker, Screenshot, Runner)
