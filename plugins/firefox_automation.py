"""navigator.webdriver false in a Firefox that Marionette and WebDriver BiDi drive.

Firefox's ``Navigator::Webdriver()`` (dom/base/Navigator.cpp) is true while
``nsIMarionette.running`` or ``nsIRemoteAgent.running`` is; in a content process both
read a flag the parent publishes in shared data (``Marionette:Active``,
``RemoteAgent:Active``, set when each server starts listening). No pref turns it off.
A small WebExtension Experiment in the profile clears both flags in the parent once the
servers listen: the servers keep working, pages read the native getter (not a page-level
override) and see ``false``. Experiments load unsigned only where Firefox lets the prefs
below decide (Debian's firefox-esr is built without MOZ_REQUIRE_SIGNING; Mozilla's own
release and ESR builds ignore them, and webdriver stays true there)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

ADDON_ID = "webdriver-flag@browserfarm.local"

# Firefox's own defaults refuse unsigned add-ons and experiments, and leave an add-on
# dropped into the profile disabled until the user agrees.
PREFS = {"xpinstall.signatures.required": False, "extensions.experiments.enabled": True,
         "extensions.autoDisableScopes": 0, "extensions.enabledScopes": 5,
         # Unsigned add-ons load, so a site may offer one: the user is always asked.
         "xpinstall.whitelist.required": True,
         # Marionette and the Remote Agent change prefs at start ("recommended", skipped
         # where the profile sets one); these pages notice, so they keep Firefox's own
         # values (the whole set cannot go: it also keeps the background quiet).
         "dom.disable_open_during_load": True,  # the popup blocker
         "focusmanager.testmode": False, "signon.rememberSignons": True}

_MANIFEST = {
    "manifest_version": 2, "name": "BrowserFarm webdriver flag", "version": "1.0",
    "description": "Keeps navigator.webdriver false while the farm drives this window.",
    "browser_specific_settings": {"gecko": {"id": ADDON_ID}},
    "experiment_apis": {"webdriverFlag": {
        "schema": "schema.json",
        # "startup": runs in the parent when the add-on starts, no background page.
        "parent": {"scopes": ["addon_parent"], "script": "parent.js",
                   "events": ["startup"], "paths": [["webdriverFlag"]]}}},
}
_SCHEMA = [{"namespace": "webdriverFlag", "functions": []}]
# The servers may start before or after the add-on: clear now, and after each start.
_PARENT_JS = """\
"use strict";
const FLAGS = ["Marionette:Active", "RemoteAgent:Active"];
const LISTENING = ["marionette-listening", "remote-listening"];
function clearFlags() {
  const shared = Services.ppmm.sharedData;
  for (const flag of FLAGS) {
    if (shared.get(flag)) {
      shared.set(flag, false);
    }
  }
  shared.flush();
}
const observer = { observe: clearFlags };
this.webdriverFlag = class extends ExtensionAPI {
  onStartup() {
    for (const topic of LISTENING) {
      Services.obs.addObserver(observer, topic);
    }
    clearFlags();
  }
  getAPI() {
    return { webdriverFlag: {} };
  }
};
"""


def xpi() -> bytes:
    """The add-on, the same bytes every time (Firefox rescans a changed file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("manifest.json", json.dumps(_MANIFEST, indent=1)),
                           ("schema.json", json.dumps(_SCHEMA)), ("parent.js", _PARENT_JS)):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def install(profile_dir: Path) -> None:
    """Put the add-on in the profile (with PREFS in its prefs, Firefox enables it)."""
    target = Path(profile_dir) / "extensions" / f"{ADDON_ID}.xpi"
    data = xpi()
    if target.is_file() and target.read_bytes() == data:
        return
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
