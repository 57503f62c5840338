"""The selenium-grid browser backend: workers on a Selenium Grid 4 (``grid_url``,
BROWSERFARM_GRID_URL), spoken to in W3C WebDriver through the Grid's router (Selenium's
remote connection, browserfarm.browsers.remote).

The backend is always available: its only requirement is a setting, and
``unavailable_reason()`` sees no settings (reading the environment there would disagree
with settings passed in code). With no Grid configured, or one that doesn't answer, the
catalogue is empty, so no worker is ever sent here."""
from __future__ import annotations

import re
import time

from selenium.common.exceptions import WebDriverException

from browserfarm.pluginapi import (Launched, RemoteHandle, WebDriverBackend, WorkerSpec,
                                   hookimpl, remote)
from browserfarm_plugins.chromium import chrome_options

STATUS_TIMEOUT = 5.0  # a Grid that takes longer to list its nodes offers nothing now

# Grid's browserName -> v5's browser, and back (other names pass through lower-cased).
V5_BROWSERS = {"chrome": "chrome", "microsoftedge": "edge", "msedge": "edge",
               "firefox": "firefox", "safari": "safari", "internet explorer": "ie"}
GRID_BROWSERS = {"chrome": "chrome", "chromium": "chrome", "edge": "MicrosoftEdge",
                 "firefox": "firefox", "safari": "safari", "ie": "internet explorer"}
# Selenium's Platform names -> v5's os_version.
WINDOWS = {"xp": "XP", "vista": "Vista", "win7": "7", "win8": "8", "win8_1": "8.1",
           "win10": "10", "win11": "11"}
MAC_NAMES = ("snow_leopard", "mountain_lion", "mavericks", "yosemite", "el_capitan",
             "sierra", "high_sierra", "mojave", "catalina", "big_sur", "monterey",
             "ventura", "sonoma", "sequoia")


def v5_os(platform: str) -> tuple[str, str]:
    """(os, os_version) of a Grid platformName: "linux" -> ("Linux", "any"),
    "WIN10" or "Windows 10" -> ("Windows", "10"), "MONTEREY" -> ("OS X", "Monterey")."""
    name = platform.strip().lower().replace(" ", "_")
    if name in ("linux", "unix") or name.startswith("linux"):
        return "Linux", "any"
    if name in WINDOWS:
        return "Windows", WINDOWS[name]
    if name.startswith("win"):
        version = re.sub(r"^win(dows)?_?", "", name).replace("_", ".")
        return "Windows", version or "any"
    if name in MAC_NAMES:
        return "OS X", name.replace("_", " ").title()
    if name.startswith(("mac", "os_x")):
        version = re.sub(r"^(macos|mac|os_x)_?", "", name)
        return "OS X", version or "any"
    return (platform.strip() or "any"), "any"


def grid_platform(os_name: str, os_version: str) -> str | None:
    """The platformName to ask the Grid for, from a catalogue entry's os."""
    os_name, os_version = os_name.strip().lower(), os_version.strip().lower()
    exact = os_version not in ("", "any")
    if os_name == "linux":
        return "linux"
    if os_name == "windows":
        return f"windows {os_version}" if exact else "windows"
    if os_name in ("os x", "macos", "mac"):
        return os_version if exact else "mac"
    return None


def catalogue_entry(stereotype: dict, node_os: str = "") -> dict | None:
    browser = str(stereotype.get("browserName") or "").strip()
    if not browser:
        return None
    os_name, os_version = v5_os(str(stereotype.get("platformName") or node_os or "any"))
    return {"os": os_name, "os_version": os_version,
            "browser": V5_BROWSERS.get(browser.lower(), browser.lower()),
            # A slot that names no version runs whatever its node has installed.
            "browser_version": str(stereotype.get("browserVersion") or "latest"),
            "device": None, "real_mobile": None}


def capabilities(spec: WorkerSpec) -> dict:
    """W3C capabilities for a worker: the browser, headless, sized; the node's
    stereotype adds its own (e.g. the browser binary)."""
    browser = spec.browser.strip().lower()
    caps: dict = {"browserName": GRID_BROWSERS.get(browser, spec.browser),
                  "timeouts": {"pageLoad": int(spec.timeout * 1000)}}
    if spec.browser_version and spec.browser_version.lower() != "latest":
        caps["browserVersion"] = spec.browser_version
    platform = grid_platform(spec.os, spec.os_version)
    if platform:
        caps["platformName"] = platform
    if caps["browserName"] == "chrome":
        caps["goog:chromeOptions"] = chrome_options(spec, local=False)
    elif caps["browserName"] == "MicrosoftEdge":
        caps["ms:edgeOptions"] = chrome_options(spec, local=False)
    elif caps["browserName"] == "firefox":
        options: dict = {"args": ["-headless", "-width", str(spec.width),
                                  "-height", str(spec.height)]}
        if spec.fingerprint.get("userAgent"):
            options["prefs"] = {"general.useragent.override": spec.fingerprint["userAgent"]}
        caps["moz:firefoxOptions"] = options
    return caps


class SeleniumGrid(WebDriverBackend):
    name = "selenium-grid"
    local = False  # on the Grid's nodes: out of reach of our relays, not warm-pooled

    @classmethod
    def unavailable_reason(cls):
        return None  # needs only grid_url: without one its catalogue is empty

    @classmethod
    def catalogue(cls, settings) -> list[dict]:
        """One entry per distinct slot stereotype of the Grid's nodes that are up."""
        url = (settings.grid_url or "").rstrip("/")
        if not url:
            return []
        try:
            nodes = remote.status(url, STATUS_TIMEOUT).get("nodes") or []
        except WebDriverException:
            return []
        entries: list[dict] = []
        for node in nodes:
            if node.get("availability", "UP") != "UP":  # down or draining
                continue
            node_os = (node.get("osInfo") or {}).get("name", "")
            for slot in node.get("slots") or []:
                entry = catalogue_entry(slot.get("stereotype") or {}, node_os)
                if entry and entry not in entries:
                    entries.append(entry)
        return entries

    @classmethod
    def start_worker(cls, spec: WorkerSpec, settings) -> Launched:
        url = (settings.grid_url or "").rstrip("/")
        if not url:
            raise RuntimeError("selenium-grid: no Grid configured (BROWSERFARM_GRID_URL)")
        if spec.relay_port:
            # The relay listens on this machine's loopback, out of a node's reach:
            # going direct instead would show the node's own address.
            raise RuntimeError("selenium-grid: a window's relay is not reachable from "
                               "Grid nodes; run this worker on a local backend")
        deadline = time.monotonic() + spec.timeout
        # The Grid may queue the request until a slot is free: that counts too.
        session, _ = remote.new_session(url, capabilities(spec), spec.timeout)
        handle = RemoteHandle(cls.name, executor=url, session=session)
        try:
            remote.navigate(url, session, spec.url,
                               max(deadline - time.monotonic(), 1.0))
        except BaseException:
            cls.stop(handle, timeout=10)
            raise
        # No local process: the browser runs on a node, reached through the handle.
        return Launched(pid=0, handle=handle)

    @classmethod
    def stop(cls, handle: RemoteHandle, timeout: float = 20.0) -> bool:
        """Ends the session; the node ends its browser and driver. Never kills
        anything itself, so always False; a Grid that can't be reached ends the
        session at its own idle timeout."""
        try:
            remote.delete_session(handle.executor, handle.session, timeout)
        except WebDriverException:
            pass
        return False


@hookimpl
def browserfarm_register_browser_backends(register):
    register(SeleniumGrid)
