"""The agents logged into each account (as they report themselves) and the commands
the cloud queues for them (open or close a window: the dashboard's buttons)."""
import datetime

import peewee as pw


def migrate(migrator, database, fake=False, **kwargs):
    @migrator.create_model
    class KnownAgent(pw.Model):
        account = pw.ForeignKeyField(migrator.orm["account"], on_delete="CASCADE")
        name = pw.CharField(max_length=200)
        machine = pw.CharField(max_length=255, default="")
        version = pw.CharField(max_length=64, default="")
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)
        seen_at = pw.DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "known_agent"
            indexes = ((("account", "name"), True),)

    @migrator.create_model
    class AgentCommand(pw.Model):
        account = pw.ForeignKeyField(migrator.orm["account"], on_delete="CASCADE")
        agent = pw.ForeignKeyField(KnownAgent, on_delete="CASCADE")
        window = pw.ForeignKeyField(migrator.orm["window"], on_delete="CASCADE")
        action = pw.CharField(max_length=8)
        args = pw.TextField()
        status = pw.CharField(max_length=8, default="queued")
        result = pw.TextField(null=True)
        created_at = pw.DateTimeField(default=datetime.datetime.utcnow)
        expires_at = pw.DateTimeField()
        taken_at = pw.DateTimeField(null=True)
        finished_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "agent_command"
            indexes = ((("agent", "status", "id"), False),)


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_model("agent_command")
    migrator.remove_model("known_agent")
