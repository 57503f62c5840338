"""Indexes for listing windows sorted by name, creation or update time."""


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_index("window", "account", "deleted_at", "name")
    migrator.add_index("window", "account", "deleted_at", "created_at")
    migrator.add_index("window", "account", "deleted_at", "updated_at")


def rollback(migrator, database, fake=False, **kwargs):
    migrator.drop_index("window", "account", "deleted_at", "name")
    migrator.drop_index("window", "account", "deleted_at", "created_at")
    migrator.drop_index("window", "account", "deleted_at", "updated_at")
