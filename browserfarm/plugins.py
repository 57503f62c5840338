"""The plugin manager: hookspecs, plugins from the ``browserfarm`` entry-point group,
and the registries the plugins fill.

Built-in plugins are the entry points of this distribution (modules
``browserfarm_plugins.*``), loaded like third-party ones but as *defaults*: a
third-party plugin's class of the same name replaces the built-in one (Datasette's
model of default plugins). Plugins are registered in a fixed order, built-ins first,
then third-party ones, each group by entry-point name, so nothing depends on the order
Python happens to find installed distributions in. docs/plugins.md tells plugin
authors what follows from that.

Built in ``load_plugins()`` (called by the app factory and the CLI), never at import time.
"""
from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass, field, replace

import pluggy

from browserfarm import hookspecs
from browserfarm.browsers.backends import WindowBackend, WorkerBackend

ENTRY_POINT_GROUP = "browserfarm"
#: The distribution whose entry points are the built-in plugins.
BUILT_IN_DISTRIBUTION = "browserfarm"


class PluginError(Exception):
    """A plugin broke a rule of the registries (e.g. two plugins claim one name)."""


@dataclass
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why the plugin could not be loaded


@dataclass(frozen=True)
class Entry:
    """The class registered under ``name``, who registered it, and whom it replaced."""
    name: str
    cls: type
    plugin: str
    builtin: bool
    replaces: str | None = None  # the built-in plugin whose class of this name lost
    unavailable: str | None = None  # why the class can't work on this machine


class Registry:
    """The classes of one family, by name. Plugins add them; the core looks them up.

    A built-in plugin's class is a default: a third-party plugin's class of the same
    name replaces it. Two third-party classes (or two built-in ones) of one name are
    an error naming both plugins.

    A class may define ``unavailable_reason()`` (a classmethod returning a string when
    a dependency is missing); such a class is kept aside, listed with its reason.
    """

    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, Entry] = {}

    def register(self, cls: type, *, plugin: str, builtin: bool) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.family} class {cls!r} has no name")
        # Classes are never instantiated, so ABC would never notice a missing method:
        # the core would call the contract's stub and get None.
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        if missing:
            raise PluginError(f"{self.family} class {cls.__module__}.{cls.__qualname__} "
                              f"({name!r}, plugin {plugin!r}) does not implement "
                              f"{', '.join(missing)}")
        replaces = None
        old = self._entries.get(name)
        if old is not None:
            if old.plugin == plugin:
                raise PluginError(f"{self.family} {name!r} is registered twice by "
                                  f"plugin {plugin!r}")
            if builtin == old.builtin:
                first, second = sorted((old.plugin, plugin))
                raise PluginError(f"{self.family} {name!r} is registered by two plugins: "
                                  f"{first!r} and {second!r} (disable one of them)")
            if builtin:  # the third-party class came first and stays
                self._entries[name] = replace(old, replaces=plugin)
                return
            replaces = old.plugin
        reason_of = getattr(cls, "unavailable_reason", None)
        self._entries[name] = Entry(name, cls, plugin, builtin, replaces,
                                    (reason_of() if reason_of else None) or None)

    def get(self, name: str) -> type | None:
        entry = self._entries.get(name)
        return entry.cls if entry and not entry.unavailable else None

    def names(self) -> list[str]:
        return sorted(e.name for e in self._entries.values() if not e.unavailable)

    def known(self, name: str) -> bool:
        """Registered at all, even if unavailable on this machine."""
        return name in self._entries

    @property
    def unavailable(self) -> dict[str, str]:
        return {e.name: e.unavailable for e in self._entries.values() if e.unavailable}

    def entries(self) -> list[Entry]:
        """Every name's winning class, available or not, by name."""
        return sorted(self._entries.values(), key=lambda e: e.name)

    def __iter__(self):
        """The available classes in the order they were registered."""
        return (e.cls for e in self._entries.values() if not e.unavailable)

    def offering(self, contract: type, available: bool = True) -> dict[str, type]:
        """The classes that inherit ``contract`` (e.g. the browser backends that run
        windows), by name; ``available=False`` adds those unavailable here."""
        return {e.name: e.cls for e in self.entries()
                if issubclass(e.cls, contract) and not (available and e.unavailable)}


class Plugins:
    """The loaded plugins and the registries they filled."""

    def __init__(self, manager: pluggy.PluginManager, infos: list[PluginInfo]):
        self.manager = manager
        self.infos = infos
        self.builtin = {i.name for i in infos if i.builtin}
        self.proxy_types = Registry("proxy type")
        self.proxy_sources = Registry("proxy source")
        self.ip_check_services = Registry("IP-check service")
        self.browser_backends = Registry("browser backend")
        self._fill("browserfarm_register_proxy_types", self.proxy_types)
        self._fill("browserfarm_register_proxy_sources", self.proxy_sources)
        self._fill("browserfarm_register_ip_check_services", self.ip_check_services)
        self._fill("browserfarm_register_browser_backends", self.browser_backends)

    def _fill(self, hook_name: str, registry: Registry) -> None:
        # One implementation at a time, in pluggy's calling order (third-party plugins
        # before built-ins), each with a ``register`` that knows whose class it gets.
        for impl in reversed(getattr(self.manager.hook, hook_name).get_hookimpls()):
            if impl.wrapper or impl.hookwrapper:  # would be called as a plain function
                raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} cannot be "
                                  "a wrapper")
            register = functools.partial(registry.register, plugin=impl.plugin_name,
                                         builtin=impl.plugin_name in self.builtin)
            args = {"register": register}
            impl.function(*(args[name] for name in impl.argnames))

    @property
    def window_backends(self) -> dict[str, type]:
        """The browser backends that run windows here, by name."""
        return self.browser_backends.offering(WindowBackend)

    @property
    def worker_backends(self) -> dict[str, type]:
        """The browser backends that run v5 workers here, by name."""
        return self.browser_backends.offering(WorkerBackend)

    def proxy_source_for_method(self, method: int):
        for source in self.proxy_sources:
            if source.method == method:
                return source
        return None

    def browser_preferences(self, window, backend) -> dict:
        """Every plugin's extra preferences for a launch, merged in registration order
        (built-ins, then third-party by name): a later plugin wins on a shared key."""
        merged: dict = {}
        for prefs in reversed(self.manager.hook.browserfarm_browser_preferences(
                window=window, backend=backend)):
            merged.update(prefs or {})
        return merged


def _entry_points():
    """(distribution, entry point) of the group: built-ins first, then by name."""
    found = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name not in found:
                found[ep.name] = (dist, ep)
    return sorted(found.values(), key=lambda de: (not _is_builtin(de[0]), de[1].name))


def _is_builtin(dist) -> bool:
    return dist.metadata["Name"] == BUILT_IN_DISTRIBUTION


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
        info = PluginInfo(ep.name, dist.version, dist.metadata["Name"], _is_builtin(dist))
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
