"""The Firefox backend with a real Firefox ESR, headless: the fingerprint and the relay
become what the page sees."""
import os
import socket
import stat

import httpx
import pytest
from marionette_driver.errors import MarionetteException

from browserfarm.browsers.backends import LaunchSpec
from browserfarm.net.proxy import ProxyOptions, ProxySettings
from browserfarm.net.relay import RelayHub
from browserfarm_plugins.firefox import Firefox
from browserfarm_plugins.firefox_prefs import firefox_prefs
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


def test_a_private_relay_is_reached_by_its_socket_and_its_port_wants_a_login(
        hub, origin, tmp_path):
    """Other users of the machine (issue 12 item 7) can't use a window's relay as an
    exit through its proxy: Firefox reaches it by a Unix socket only this user may
    connect to, and its TCP port refuses clients that don't log in with its secret."""
    folder = tmp_path / "relays"
    folder.mkdir(mode=0o700)
    relay = hub.start(Direct(ProxySettings("direct"), ProxyOptions(connect_timeout=5)),
                      path=folder / "window")
    assert stat.S_IMODE(os.stat(relay.path).st_mode) & 0o077 == 0
    # The TCP side: no login (what any local program would try), a wrong one, ours.
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.recv(2) == b"\x05\xff"
    with pytest.raises(httpx.ProxyError):
        httpx.get(origin.url + "/", proxy=relay.url.replace(relay.secret, "guess"),
                  timeout=5)
    assert httpx.get(origin.url + "/", proxy=relay.url, timeout=5).text == \
        "hello from origin"
    spec = LaunchSpec(profile_dir=tmp_path / "profile", relay_port=relay.port,
                      relay_socket=folder / "window", start_url=origin.url + "/page/private",
                      extra_prefs={"network.proxy.allow_hijacking_localhost": True},
                      log_path=tmp_path / "firefox.log")
    spec.profile_dir.mkdir()
    accepted = relay.stats.accepted
    launched = Firefox.launch(spec)
    try:
        client = Firefox.attach(launched.handle)
        assert client.execute_script("return document.body.textContent") == "private"
        client.delete_session()
        assert relay.stats.accepted > accepted  # through the socket (the port wants a login)
        assert "/page/private" in [path for _, path, _ in origin.requests]
    finally:
        Firefox.stop(launched.handle)
    hub.stop(relay)
    assert not os.path.exists(relay.path)


def test_prefs_keep_every_background_service_off_and_the_proxy_on():
    prefs = firefox_prefs(LaunchSpec(profile_dir=None, relay_port=4321))
    assert prefs["network.proxy.socks_port"] == 4321
    assert prefs["network.proxy.socks_remote_dns"] is True
    assert prefs["network.http.http3.enable"] is False
    assert prefs["network.trr.mode"] == 5
    for off in ("toolkit.telemetry.enabled", "app.normandy.enabled",
                "browser.safebrowsing.malware.enabled", "app.update.auto",
                "datareporting.healthreport.uploadEnabled", "media.gmp-manager.updateEnabled"):
        assert prefs[off] is False, off
    assert prefs["services.settings.server"].startswith("file:///nonexistent/")
