"""v5 workers, their screenshots, runners, and the accounts' API time."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("account", used_time=pw.FloatField(default=0.0),
                        api_time_limit=pw.FloatField(null=True))

    @migrator.create_model
    class Worker(pw.Model):
        account = pw.ForeignKeyField(migrator.orm["account"], on_delete="CASCADE")
        status = pw.CharField(max_length=12, default="queue")
        os = pw.CharField(max_length=64)
        os_version = pw.CharField(max_length=64)
        browser = pw.CharField(max_length=64, null=True)
        browser_version = pw.CharField(max_length=64, null=True)
        device = pw.CharField(max_length=128, null=True)
        real_mobile = pw.BooleanField(null=True)
        backend = pw.CharField(max_length=64)
        url = pw.TextField()
        timeout = pw.IntegerField(default=300)
        name = pw.CharField(max_length=255, default="")
        build = pw.CharField(max_length=255, default="")
        project = pw.CharField(max_length=255, default="")
        resolution = pw.CharField(max_length=16, default="1024x768")
        video = pw.BooleanField(default=False)
        window = pw.ForeignKeyField(migrator.orm["window"], null=True, on_delete="SET NULL")
        session_id = pw.CharField(max_length=64, unique=True)
        handle = pw.TextField(null=True)
        runner = pw.CharField(max_length=200, default="")
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)
        started_at = pw.DateTimeField(null=True)
        ends_at = pw.DateTimeField(null=True)
        ended_at = pw.DateTimeField(null=True)
        end_reason = pw.TextField(default="")
        failed = pw.BooleanField(default=False)

        class Meta:
            table_name = "worker"
            indexes = ((("status", "id"), False), (("account", "status"), False))

    @migrator.create_model
    class Screenshot(pw.Model):
        worker = pw.ForeignKeyField(Worker, on_delete="CASCADE")
        key = pw.CharField(max_length=64, unique=True)
        png = pw.BlobField()
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "screenshot"

    @migrator.create_model
    class Runner(pw.Model):
        name = pw.CharField(max_length=200, unique=True)
        host = pw.CharField(max_length=255, default="")
        pid = pw.IntegerField()
        seen_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "runner"


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_model("runner")
    migrator.remove_model("screenshot")
    migrator.remove_model("worker")
    migrator.remove_fields("account", "used_time", "api_time_limit")
