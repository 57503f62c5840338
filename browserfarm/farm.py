"""The farm: settings, database, plugins and secrets, assembled once per process by
the app factory or the CLI, and handed to services explicitly."""
from __future__ import annotations

from dataclasses import dataclass, field

import peewee

from browserfarm.config import Settings, load_settings
from browserfarm.db import open_database
from browserfarm.plugins import Plugins, load_plugins
from browserfarm.security import ProxyCipher
from browserfarm.services.revisions import AnswerCache


@dataclass
class Farm:
    settings: Settings
    db: peewee.Database
    plugins: Plugins
    cipher: ProxyCipher
    answers: AnswerCache = field(default_factory=AnswerCache)  # see services.revisions

    @classmethod
    def assemble(cls, settings: Settings | None = None) -> "Farm":
        settings = settings or load_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings=settings, db=open_database(settings.effective_database_url),
                   plugins=load_plugins(settings.disable_plugins),
                   cipher=ProxyCipher.from_settings(settings))
