"""Indexes that let every sort of a window list read its page from an index.

A list orders by a column, ties going to the newest window (id descending). The
indexes of 002 give the descending orders when read backwards; the ascending ones need
``id DESC`` in the index (SQLite and PostgreSQL read one index in one direction). Remark
had none, and id sorts had only the account's index (each row then read for
``deleted_at``)."""

INDEXES = {
    "window_list_id": '"account_id", "deleted_at", "id"',
    "window_list_remark": '"account_id", "deleted_at", "remark"',
    "window_list_name_asc": '"account_id", "deleted_at", "name", "id" DESC',
    "window_list_remark_asc": '"account_id", "deleted_at", "remark", "id" DESC',
    "window_list_created_asc": '"account_id", "deleted_at", "created_at", "id" DESC',
    "window_list_updated_asc": '"account_id", "deleted_at", "updated_at", "id" DESC',
}


def migrate(migrator, database, fake=False, **kwargs):
    for name, columns in INDEXES.items():
        migrator.sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "window" ({columns})')


def rollback(migrator, database, fake=False, **kwargs):
    for name in INDEXES:
        migrator.sql(f'DROP INDEX IF EXISTS "{name}"')
