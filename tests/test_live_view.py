"""The dashboard's live view of a running v5 worker (issue 14, item 5), end to end: the
farm served by gunicorn as `browserfarm serve` serves it, a real Firefox worker on its
own display, and the viewer's WebSocket spoken to in Python as noVNC speaks it (RFB
3.8): the signed-in owner sees the screen, clicks through VNC and the page reacts and
changes; no session, a read-only member and another account are refused before any
upgrade; a share link works without a session, not once expired, and its view ends
when its maker's token is revoked; a signed-in person's view ends when they sign out or
their session expires. And a window open on an agent on another machine
(its own data dir: only the network shared), watched through the agent's outbound
tunnel."""
import os
import socket
import struct
import subprocess
import sys
import time
from datetime import timedelta

import psutil
import pytest
import requests
import websocket
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browserfarm.agent import Agent, Login
from browserfarm.browsers.liveview import ALLOWED_EVERY
from browserfarm.dashboard.live import SHARE_SALT, SHARE_SECONDS
from browserfarm.models import DashboardSession, KnownAgent, Window, utcnow
from browserfarm.plugins import load_plugins
from browserfarm.services.accounts import create_account, create_token, revoke_token
from tests.conftest import in_db, make_farm, needs_firefox, started_runner, wait_until
from tests.servers import HTTPService, chromium
from tests.test_local import ProxyLoopback
from tests.test_workers import request_for

pytestmark = [needs_firefox(), pytest.mark.timeout(300)]

# A page that is one button: a click turns it red and tells the test.
PAGE = (b"<!doctype html><title>waiting</title><body style='margin:0;background:#fff'>"
        b"<button style='width:100vw;height:100vh;font-size:40px' onclick=\""
        b"document.body.style.background='#f00';this.style.background='#f00';"
        b"document.title='clicked';fetch('/clicked')\">click me</button></body>")


class Page(HTTPService):
    def __init__(self):
        self.clicks = 0
        super().__init__()

    def respond(self, h):
        if h.path == "/clicked":
            self.clicks += 1
        h.reply(200, PAGE, "text/html")


class WebSocketStream:
    """A WebSocket as a byte stream (what RFB is read from)."""

    def __init__(self, ws):
        self.ws, self.buffer = ws, b""

    def recv(self, n):
        while not self.buffer:
            self.buffer = self.ws.recv()
            if isinstance(self.buffer, str):
                self.buffer = self.buffer.encode()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def sendall(self, data):
        self.ws.send_binary(data)


def exactly(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.recv(n - len(data))
        assert chunk, "the view closed"
        data += chunk
    return data


class Viewer:
    """RFB 3.8 as noVNC speaks it: no password (the dashboard authenticated), shared,
    raw encoding; keeps the framebuffer."""

    def __init__(self, stream):
        self.stream = stream
        assert exactly(stream, 12) == b"RFB 003.008\n"
        stream.sendall(b"RFB 003.008\n")
        types = exactly(stream, exactly(stream, 1)[0])
        assert 1 in types, types  # None: the VNC server asks nothing more
        stream.sendall(b"\x01")
        assert exactly(stream, 4) == b"\0\0\0\0"
        stream.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", exactly(stream, 4))
        self.bytes_per_pixel = exactly(stream, 16)[0] // 8
        exactly(stream, struct.unpack(">I", exactly(stream, 4))[0])  # its name
        stream.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw
        self.frame = bytearray(self.width * self.height * self.bytes_per_pixel)

    def update(self, incremental: bool) -> int:
        """Ask for a framebuffer update and apply it; how many rectangles it had."""
        self.stream.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0,
                                        self.width, self.height))
        while True:
            kind = exactly(self.stream, 1)[0]
            if kind == 2:  # bell
                continue
            if kind == 3:  # cut text
                exactly(self.stream, 3)
                exactly(self.stream, struct.unpack(">I", exactly(self.stream, 4))[0])
                continue
            assert kind == 0, kind
            exactly(self.stream, 1)
            count, = struct.unpack(">H", exactly(self.stream, 2))
            px = self.bytes_per_pixel
            for _ in range(count):
                x, y, w, h, encoding = struct.unpack(">HHHHi", exactly(self.stream, 12))
                assert encoding == 0, encoding
                data = exactly(self.stream, w * h * px)
                for row in range(h):
                    at = ((y + row) * self.width + x) * px
                    self.frame[at:at + w * px] = data[row * w * px:(row + 1) * w * px]
            return count

    def pixel(self, x, y) -> bytes:
        at = (y * self.width + x) * self.bytes_per_pixel
        return bytes(self.frame[at:at + self.bytes_per_pixel])

    def click(self, x, y):
        for buttons in (0, 1, 0):  # move, press, release
            self.stream.sendall(struct.pack(">BBHH", 5, buttons, x, y))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(data, sqlite_url, log_path, workers: int):
    """`browserfarm serve` (gunicorn gthread) on ``data``: the process and its URL."""
    port = free_port()
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "browserfarm.cli", "--data-dir", str(data), "serve",
         "--port", str(port), "--workers", str(workers)],
        env=os.environ | {"DATABASE_URL": sqlite_url}, stdout=log, stderr=log,
        start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base), 60, "the server to start")
    except BaseException:
        stop(server)
        raise
    return server, base


def stop(server):
    server.terminate()
    server.wait(30)


@pytest.fixture
def served(tmp_path, sqlite_url):
    """`browserfarm serve` and a runner (in this process) on one farm."""
    data = tmp_path / "data"
    farm = make_farm(data, sqlite_url)
    farm.plugins.manager.register(ProxyLoopback())  # the worker's page is on loopback
    server, base = serve(data, sqlite_url, tmp_path / "serve.log", workers=1)
    try:
        with started_runner(farm, "live-view-runner"):
            yield farm, base
    finally:
        stop(server)
        farm.close()


def _answers(base) -> bool:
    try:
        return requests.get(base + "/signin", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def signed_in(base, token) -> requests.Session:
    person = requests.Session()
    page = person.get(base + "/signin", timeout=10).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = person.post(base + "/signin", data={"token": token, "csrf_token": csrf},
                         allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return person


def share_link(base, person, worker_id) -> str:
    """A share link made on the worker's page by ``person`` (signed in; CSRF)."""
    worker_page = person.get(f"{base}/workers/{worker_id}", timeout=10).text
    csrf = worker_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    made = person.post(f"{base}/workers/{worker_id}/live/share",
                       headers={"X-CSRFToken": csrf}, timeout=10)
    assert made.status_code == 200, made.text
    link = made.text.split('value="', 1)[1].split('"', 1)[0]
    assert link.startswith(base + "/live/")
    return link


def connect(base, path, person=None, origin=None):
    cookie = "; ".join(f"{k}={v}" for k, v in person.cookies.items()) if person else None
    return websocket.create_connection(
        base.replace("http", "ws", 1) + path, timeout=20, cookie=cookie,
        origin=origin or base, redirect_limit=0)


def refused(base, path, person=None, origin=None) -> int:
    """The status of a WebSocket handshake the server refused."""
    try:
        connect(base, path, person, origin).close()
    except websocket.WebSocketBadStatusException as refusal:
        return refusal.status_code
    except websocket.WebSocketException as refusal:  # websocket-client's "redirect"
        assert "Redirect" in str(refusal)
        return 302
    raise AssertionError("accepted")


def close_reason(ws) -> str:
    """The reason the server gave when it closed the view (waits for the close)."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frame.data[2:].decode()


def refusal(ws) -> str:
    """Why there is no view, as the viewer (noVNC) is told: RFB's handshake with no
    security types and a reason; the WebSocket closes saying it too."""
    stream = WebSocketStream(ws)
    assert exactly(stream, 12) == b"RFB 003.008\n"
    stream.sendall(b"RFB 003.008\n")
    assert exactly(stream, 1) == b"\0"  # no security types: refused, and why
    reason = exactly(stream, struct.unpack(">I", exactly(stream, 4))[0]).decode()
    assert close_reason(ws) == reason[:120]
    return reason


def x11vnc_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "x11vnc"]




def test_a_signed_in_owner_watches_and_takes_over_a_worker_and_others_are_refused(
        served, tmp_path):
    farm, base = served
    acme = in_db(farm, lambda: create_account(farm, "acme", sessions_limit=2))
    globex = in_db(farm, lambda: create_account(farm, "globex"))
    read_only, _ = in_db(farm, lambda: create_token(farm, acme.account.id, "ro",
                                                    role="read-only"))
    page = Page()
    try:
        v5 = requests.Session()
        v5.auth = (acme.v5_username, acme.v5_access_key)

        class Client:  # request_for's v5 client, over HTTP
            def __call__(self, method, path):
                answer = v5.request(method, base + path, timeout=30)
                answer.get_json = answer.json
                return answer
        worker = v5.post(base + "/5/worker", timeout=120,
                         json=request_for(Client(), page.url + "/")).json()
        assert worker["status"] == "running", worker
        path = f"/workers/{worker['id']}/live/websocket"

        # Refused before any upgrade: no session, a read-only member, another account,
        # another site's page.
        assert refused(base, path) == 302  # to the sign-in page
        assert refused(base, path, signed_in(base, read_only)) == 403
        assert refused(base, path, signed_in(base, globex.token)) == 404
        owner = signed_in(base, acme.token)
        assert refused(base, path, owner, origin="http://evil.test") == 403
        # A window's view: only while it is open (on this machine's agent).
        closed = requests.post(base + "/browser/update", json={"name": "closed"}, timeout=30,
                               headers={"Authorization": f"Bearer {acme.token}"}).json()["data"]
        assert refused(base, f"/windows/{closed['id']}/live/websocket", owner) == 422
        assert refused(base, f"/windows/{closed['id']}/live/websocket",
                       signed_in(base, read_only)) == 403
        assert x11vnc_processes() == []  # none of them started a VNC server

        ws = connect(base, path, owner)
        viewer = Viewer(WebSocketStream(ws))
        assert viewer.update(incremental=False) >= 1
        centre = (viewer.width // 2, viewer.height // 2)
        before = viewer.pixel(*centre)
        # The VNC server listens on its Unix socket only, a file of ours alone.
        [vnc] = x11vnc_processes()
        assert vnc.net_connections(kind="inet") == []
        [sock] = [p for p in farm.settings.data.live_view_sockets.iterdir() if p.is_socket()]
        assert sock.stat().st_mode & 0o777 == 0o600

        viewer.click(*centre)
        wait_until(lambda: page.clicks == 1, 20, "the click to reach the page")
        deadline = time.monotonic() + 20
        while viewer.pixel(*centre) == before:  # the page turned red: the view shows it
            assert time.monotonic() < deadline, "the view did not change"
            viewer.update(incremental=True)
        ws.close()

        # A share link: made by the signed-in owner (CSRF), it works without a session.
        assert path in owner.get(f"{base}/workers/{worker['id']}", timeout=10).text
        link = share_link(base, owner, worker["id"])  # the page's viewer connects there
        assert requests.get(link, timeout=10).status_code == 200  # the page, no session
        shared = connect(base, link[len(base):] + "/websocket")
        assert Viewer(WebSocketStream(shared)).update(incremental=False) >= 1
        shared.close()
        # Its last viewer gone, the VNC server ends by itself (started again on demand).
        wait_until(lambda: x11vnc_processes() == [], 30, "x11vnc to end")

        # The same link made SHARE_SECONDS ago is refused.
        secret = farm.cipher.derive("dashboard session")

        class Earlier(TimestampSigner):
            def get_timestamp(self):
                return int(time.time()) - SHARE_SECONDS - 1
        token = link.rsplit("/", 1)[1]
        old = URLSafeTimedSerializer(secret, salt=SHARE_SALT, signer=Earlier).dumps(
            URLSafeTimedSerializer(secret, salt=SHARE_SALT).loads(token))
        assert requests.get(f"{base}/live/{old}", timeout=10).status_code == 403
        assert refused(base, f"/live/{old}/websocket") == 403

        # A view through a share link ends once its maker's token is revoked.
        sharer, _ = in_db(farm, lambda: create_token(farm, acme.account.id, "sharer",
                                                     role="owner"))
        watching = connect(base, share_link(base, signed_in(base, sharer), worker["id"])[
            len(base):] + "/websocket")
        assert Viewer(WebSocketStream(watching)).update(incremental=False) >= 1
        in_db(farm, lambda: revoke_token(farm, raw=sharer))
        revoked = time.monotonic()
        try:
            close_reason(watching)  # within connect's timeout (20 s), or it fails
        except websocket.WebSocketConnectionClosedException:
            pass
        assert time.monotonic() - revoked <= ALLOWED_EVERY + 3

        # A signed-in person's view ends once they sign out, or their session expires
        # (the token itself still valid).
        for end in ("sign out", "expire"):
            # The view before it gone, its VNC server ends: not connected to as it does.
            wait_until(lambda: x11vnc_processes() == [], 30, "x11vnc to end")
            person = signed_in(base, acme.token)
            watching = connect(base, path, person)
            assert Viewer(WebSocketStream(watching)).update(incremental=False) >= 1
            if end == "sign out":
                worker_page = person.get(f"{base}/workers/{worker['id']}", timeout=10).text
                csrf = worker_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                assert person.post(f"{base}/signout", data={"csrf_token": csrf},
                                   allow_redirects=False, timeout=10).status_code == 302
            else:  # the newest sign-in is this person's
                newest = in_db(farm, lambda: DashboardSession.select().order_by(
                    DashboardSession.id.desc()).first().id)
                in_db(farm, lambda: DashboardSession.update(expires_at=utcnow()).where(
                    DashboardSession.id == newest).execute())
            ended = time.monotonic()
            try:
                close_reason(watching)  # within connect's timeout (20 s), or it fails
            except websocket.WebSocketConnectionClosedException:
                pass
            assert time.monotonic() - ended <= ALLOWED_EVERY + 3, end

        # The page itself in a real browser: noVNC connects, and after "Take over" a
        # click on the screen reaches the worker's page.
        with chromium() as browser:
            browser.get(base + "/signin")
            browser.find_element(By.NAME, "token").send_keys(acme.token)
            browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
            browser.get(f"{base}/workers/{worker['id']}")
            WebDriverWait(browser, 20).until(lambda b: b.find_element(
                By.CSS_SELECTOR, ".live-view").get_attribute("data-state") == "connected")
            browser.find_element(By.CSS_SELECTOR, ".live-take-over").click()
            screen = browser.find_element(By.CSS_SELECTOR, ".live-screen canvas")
            time.sleep(0.5)  # the first frame drawn
            ActionChains(browser).move_to_element(screen).click().perform()
            wait_until(lambda: page.clicks == 2, 20, "the viewer's click to reach the page")
            # "Actual size": the browser's pixels one to one, not fitted to the page.
            browser.find_element(By.CSS_SELECTOR, ".live-actual-size").click()
            wait_until(lambda: screen.size["width"] == viewer.width, 10,
                       "the view at actual size")
            browser.save_screenshot(str(tmp_path / "live-view.png"))
    finally:
        page.stop()


def test_a_window_open_on_an_agent_on_another_machine_is_watched_through_its_tunnel(
        tmp_path, sqlite_url):
    """The cloud (gunicorn, 2 processes) and the agent have data dirs of their own:
    the view reaches the window's display only through the agent's own WebSocket."""
    cloud = make_farm(tmp_path / "cloud", sqlite_url)
    acme = in_db(cloud, lambda: create_account(cloud, "acme"))
    globex = in_db(cloud, lambda: create_account(cloud, "globex"))
    server, base = serve(tmp_path / "cloud", sqlite_url, tmp_path / "serve.log", workers=2)
    plugins = load_plugins()
    plugins.manager.register(ProxyLoopback())  # the window's page is on loopback
    agent = Agent(tmp_path / "agent", plugins, name="desk:1", window_display="virtual",
                  login=Login(server=base, token=acme.token, local_token="local"))
    agent.commands.wait = 2  # s a poll waits in the cloud (a stopped agent's too)
    page = Page()

    def call(path, body, token=acme.token):
        return requests.post(base + path, json=body, timeout=30, headers={
            "Authorization": f"Bearer {token}"}).json()

    def attach(channel, token, name):
        """The status of an agent's WebSocket to the channel, refused."""
        try:
            websocket.create_connection(
                f"{base.replace('http', 'ws', 1)}/agent/live/{channel}?name={name}",
                timeout=10, header=[f"Authorization: Bearer {token}"]).close()
        except websocket.WebSocketBadStatusException as refusal:
            return refusal.status_code
        raise AssertionError("attached")

    try:
        agent.commands.start()
        # Its screen larger than its window, as a drawn fingerprint's often is.
        window = call("/browser/update", {"name": "remote", "url": page.url + "/",
                                          "browserFingerPrint": {
                                              "resolution": "2560 x 1440",
                                              "openWidth": 1200, "openHeight": 800,
                                              "devicePixelRatio": 1}})["data"]
        sent = call("/agent/command", {"agent": "desk:1", "action": "open",
                                       "uuid": window["uuid"]})
        assert sent["code"] == 0, sent
        opened = wait_until(lambda: (c := call("/agent/command/detail", {
            "id": sent["data"]["id"]})["data"])["status"] in ("done", "failed") and c,
            120, "the window to open on the agent")
        assert opened["status"] == "done", opened
        owner = signed_in(base, acme.token)

        # The owner watches and takes over, through the agent's tunnel.
        ws = connect(base, f"/windows/{window['id']}/live/websocket", owner)
        viewer = Viewer(WebSocketStream(ws))
        assert viewer.update(incremental=False) >= 1
        # The view is the browser's window, not its whole screen (mostly empty).
        assert (viewer.width, viewer.height) == (1200, 800)
        spot = (viewer.width // 8, viewer.height // 4)
        before = viewer.pixel(*spot)
        deadline = time.monotonic() + 30
        while not page.clicks:  # clicked again until the page, maybe still loading, has it
            assert time.monotonic() < deadline, "the click did not reach the page"
            viewer.click(*spot)
            time.sleep(1)
        while viewer.pixel(*spot) == before:  # the page turned red: the view shows it
            assert time.monotonic() < deadline, "the view did not change"
            viewer.update(incremental=True)
        ws.close()
        assert not list((tmp_path / "cloud").rglob("tunnel-*"))  # the channel is gone

        # A window the agent does not have open: it says so, and the viewer is told.
        other = call("/browser/update", {"name": "elsewhere"})["data"]
        in_db(cloud, lambda: Window.update(open_status="opened", open_agent="desk:1")
              .where(Window.id == other["id"]).execute())
        refused_view = connect(base, f"/windows/{other['id']}/live/websocket", owner)
        assert "is not open on the agent desk:1" in refusal(refused_view)

        # A channel only its own agent attaches to: the test is the agent "desk:2" here.
        call("/agent/poll", {"name": "desk:2", "wait": 0})  # online
        in_db(cloud, lambda: Window.update(open_agent="desk:2")
              .where(Window.id == other["id"]).execute())
        waiting = connect(base, f"/windows/{other['id']}/live/websocket", owner)
        command = call("/agent/poll", {"name": "desk:2", "wait": 10})["data"]["command"]
        assert command["action"] == "live", command
        channel = command["body"]["channel"]
        call("/agent/poll", {"name": "desk:2", "wait": 0}, token=globex.token)
        assert attach(channel, globex.token, "desk:2") == 404  # another account's
        assert attach(channel, "bf_" + "0" * 40, "desk:2") == 401
        assert attach(channel, acme.token, "desk:1") == 404  # not addressed to it
        another, _ = in_db(cloud, lambda: create_token(cloud, acme.account.id, "another",
                                                       role="owner"))
        assert attach(channel, another, "desk:2") == 403  # not the token of its name
        assert attach("x" + channel[1:], acme.token, "desk:2") == 404
        # Its agent never comes: the viewer is told once it stops waiting, and the
        # channel is spent.
        assert "did not connect the live view within 15 s" in refusal(waiting)
        assert attach(channel, acme.token, "desk:2") == 404

        # An agent that went offline: the viewer is told in words.
        in_db(cloud, lambda: KnownAgent.update(seen_at=utcnow() - timedelta(minutes=5))
              .where(KnownAgent.name == "desk:2").execute())
        offline = connect(base, f"/windows/{other['id']}/live/websocket", owner)
        assert "desk:2" in (said := refusal(offline)) and "offline" in said, said
    finally:
        agent.shutdown()
        page.stop()
        stop(server)
        cloud.close()
