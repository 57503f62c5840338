"""/browser/cookies of the Local API with a real Firefox: every cookie of the window, of
every site it visited and also after a reopen, the same as close syncs to the cloud."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from browserfarm_plugins.firefox import Firefox
from tests.test_local import agent, cloud, cloud_call, firefox, local, window_handle  # noqa: F401

pytestmark = pytest.mark.timeout(180)

# Two sites (cookies are per host, not per port), each setting its cookies.
SITES = {"127.0.0.1": ["strict=1; SameSite=Strict; Max-Age=600",
                       "none=3; SameSite=None; Secure; Max-Age=600"],
         "127.0.0.2": ["plain=2; Max-Age=600",  # no SameSite: Marionette says "None"
                       "hidden=4; HttpOnly; SameSite=Lax; Max-Age=600"]}
# What is kept of each: "plain" as lax, as close always stored it.
EXPECTED = {("strict", "127.0.0.1", "strict"), ("none", "127.0.0.1", "none"),
            ("plain", "127.0.0.2", "lax"), ("hidden", "127.0.0.2", "lax")}


class _SetsCookies(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        for cookie in SITES[self.server.server_address[0]]:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"cookies set")

    def log_message(self, *args):
        pass


@pytest.fixture
def sites():
    """host -> URL of a page on that host that sets the host's cookies."""
    servers = [ThreadingHTTPServer((host, 0), _SetsCookies) for host in SITES]
    for server in servers:
        # a short poll: shutdown() waits for it (0.5 s by default)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield {s.server_address[0]: f"http://{s.server_address[0]}:{s.server_port}/"
           for s in servers}
    for server in servers:
        server.shutdown()
        server.server_close()


def seen(cookies: list[dict]) -> set:
    return {(c["name"], c["domain"], c["sameSite"]) for c in cookies}


@firefox
def test_browser_cookies_lists_every_site_of_the_window_also_after_a_reopen(
        local, cloud, sites):
    window = cloud_call(cloud, "/browser/update", {"url": sites["127.0.0.1"],
                                                   "syncCookies": True})["data"]
    opened = local("/browser/open", {"uuid": window["uuid"]}).data
    client = Firefox.attach(window_handle(opened))
    for url in sites.values():  # the second site is the page shown now
        client.navigate(url)
    client.delete_session()

    answer = local("/browser/cookies", {"uuid": window["uuid"]})
    assert answer.code == 0, answer.body
    assert seen(answer.data["cookies"]) == EXPECTED
    values = {c["name"]: c for c in answer.data["cookies"]}
    assert values["hidden"]["httpOnly"] is True and values["none"]["secure"] is True
    assert values["strict"]["value"] == "1"

    closed = local("/browser/close", {"uuid": window["uuid"]}).data
    assert closed["cookies"] == {"synced": len(EXPECTED)}
    stored = cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"]["cookie"]
    assert seen(stored) == EXPECTED  # close and /browser/cookies agree

    # Reopened, the page shown is the first site's: the profile holds both.
    local("/browser/open", {"uuid": window["uuid"]})
    again = local("/browser/cookies", {"uuid": window["uuid"]}).data["cookies"]
    assert seen(again) == EXPECTED
    local("/browser/close", {"uuid": window["uuid"]})
