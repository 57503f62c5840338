"""Cookies are shown only with ``browser:cookie:reveal`` (new). Tokens made before it
that may see proxy passwords (every role but read-only) keep seeing cookies: they get
the new permission; read-only tokens no longer see them."""
import json

OLD, NEW = "browser:proxy:reveal", "browser:cookie:reveal"


def _grant(database):
    for token_id, text in database.execute_sql('SELECT "id", "permissions" FROM "api_token"'
                                               ).fetchall():
        permissions = json.loads(text)
        if OLD in permissions and NEW not in permissions:
            database.execute_sql('UPDATE "api_token" SET "permissions" = %s WHERE "id" = %s'
                                 .replace("%s", database.param),
                                 (json.dumps(sorted(permissions + [NEW]),
                                             separators=(",", ":")), token_id))


def migrate(migrator, database, fake=False, **kwargs):
    migrator.run(_grant, database)


def rollback(migrator, database, fake=False, **kwargs):
    pass  # the permission is harmless to code that does not know it
