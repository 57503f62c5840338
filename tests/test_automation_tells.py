"""No automation tells: a window opened through the Local API reads navigator.webdriver
false (the native getter, in the page and in a cross-site frame of another process),
while the endpoints its open answer gives (Marionette, WebDriver BiDi) keep working."""
import io
import json
import zipfile

import pytest
import websocket

from browserfarm_plugins import firefox_automation
from browserfarm_plugins.firefox import Firefox
from tests.conftest import needs_firefox, wait_until
from tests.servers import HTTPService
from tests.test_local import _bidi, agent, cloud, cloud_call, local, window_handle  # noqa: F401

firefox = needs_firefox()


@pytest.fixture
def window_display():
    """Not headless as in other tests (conftest): a headless Firefox has tells of its
    own, which detectors read too."""
    return "virtual"


# What a page, and a frame of another site (another content process), tell about
# webdriver, as a detector reads it: the value, where the property lives, whether its
# getter is Firefox's own, and the navigator's own properties (an override shows there).
PROBE = """<!doctype html><title>pending</title>
<iframe src="http://localhost:%(port)d/frame"></iframe>
<script>
function facts() {
  const d = Object.getOwnPropertyDescriptor(Navigator.prototype, "webdriver");
  return {value: navigator.webdriver, inPrototype: "webdriver" in Navigator.prototype,
          getter: d ? Function.prototype.toString.call(d.get) : null,
          own: Object.getOwnPropertyNames(navigator)};
}
// The popup blocker, on in every Firefox, refuses a window.open without a click.
const popup = window.open("/plain", "_blank", "popup");
addEventListener("message", e => {
  document.title = JSON.stringify({page: facts(), frame: e.data, popupBlocked: !popup});
});
</script>"""
FRAME = """<!doctype html><script>
const d = Object.getOwnPropertyDescriptor(Navigator.prototype, "webdriver");
parent.postMessage({value: navigator.webdriver,
                    getter: d ? Function.prototype.toString.call(d.get) : null}, "*");
</script>"""
NATIVE = "function webdriver() {\n [native code]\n}"  # as Firefox shows it to pages


class Probe(HTTPService):
    def respond(self, h):
        if h.route == "/probe":
            h.reply(200, (PROBE % {"port": self.port}).encode(), "text/html")
        elif h.route == "/frame":
            h.reply(200, FRAME.encode(), "text/html")
        else:
            h.reply(200, b"<!doctype html><title>plain</title>", "text/html")


def test_the_addon_is_the_same_bytes_each_time_and_names_its_experiment(tmp_path):
    assert firefox_automation.xpi() == firefox_automation.xpi()  # no rescan at each start
    with zipfile.ZipFile(io.BytesIO(firefox_automation.xpi())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert "Marionette:Active" in archive.read("parent.js").decode()
    assert manifest["browser_specific_settings"]["gecko"]["id"] == firefox_automation.ADDON_ID
    assert "content_scripts" not in manifest and "web_accessible_resources" not in manifest
    firefox_automation.install(tmp_path)
    firefox_automation.install(tmp_path)
    assert [p.name for p in (tmp_path / "extensions").iterdir()] == [
        f"{firefox_automation.ADDON_ID}.xpi"]


@firefox
def test_a_window_reads_webdriver_false_while_marionette_and_bidi_drive_it(local, cloud):
    probe = Probe()
    try:
        window = cloud_call(cloud, "/browser/update", {
            "url": probe.url + "/probe", "syncCookies": True,
            "cookie": [{"name": "given", "value": "v1", "domain": "127.0.0.1",
                        "path": "/"}]})["data"]
        opened = local("/browser/open", {"uuid": window["uuid"]})
        assert opened.code == 0, opened.body
        data = opened.data
        assert data["marionettePort"] and data["ws"].startswith("ws://127.0.0.1:")

        # Selenium's way in: Marionette attaches and drives the window.
        client = Firefox.attach(window_handle(data))
        try:
            wait_until(lambda: client.title.startswith("{"), 30, "the page and frame facts")
            seen = json.loads(client.title)
            assert seen["page"] == {"value": False, "inPrototype": True, "getter": NATIVE,
                                    "own": []}
            assert seen["frame"] == {"value": False, "getter": NATIVE}
            assert seen["popupBlocked"] is True
            assert "given=v1" in client.execute_script("return document.cookie")
            client.execute_script("document.cookie = 'made=here; max-age=600; path=/'")
        finally:
            client.delete_session()

        # Puppeteer's way in: a WebDriver BiDi session on the answer's ws.
        connection = websocket.create_connection(data["ws"], timeout=30,
                                                 suppress_origin=True)
        try:
            call = _bidi(connection)
            call("session.new", {"capabilities": {}})
            context = call("browsingContext.getTree", {})["contexts"][0]["context"]
            call("browsingContext.navigate", {"context": context, "wait": "complete",
                                              "url": probe.url + "/plain"})
            value = call("script.evaluate", {"expression": "navigator.webdriver",
                                             "target": {"context": context},
                                             "awaitPromise": False})
            assert value["result"] == {"type": "boolean", "value": False}
            call("session.end", {})
        finally:
            connection.close()

        closed = local("/browser/close", {"uuid": window["uuid"]}).data
        assert closed["close"]["killed"] is False
        stored = cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"]
        assert {"given", "made"} <= {c["name"] for c in stored["cookie"]}
    finally:
        probe.stop()


@firefox
def test_a_firefox_that_will_not_load_the_addon_opens_and_says_webdriver_stays_true(
        tmp_path):
    # As Mozilla's signed builds do: no experiments. The open goes on, and says so.
    from browserfarm.browsers.backends import LaunchSpec
    spec = LaunchSpec(profile_dir=tmp_path / "profile", headless=True,
                      extra_prefs={"extensions.experiments.enabled": False})
    spec.profile_dir.mkdir()
    launched = Firefox.launch(spec)
    try:
        client = Firefox.attach(launched.handle)
        assert client.execute_script("return navigator.webdriver") is True
        client.delete_session()
        assert any("navigator.webdriver stays true" in w for w in launched.warnings)
    finally:
        Firefox.stop(launched.handle)
