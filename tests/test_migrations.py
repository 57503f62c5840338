"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""
import re
from pathlib import Path

from browserfarm.db import migrations_dir, upgrade
from browserfarm.models import ALL_MODELS


def test_migrated_schema_matches_the_models(farm):
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {c.name: c.null for c in farm.db.get_columns(table)}
        expected = {f.column_name: f.null for f in model._meta.sorted_fields}
        assert columns == expected, table
        unique = {tuple(i.columns) for i in farm.db.get_indexes(table) if i.unique}
        for fields, is_unique in model._meta.indexes:
            if is_unique:
                names = tuple(model._meta.fields[f].column_name for f in fields)
                assert names in unique, (table, names)


def test_upgrade_is_idempotent(farm):
    assert upgrade(farm.db) == []


def test_migrations_never_import_the_app_models():
    for path in Path(migrations_dir()).glob("[0-9]*.py"):
        assert not re.search(r"browserfarm\.models|from browserfarm", path.read_text()), path
