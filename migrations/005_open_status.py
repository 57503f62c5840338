"""Where a window is open, as its agent reports it."""
import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("window", open_status=pw.CharField(max_length=16, default="closed"),
                        open_agent=pw.CharField(max_length=200, default=""),
                        open_pid=pw.IntegerField(null=True),
                        open_status_at=pw.DateTimeField(null=True))


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_fields("window", "open_status", "open_agent", "open_pid", "open_status_at")
