"""The Firefox browser backend (Debian's firefox-esr)."""
from browserfarm import hookimpl
from browserfarm.backends import BrowserBackend


class Firefox(BrowserBackend):
    name = "firefox"
    executables = ("firefox-esr", "firefox")


@hookimpl
def browserfarm_register_browser_backends(register):
    register(Firefox)
