"""The selenium-grid browser backend: workers on a Selenium Grid 4 (BROWSERFARM_GRID_URL)."""
from browserfarm import hookimpl
from browserfarm.backends import BrowserBackend


class SeleniumGrid(BrowserBackend):
    name = "selenium-grid"

    @classmethod
    def unavailable_reason(cls):
        return "not built yet"


@hookimpl
def browserfarm_register_browser_backends(register):
    register(SeleniumGrid)
