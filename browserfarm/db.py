"""The database: one ``DatabaseProxy`` that models bind to, initialised at run time
from the settings' URL (SQLite by default, PostgreSQL at scale), and migrations."""
from __future__ import annotations

import logging
from pathlib import Path

import peewee
from playhouse.db_url import connect

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,  # several gunicorn workers write to one file
    "synchronous": "normal",
}


def open_database(url: str) -> peewee.Database:
    """Point the proxy at ``url`` and return the real database object."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = connect(url, pragmas=SQLITE_PRAGMAS)
    else:
        db = connect(url)
    database.initialize(db)
    return db


def migrations_dir() -> Path:
    import browserfarm_migrations
    return Path(browserfarm_migrations.__file__).parent


def upgrade(db: peewee.Database) -> list[str]:
    """Apply the migrations not applied yet; return their names."""
    from peewee_migrate import Router
    logging.getLogger("peewee_migrate").setLevel(logging.WARNING)
    router = Router(db, migrate_dir=str(migrations_dir()), ignore=["basemodel"])
    todo = router.diff
    if todo:
        with db.connection_context():
            router.run()
    return todo
