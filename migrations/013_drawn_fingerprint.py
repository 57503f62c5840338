"""The fingerprint fields a window got by default, as drawn (JSON), so that
randomFingerprint redraws those and keeps the ones the user gave. Existing windows:
NULL, not known (all drawable fields are redrawn, as before)."""
import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("window", drawn_fingerprint=pw.TextField(null=True))


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_fields("window", "drawn_fingerprint")
