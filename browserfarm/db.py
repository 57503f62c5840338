"""The database: one ``DatabaseProxy`` that models bind to, initialised at run time
from the settings' URL (SQLite by default, PostgreSQL at scale), and migrations."""
from __future__ import annotations

import json
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


# A request waits (up to timeout seconds) for a free connection rather than failing.
POOL = {"max_connections": 32, "stale_timeout": 300, "timeout": 10}


def open_database(url: str) -> peewee.Database:
    """Point the proxy at ``url`` and return the real database object.

    Connections are pooled: a request "connects" and "closes" as usual, but the
    connection goes back to the pool instead of paying the SQLite pragmas (and WAL
    checkpoint on last close) or the PostgreSQL handshake on every request."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("sqlite", "postgres", "postgresql"):
        url = f"{scheme}+pool{sep}{rest}"
    if scheme.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A pooled connection may serve another thread later (threaded servers).
        db = connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False, **POOL)
    else:
        db = connect(url, **POOL)
    database.initialize(db)
    return db


def close_all(db: peewee.Database) -> None:
    """Close every connection, pooled ones included (before a fork, at exit)."""
    if hasattr(db, "close_all"):
        db.close_all()
    elif not db.is_closed():
        db.close()


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


def json_merge(db: peewee.Database, column, patch: dict):
    """SQL for ``column`` (JSON text) with the top-level keys of ``patch`` set: a
    shallow merge done by the database, one statement for any number of rows."""
    if isinstance(db, peewee.PostgresqlDatabase):
        return peewee.NodeList((
            peewee.SQL("(COALESCE("), column, peewee.SQL(", '{}')::jsonb ||"),
            peewee.Value(json.dumps(patch), converter=False),
            peewee.SQL("::jsonb)::text")))
    # SQLite's json_set replaces whole values at the given paths: the same merge. It
    # takes at most 127 arguments (SQLITE_MAX_FUNCTION_ARG): 60 keys a call, nested.
    merged = peewee.fn.COALESCE(column, peewee.SQL("'{}'"))
    items = list(patch.items())
    for start in range(0, len(items), 60):
        paths = []
        for key, value in items[start:start + 60]:
            paths += [peewee.Value(f'$."{key}"', converter=False),
                      peewee.fn.json(peewee.Value(json.dumps(value), converter=False))]
        merged = peewee.fn.json_set(merged, *paths)
    return merged


def one_of(db: peewee.Database, column, values):
    """``column IN values`` with the values as one parameter: the SQL stays the same
    size (and quick to build) for 1 or 10,000 values."""
    value = one_of_value(db, values)
    if isinstance(db, peewee.PostgresqlDatabase):
        return column == peewee.fn.ANY(peewee.Value(value, unpack=False, converter=False))
    return column.in_(peewee.SQL("(SELECT value FROM json_each(?))", [value]))


def one_of_value(db: peewee.Database, values):
    """The one parameter ``one_of`` passes for ``values``, for prepared selects."""
    values = list(values)
    return values if isinstance(db, peewee.PostgresqlDatabase) else json.dumps(values)


def write_transaction(db: peewee.Database):
    """A transaction that will write. On SQLite it takes the write lock at BEGIN
    (IMMEDIATE), so the busy timeout applies; a deferred transaction that read first
    would fail at once with "database is locked" when another writer got there."""
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return db.atomic()


class Prepared:
    """A select run on nearly every request, its SQL built by peewee once per shape and
    kind of database, then run with the values of each call. Building a query costs
    peewee ~0.2-0.5 ms where SQLite answers in ~0.01 ms: on a v5 screenshot these were
    a fifth of the API's overhead, on a window list most of it (docs/benchmarks.md).

    ``build(*shape)`` returns the select for one shape (e.g. which filters a list has)
    with placeholder values; ``tuples(shape, values)`` runs it with the real ones, in
    the order the SQL takes them. The values go to the driver as they are (no field's
    ``db_value``): plain strings and numbers, ``one_of_value`` for a ``one_of``."""

    def __init__(self, build):
        self._build = build
        self._compiled: dict[tuple, tuple[object, str, int]] = {}

    def execute(self, shape: tuple, values):
        """The cursor of the select of ``shape`` run with ``values``."""
        key = (type(database.obj), shape)  # SQLite and PostgreSQL write parameters differently
        compiled = self._compiled.get(key)
        if compiled is None:
            query = self._build(*shape)
            sql, params = query.sql()
            compiled = self._compiled[key] = (query, sql, len(params))
        _, sql, count = compiled
        if len(values) != count:
            raise TypeError(f"this select takes {count} values, not {len(values)}")
        return database.execute_sql(sql, values)

    def tuples(self, shape: tuple, values) -> list[tuple]:
        cursor = self.execute(shape, values)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def model(self, shape: tuple = ()):
        """The model the select of ``shape`` reads (built already)."""
        return self._compiled[(type(database.obj), shape)][0].model


class Lookup(Prepared):
    """A prepared select of one model's row, turned into a model instance by
    converters found once (peewee works them out on every row, ~0.2 ms). ``build()``
    takes no shape; ``first(*values)`` runs it. It selects the model's own columns
    only (no aliases or functions)."""

    def __init__(self, build):
        super().__init__(build)
        self._readers: dict[tuple, list] = {}  # columns -> (field name, converter)

    def first(self, *values):
        cursor = self.execute((), values)
        try:
            row = cursor.fetchone()
            columns = tuple(column[0] for column in cursor.description or ())
        finally:
            cursor.close()
        if row is None:
            return None
        model = self.model()
        readers = self._readers.get(columns)
        if readers is None:
            fields = [model._meta.columns[column] for column in columns]
            readers = self._readers[columns] = [(f.name, f.python_value) for f in fields]
        instance = model(__no_default__=True)  # as peewee builds a row's: nothing dirty
        instance.__data__ = {name: None if value is None else read(value)
                             for (name, read), value in zip(readers, row)}
        return instance
