"""The plugin manager: hookspecs, plugins from the ``browserfarm`` entry-point group,
and the registries the plugins fill.

Built-in plugins are entry points of this distribution, loaded exactly like
third-party ones. Built in ``load_plugins()`` (called by the app factory and the
CLI), never at import time.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field

import pluggy

from browserfarm import hookspecs

ENTRY_POINT_GROUP = "browserfarm"


class PluginError(Exception):
    """A plugin broke a rule of the registries (e.g. a name registered twice)."""


@dataclass
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    hooks: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why the plugin could not be loaded


class Registry:
    """The classes of one family, by name. Plugins add them; the core looks them up.

    A class may define ``unavailable_reason()`` (a classmethod returning a string when
    a dependency is missing); such a class is kept aside, listed with its reason.
    """

    def __init__(self, family: str):
        self.family = family
        self._classes: dict[str, type] = {}
        self.unavailable: dict[str, str] = {}

    def register(self, cls: type) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.family} class {cls!r} has no name")
        if name in self._classes or name in self.unavailable:
            raise PluginError(f"{self.family} {name!r} is registered twice")
        reason_of = getattr(cls, "unavailable_reason", None)
        reason = reason_of() if reason_of else None
        if reason:
            self.unavailable[name] = reason
        else:
            self._classes[name] = cls

    def get(self, name: str) -> type | None:
        return self._classes.get(name)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def known(self, name: str) -> bool:
        """Registered at all, even if unavailable on this machine."""
        return name in self._classes or name in self.unavailable

    def __iter__(self):
        return iter(self._classes.values())


class Plugins:
    """The loaded plugins and the registries they filled."""

    def __init__(self, manager: pluggy.PluginManager, infos: list[PluginInfo]):
        self.manager = manager
        self.infos = infos
        self.proxy_types = Registry("proxy type")
        self.proxy_sources = Registry("proxy source")
        self.ip_check_services = Registry("IP-check service")
        self.browser_backends = Registry("browser backend")
        hook = manager.hook
        hook.browserfarm_register_proxy_types(register=self.proxy_types.register)
        hook.browserfarm_register_proxy_sources(register=self.proxy_sources.register)
        hook.browserfarm_register_ip_check_services(register=self.ip_check_services.register)
        hook.browserfarm_register_browser_backends(register=self.browser_backends.register)

    def proxy_source_for_method(self, method: int):
        for source in self.proxy_sources:
            if source.method == method:
                return source
        return None

    def browser_preferences(self, window, backend) -> dict:
        """Every plugin's extra preferences for a launch, merged in load order."""
        merged: dict = {}
        for prefs in reversed(self.manager.hook.browserfarm_browser_preferences(
                window=window, backend=backend)):
            merged.update(prefs or {})
        return merged


def _entry_points():
    seen = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name not in seen:
                seen.add(ep.name)
                yield dist, ep


def load_plugins(disabled: tuple[str, ...] | list[str] = ()) -> Plugins:
    """Build the plugin manager: hookspecs, entry points minus ``disabled``, checked."""
    manager = pluggy.PluginManager("browserfarm")
    manager.add_hookspecs(hookspecs)
    for name in disabled:
        manager.set_blocked(name)
    infos = []
    for dist, ep in _entry_points():
        if manager.is_blocked(ep.name):
            continue
        info = PluginInfo(ep.name, dist.version, dist.metadata["Name"])
        try:
            plugin = ep.load()
        except ImportError as exc:  # a missing dependency: list it, don't crash
            info.unavailable = f"cannot import {ep.value}: {exc}"
        else:
            manager.register(plugin, name=ep.name)
            info.hooks = sorted(impl.name for impl in manager.get_hookcallers(plugin) or ())
        infos.append(info)
    manager.check_pending()
    return Plugins(manager, sorted(infos, key=lambda i: i.name))
