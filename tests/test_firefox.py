"""The Firefox backend with a real Firefox ESR, headless: the fingerprint and the relay
become what the page sees."""
import pytest
from marionette_driver.errors import MarionetteException

from browserfarm.browsers.backends import LaunchSpec
from browserfarm.net.proxy import ProxyOptions, ProxySettings
from browserfarm.net.relay import RelayHub
from browserfarm_plugins.firefox import Firefox, firefox_prefs
from browserfarm_plugins.proxy_types import Direct
from tests.conftest import needs_firefox

pytestmark = needs_firefox()

FINGERPRINT = {"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                            "Gecko/20100101 Firefox/128.0",
               "os": "Win32", "languages": "de-DE,de", "timeZone": "Asia/Tokyo",
               "openWidth": 1000, "openHeight": 700, "hardwareConcurrency": 1,
               "doNotTrack": "1", "webRTC": "2"}


@pytest.fixture
def hub():
    hub = RelayHub()
    yield hub
    hub.close()


def test_a_window_sees_its_fingerprint_and_goes_through_its_relay(hub, origin, tmp_path):
    relay = hub.start(Direct(ProxySettings("direct"), ProxyOptions(connect_timeout=5)))
    spec = LaunchSpec(profile_dir=tmp_path / "profile", fingerprint=FINGERPRINT,
                      relay_port=relay.port, start_url=origin.url + "/",
                      # The test page is on loopback, which Firefox never proxies unless
                      # told to: this proves the route through the relay.
                      extra_prefs={"network.proxy.allow_hijacking_localhost": True},
                      log_path=tmp_path / "firefox.log")
    spec.profile_dir.mkdir()
    launched = Firefox.launch(spec)
    try:
        client = Firefox.attach(launched.handle)
        seen = client.execute_script("""return [navigator.userAgent, navigator.language,
            Intl.DateTimeFormat().resolvedOptions().timeZone, navigator.platform,
            navigator.hardwareConcurrency, navigator.doNotTrack, window.outerWidth,
            typeof RTCPeerConnection, document.body.textContent]""")
        # Marionette answers any local user, so it gives no chrome context (privileged
        # code): Firefox runs without --remote-allow-system-access.
        with pytest.raises(MarionetteException, match="System access is required"):
            client.set_context("chrome")
        client.delete_session()
        # Firefox can only lower hardwareConcurrency (dom.maxHardwareConcurrency caps it).
        assert seen[:6] == [FINGERPRINT["userAgent"], "de-DE", "Asia/Tokyo", "Win32", 1, "1"]
        assert abs(seen[6] - 1000) <= 20
        assert seen[7] == "undefined"  # WebRTC disabled
        assert seen[8] == "hello from origin"
        assert relay.stats.accepted >= 1 and origin.requests[0][1] == "/"
        assert launched.handle.ws.startswith("ws://127.0.0.1:")
    finally:
        assert Firefox.stop(launched.handle) is False  # quit, not killed
    assert not Firefox.alive(launched.handle)


def test_prefs_keep_every_background_service_off_and_the_proxy_on():
    prefs = firefox_prefs(LaunchSpec(profile_dir=None, relay_port=4321))
    assert prefs["network.proxy.socks_port"] == 4321
    assert prefs["network.proxy.socks_remote_dns"] is True
    assert prefs["network.http.http3.enable"] is False
    assert prefs["network.trr.mode"] == 5
    for off in ("toolkit.telemetry.enabled", "app.normandy.enabled",
                "browser.safebrowsing.malware.enabled", "app.update.auto",
                "datareporting.healthreport.uploadEnabled"):
        assert prefs[off] is False, off
    assert prefs["services.settings.server"] == "data:,"
