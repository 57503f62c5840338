"""A window's number is unique within its account."""


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_index("window", "account", "seq", unique=True)


def rollback(migrator, database, fake=False, **kwargs):
    migrator.drop_index("window", "account", "seq")
