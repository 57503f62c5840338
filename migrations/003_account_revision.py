"""Account revision: bumped by every change to an account's windows, groups or tags."""
import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("account", revision=pw.IntegerField(default=0))


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_fields("account", "revision")
