"""The hooks a BrowserFarm plugin may implement. Documented in docs/plugins.md.

In the registry hooks, a third-party plugin's class named like a built-in one
replaces it (built-ins are defaults); two third-party classes of one name are an error.
"""
import pluggy

hookspec = pluggy.HookspecMarker("browserfarm")


@hookspec
def browserfarm_register_proxy_types(register):
    """Add proxy types (direct, socks5, ...): call ``register(cls)`` for each class."""


@hookspec
def browserfarm_register_proxy_sources(register):
    """Add proxy sources (how a window gets its proxy): call ``register(cls)`` for each."""


@hookspec
def browserfarm_register_ip_check_services(register):
    """Add IP-check services (ip-api, ...): call ``register(cls)`` for each class."""


@hookspec
def browserfarm_register_browser_backends(register):
    """Add browser backends (firefox, chromium, ...): call ``register(cls)`` for each."""


@hookspec
def browserfarm_browser_preferences(window, backend):
    """Return a dict of extra browser preferences for launching ``window`` on ``backend``
    (merged: built-ins, then third-party plugins by name; a later one wins on a key)."""
