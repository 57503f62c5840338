"""What a v5 worker's page may reach (issue 12, item 5): every local worker browser
goes through a relay that checks where it connects after resolving names. Blocked
networks (127.66.0.0/16 stands for them here: never a real private or link-local
address) and the farm's own service ports on this host (here: the API's port) show
the browser a connection failure; an ordinary loopback page (a user's staging site)
still loads. Real Firefox and Chromium, real servers; the screenshots are looked at."""
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm, needs_firefox, started_runner
from tests.test_v5 import V5

pytestmark = needs_firefox()

MAGENTA = (255, 0, 255)
PAGE = (b"<!doctype html><title>secret</title>"
        b"<body style='margin:0;background:#ff00ff;height:100vh'>secret</body>")


class MagentaServer:
    """A page that is all magenta, on ``host``; records the paths asked for."""

    def __init__(self, host: str = "127.0.0.1"):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


def magenta_share(png: bytes) -> float:
    """The share of the screenshot's pixels that are magenta (8-bit RGB/RGBA PNG)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, header = 8, b"", None
    while at < len(png):
        (length,), kind = struct.unpack(">I", png[at:at + 4]), png[at + 4:at + 8]
        data = png[at + 8:at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", data[:10])
        elif kind == b"IDAT":
            idat += data
        at += 12 + length
    width, height, depth, color = header
    assert depth == 8 and color in (2, 6), header
    step = 4 if color == 6 else 3
    raw, stride = zlib.decompress(idat), width * step
    previous, count = bytearray(stride), 0
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else
                                      up if pb <= pc else corner)) & 255
        count += sum(1 for x in range(0, stride, step) if tuple(line[x:x + 3]) == MAGENTA)
        previous = line
    return count / (width * height)


@pytest.fixture
def pages():
    staging, blocked, api = (MagentaServer(), MagentaServer("127.66.0.1"), MagentaServer())
    yield staging, blocked, api
    for server in (staging, blocked, api):
        server.stop()


@pytest.fixture
def v5(tmp_path, sqlite_url, pages):
    _, _, api = pages
    # The server on `api.port` stands for the API: the farm's settings say it is.
    farm = make_farm(tmp_path / "data", sqlite_url, blocked_networks="127.66.0.0/16",
                     port=api.port)
    new = in_db(farm, lambda: create_account(farm, "acme", sessions_limit=1))
    client = V5(create_app(farm=farm).test_client(), new.v5_username, new.v5_access_key)
    client.farm = farm
    yield client
    farm.close()


def shows(v5, worker_id, url) -> float:
    moved = v5("PUT", f"/5/worker/{worker_id}/url.json", json={"url": url})
    assert moved.status_code == 200, moved.get_json()
    png = v5("GET", f"/5/worker/{worker_id}/screenshot.png")
    assert png.status_code == 200
    return magenta_share(png.data)


@pytest.mark.parametrize("backend", ["firefox", "chromium"])
def test_a_worker_reaches_loopback_pages_but_not_blocked_networks_or_the_farm(
        v5, pages, backend):
    staging, blocked, api = pages
    with started_runner(v5.farm, "net-runner", slots=1):
        entry = next(e for e in v5.farm.catalogue.entries() if e["backend"] == backend)
        created = v5("POST", "/5/worker", json={
            "os": entry["os"], "os_version": entry["os_version"], "browser": entry["browser"],
            "browser_version": entry["browser_version"],
            "url": f"http://127.0.0.1:{staging.port}/staging"})
        body = created.get_json()
        assert created.status_code == 200 and body["status"] == "running", body
        worker = body["id"]
        # A user's staging site on loopback loads, and the screenshot shows it.
        png = v5("GET", f"/5/worker/{worker}/screenshot.png").data
        assert "/staging" in staging.hits and magenta_share(png) > 0.9

        assert shows(v5, worker, f"http://127.66.0.1:{blocked.port}/blocked") == 0
        assert shows(v5, worker, f"http://127.0.0.1:{api.port}/api") == 0
        assert shows(v5, worker, f"http://localhost:{api.port}/by-name") == 0
        assert blocked.hits == [] and api.hits == []

        assert shows(v5, worker, f"http://localhost:{staging.port}/again") > 0.9
        assert "/again" in staging.hits
