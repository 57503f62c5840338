"""Profile archives: manifests of content-addressed chunks."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    @migrator.create_model
    class ProfileArchive(pw.Model):
        window = pw.ForeignKeyField(migrator.orm["window"], on_delete="CASCADE")
        manifest = pw.TextField()
        size = pw.BigIntegerField(default=0)
        agent = pw.CharField(max_length=200, default="")
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "profile_archive"


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_model("profile_archive")
