"""The Chromium browser backend (Debian's chromium and chromium-driver)."""
from browserfarm import hookimpl
from browserfarm.backends import BrowserBackend


class Chromium(BrowserBackend):
    name = "chromium"
    executables = ("chromium", "chromium-browser")


@hookimpl
def browserfarm_register_browser_backends(register):
    register(Chromium)
