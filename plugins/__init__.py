"""BrowserFarm's built-in plugins, installed as ``browserfarm_plugins``; each module
is an entry point of the ``browserfarm`` group, like any third-party plugin."""
