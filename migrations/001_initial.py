"""Accounts, members, tokens, groups, tags, windows."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    now = datetime.datetime.utcnow

    @migrator.create_model
    class Account(pw.Model):
        name = pw.CharField(max_length=200)
        v5_username = pw.CharField(max_length=100, unique=True)
        v5_key_hash = pw.CharField(max_length=64)
        sessions_limit = pw.IntegerField(default=2)
        created_at = pw.DateTimeField(default=now)

        class Meta:
            table_name = "account"

    @migrator.create_model
    class Member(pw.Model):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        name = pw.CharField(max_length=200)
        email = pw.CharField(max_length=254, null=True)
        role = pw.CharField(max_length=20)
        created_at = pw.DateTimeField(default=now)

        class Meta:
            table_name = "member"

    @migrator.create_model
    class ApiToken(pw.Model):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        member = pw.ForeignKeyField(Member, null=True, on_delete="CASCADE")
        name = pw.CharField(max_length=200)
        token_hash = pw.CharField(max_length=64, unique=True)
        prefix = pw.CharField(max_length=16)
        permissions = pw.TextField()
        created_at = pw.DateTimeField(default=now)
        last_used_at = pw.DateTimeField(null=True)
        revoked_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "api_token"

    @migrator.create_model
    class Group(pw.Model):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        name = pw.CharField(max_length=100)
        sort_num = pw.IntegerField(default=0)
        remark = pw.TextField(default="")
        created_at = pw.DateTimeField(default=now)

        class Meta:
            table_name = "group"
            indexes = ((("account", "name"), True),)

    @migrator.create_model
    class Tag(pw.Model):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        name = pw.CharField(max_length=100)
        color = pw.CharField(max_length=20, default="")
        created_at = pw.DateTimeField(default=now)

        class Meta:
            table_name = "tag"
            indexes = ((("account", "name"), True),)

    @migrator.create_model
    class Window(pw.Model):
        account = pw.ForeignKeyField(Account, on_delete="CASCADE")
        uuid = pw.CharField(max_length=36, unique=True)
        seq = pw.IntegerField()
        name = pw.CharField(max_length=200)
        group = pw.ForeignKeyField(Group, null=True, on_delete="SET NULL")
        remark = pw.TextField(default="")
        proxy_method = pw.IntegerField(default=2)
        proxy_type = pw.CharField(max_length=32, default="direct")
        host = pw.CharField(max_length=255, default="")
        port = pw.IntegerField(null=True)
        proxy_username = pw.CharField(max_length=255, default="")
        proxy_password_enc = pw.TextField(default="")
        proxy_id = pw.IntegerField(null=True)
        dynamic_ip_url = pw.TextField(default="")
        dynamic_ip_channel = pw.CharField(max_length=64, default="")
        is_dynamic_ip_change_ip = pw.BooleanField(default=False)
        refresh_proxy_url = pw.TextField(default="")
        ip_check_service = pw.CharField(max_length=32, default="ip-api")
        enable_socks5_udp = pw.BooleanField(default=False)
        fingerprint = pw.TextField(default="{}")
        config = pw.TextField(null=True)
        sync_cookies = pw.BooleanField(default=True)
        sync_tabs = pw.BooleanField(default=False)
        sync_local_storage = pw.BooleanField(default=False)
        sync_indexed_db = pw.BooleanField(default=False)
        url = pw.TextField(default="")
        cookie = pw.TextField(null=True)
        created_at = pw.DateTimeField(default=now)
        updated_at = pw.DateTimeField(default=now)
        deleted_at = pw.DateTimeField(null=True, index=True)
        recycle_bin_remark = pw.TextField(default="")

        class Meta:
            table_name = "window"
            indexes = ((("account", "deleted_at", "seq"), False),)

    @migrator.create_model
    class WindowTag(pw.Model):
        window = pw.ForeignKeyField(Window, on_delete="CASCADE")
        tag = pw.ForeignKeyField(Tag, on_delete="CASCADE")

        class Meta:
            table_name = "window_tag"
            indexes = ((("window", "tag"), True),)


def rollback(migrator, database, fake=False, **kwargs):
    for name in ("window_tag", "window", "tag", "group", "api_token", "member", "account"):
        migrator.remove_model(name)
