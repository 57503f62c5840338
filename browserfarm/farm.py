"""The farm: settings, database, plugins and secrets, assembled once per process by
the app factory or the CLI, and handed to services explicitly."""
from __future__ import annotations

from dataclasses import dataclass, field

import peewee

from browserfarm.config import Settings, load_settings
from browserfarm.db import close_all, open_database
from browserfarm.plugins import Plugins, load_plugins
from browserfarm.net.proxy import ProxyOptions
from browserfarm.net.relay import RelayHub
from browserfarm.security import ProxyCipher
from browserfarm.services.revisions import AnswerCache


@dataclass
class Farm:
    settings: Settings
    db: peewee.Database
    plugins: Plugins
    cipher: ProxyCipher
    answers: AnswerCache = field(default_factory=AnswerCache)  # see services.revisions
    relays: RelayHub = field(default_factory=RelayHub)  # started on first use

    _catalogue: object = None

    @property
    def catalogue(self):
        """The v5 browsers of the enabled backends (services.workers.Catalogue)."""
        if self._catalogue is None:
            from browserfarm.services.workers import Catalogue
            self._catalogue = Catalogue(self)
        return self._catalogue

    @property
    def proxy_options(self) -> ProxyOptions:
        return ProxyOptions.from_settings(self.settings, self.relays.ports)

    def close(self) -> None:
        """Stop the relays and close every database connection."""
        self.relays.close()
        close_all(self.db)

    @classmethod
    def assemble(cls, settings: Settings | None = None) -> "Farm":
        settings = settings or load_settings()
        settings.data.create()
        return cls(settings=settings, db=open_database(settings.effective_database_url),
                   plugins=load_plugins(settings.disable_plugins),
                   cipher=ProxyCipher.from_settings(settings))
