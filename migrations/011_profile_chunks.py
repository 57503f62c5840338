"""Profile chunks belong to an account: a row per chunk an account stored (its
quota and garbage collection count them). The chunks stored before, shared by all
accounts, stay where they are and readable by the accounts whose archives name them:
each such account gets a row for them."""
import datetime
import json

import peewee as pw

CHUNK_BYTES = 4 * 1024 * 1024


def _adopt(database, ProfileChunk, ProfileArchive, Window):
    rows = {}
    query = (ProfileArchive.select(Window.account, ProfileArchive.manifest)
             .join(Window, on=(ProfileArchive.window == Window.id)).tuples())
    for account_id, text in query:
        try:
            manifest = json.loads(text)
        except ValueError:
            continue
        for entry in manifest.values() if isinstance(manifest, dict) else ():
            chunks = entry.get("chunks") if isinstance(entry, dict) else None
            size = entry.get("size") if isinstance(entry, dict) else None
            if not isinstance(chunks, list) or type(size) is not int:
                continue
            for index, digest in enumerate(chunks):
                last = index == len(chunks) - 1
                length = max(0, size - index * CHUNK_BYTES) if last else CHUNK_BYTES
                rows[account_id, digest] = min(length, CHUNK_BYTES)
    now = datetime.datetime.utcnow()
    batch = [{"account": a, "sha256": d, "size": s, "touched_at": now}
             for (a, d), s in rows.items() if isinstance(d, str) and len(d) == 64]
    with database.atomic():
        for start in range(0, len(batch), 500):
            ProfileChunk.insert_many(batch[start:start + 500]).execute()


def migrate(migrator, database, fake=False, **kwargs):
    @migrator.create_model
    class ProfileChunk(pw.Model):
        account = pw.ForeignKeyField(migrator.orm["account"], on_delete="CASCADE")
        sha256 = pw.CharField(max_length=64)
        size = pw.BigIntegerField()
        touched_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "profile_chunk"
            indexes = ((("account", "sha256"), True),)

    migrator.run(_adopt, database, ProfileChunk, migrator.orm["profile_archive"],
                 migrator.orm["window"])


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_model("profile_chunk")
