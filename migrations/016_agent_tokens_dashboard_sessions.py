"""An agent's name is bound to the token that first polled under it (agents known
before: bound at their next poll); dashboard sign-ins are kept on the server, so that
signing out ends them (sessions signed in before this: ended, sign in again)."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("known_agent", token=pw.ForeignKeyField(
        migrator.orm["api_token"], null=True, on_delete="SET NULL"))

    @migrator.create_model
    class DashboardSession(pw.Model):
        key_hash = pw.CharField(max_length=64, unique=True)
        token = pw.ForeignKeyField(migrator.orm["api_token"], on_delete="CASCADE")
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)
        expires_at = pw.DateTimeField(index=True)

        class Meta:
            table_name = "dashboard_session"


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_model("dashboard_session")
    migrator.remove_fields("known_agent", "token")
