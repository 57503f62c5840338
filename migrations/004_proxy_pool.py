"""The proxy pool, and the proxy last extracted for a window."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    @migrator.create_model
    class PoolProxy(pw.Model):
        account = pw.ForeignKeyField(migrator.orm["account"], on_delete="CASCADE")
        proxy_type = pw.CharField(max_length=32)
        host = pw.CharField(max_length=255)
        port = pw.IntegerField()
        username = pw.CharField(max_length=255, default="")
        password_enc = pw.TextField(default="")
        remark = pw.TextField(default="")
        last_check = pw.TextField(null=True)
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "pool_proxy"
            indexes = ((("account", "proxy_type", "host", "port", "username"), True),)

    migrator.add_fields("window", extracted_proxy=pw.TextField(null=True),
                        extracted_at=pw.DateTimeField(null=True))


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_fields("window", "extracted_proxy", "extracted_at")
    migrator.remove_model("pool_proxy")
