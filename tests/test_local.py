"""The Local API agent: real Firefox windows opened and closed against a real cloud
server, through a real authenticated SOCKS5 proxy."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import websocket
from werkzeug.serving import make_server

from browserfarm import hookimpl
from browserfarm.browsers import processes
from browserfarm.browsers.handles import LocalHandle
from browserfarm.agent import Agent, Login
from browserfarm.api.local import create_local_app, make_local_server
from browserfarm.app import create_app
from browserfarm.errors import FarmError
from browserfarm.plugins import load_plugins
from browserfarm.services.accounts import create_account
from browserfarm_plugins.firefox import Firefox
from tests.conftest import (Caller, free_port, in_db, make_farm, needs_firefox,
                            require_executable, wait_until)

firefox = needs_firefox()


def window_handle(answer: dict) -> LocalHandle:
    """The handle of a window as the Local API answers it (pid, marionettePort)."""
    return LocalHandle("firefox", pid=answer.get("pid", 0),
                       marionette_port=answer.get("marionettePort"))


class ProxyLoopback:
    """Test pages are on loopback, which Firefox never proxies unless told to: with
    this, the page's traffic takes the window's proxy, and the proxy's log shows it."""

    @hookimpl
    def browserfarm_browser_preferences(self, window, backend):
        return {"network.proxy.allow_hijacking_localhost": True}


@pytest.fixture
def cloud(tmp_path, sqlite_url):
    """The cloud API on a real HTTP server, and its owner's token."""
    farm = make_farm(tmp_path / "cloud", sqlite_url)
    server = make_server("127.0.0.1", 0, create_app(farm=farm), threaded=True)
    # A short poll: shutdown() waits for it at each test's end (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    owner = in_db(farm, lambda: create_account(farm, "acme"))
    yield f"http://127.0.0.1:{server.server_port}", owner.token
    server.shutdown()
    thread.join(10)
    farm.close()


@pytest.fixture
def agent(tmp_path, cloud, window_display):
    url, token = cloud
    login = Login(server=url, token=token, local_token="local-secret")
    plugins = load_plugins()
    plugins.manager.register(ProxyLoopback())
    agent = Agent(tmp_path / "agent", plugins, login=login, window_display=window_display)
    yield agent
    agent.shutdown()


@pytest.fixture
def local(agent):
    """Calls the Local API as a script does: X-Cos-Local-Token, loopback Host."""
    caller = Caller(create_app_client(agent), None)
    caller.headers = {"X-Cos-Local-Token": "local-secret"}
    return lambda path, body=None, **kw: caller(path, body, headers={
        **caller.headers, **kw.pop("headers", {})}, **kw)


def create_app_client(agent):
    app = create_local_app(agent)
    return app.test_client()


def cloud_call(cloud, path, body):
    import requests
    url, token = cloud
    return requests.post(url + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).json()


@firefox
def test_open_attach_reopen_and_close_a_window(local, cloud, microsocks, origin):
    proxy = microsocks("alice", "secret")
    window = cloud_call(cloud, "/browser/update", {
        "name": "shop", "proxyMethod": 2, "proxyType": "socks5", "host": proxy.host,
        "port": proxy.port, "proxyUserName": "alice", "proxyPassword": "secret",
        "url": origin.url + "/", "browserFingerPrint": {"languages": "fr-FR"}})["data"]

    opened = local("/browser/open", {"uuid": window["uuid"]})
    assert (opened.code, opened.msg) == (0, "Browser opened"), opened.body
    data = opened.data
    assert data["uuid"] == window["uuid"] and data["id"] == str(window["id"])
    assert data["alreadyStarted"] is False and data["pid"] > 0
    assert data["openedStatus"]["afterStart"]["status"] == "opened"
    assert cloud_call(cloud, "/browser/detail", {"id": window["id"]})["data"][
        "openStatus"] == "opened"

    client = Firefox.attach(window_handle({"marionettePort": data["marionettePort"]}))
    seen = client.execute_script("return [document.body.textContent, navigator.language]")
    client.delete_session()
    assert seen == ["hello from origin", "fr-FR"]
    assert proxy.connections() >= 1  # the page came through the window's proxy

    again = local("/browser/open", {"browserId": window["id"]})
    assert again.data["alreadyStarted"] is True and again.data["pid"] == data["pid"]

    closed = local("/browser/close", {"config_uuid": window["uuid"]})
    assert (closed.code, closed.msg) == (0, "Browser closed"), closed.body
    assert closed.data["close"]["killed"] is False
    assert closed.data["openedStatus"]["afterClose"]["status"] == "closed"
    assert not Firefox.alive(window_handle({"pid": data["pid"]}))
    assert not processes.exists(data["pid"])  # reaped by the agent: no zombie left
    assert cloud_call(cloud, "/browser/detail", {"id": window["id"]})["data"][
        "openStatus"] == "closed"


@pytest.mark.parametrize("headers, code", [
    ({"X-Cos-Local-Token": ""}, 401), ({"X-Cos-Local-Token": "wrong"}, 401),
    # DNS rebinding: a page's name that resolves to 127.0.0.1 is still not loopback.
    ({"Host": "evil.example:54345"}, 403), ({"Host": "127.0.0.1.evil.example"}, 403),
    ({"Host": "localhost.evil.example:54345"}, 403),
    # A page of another site (or a sandboxed one: "null") drives no agent.
    ({"Origin": "http://evil.example"}, 403), ({"Origin": "null"}, 403),
    ({"Origin": "http://localhost.evil.example"}, 403),
    ({"Origin": "http://127.0.0.1.evil.example:54345"}, 403),
    # Loopback in any spelling is served.
    ({"Host": "[::1]:54345"}, 0), ({"Host": "localhost"}, 0), ({"Host": "LOCALHOST:1"}, 0),
    ({"Origin": "http://127.0.0.1:8000"}, 0),
])
def test_the_agent_refuses_callers_it_should_not_serve(local, headers, code):
    answer = local("/browser/list", {}, headers=headers)
    assert (answer.status, answer.code) == (code or 200, code)


def test_not_logged_in_is_401(tmp_path):
    agent = Agent(tmp_path / "a", load_plugins(), login=Login(local_token="t"))
    client = create_app_client(agent)
    answer = client.post("/browser/open", json={"uuid": "x"},
                         headers={"X-Cos-Local-Token": "t"})
    assert answer.status_code == 401 and "not logged in" in answer.get_json()["msg"]


@pytest.mark.parametrize("body, field", [
    ({}, "uuid"), ({"uuid": ["a", "b"]}, "uuid"), ({"ids": [1, 2]}, "ids"),
    ({"uuid": "a", "ids": []}, "ids"), ({"uuid": "a", "ids": None}, "ids"),
    ({"uuid": "a", "browserUuid": "b"}, "uuid"), ({"id": 1, "browser_id": 2}, "id"),
])
def test_one_window_per_call(local, body, field):
    answer = local("/browser/open", body)
    assert answer.code == 211 and answer.data["field"] == field


@pytest.mark.parametrize("body, field", [
    ({"headless": "maybe"}, "headless"), ({"headless": 2}, "headless"),
    ({"headless": []}, "headless"), ({"args": "--headless"}, "args"), ({"args": [5]}, "args"),
])
def test_open_options_of_the_wrong_type_are_refused_naming_them(local, agent, body, field):
    answer = local("/browser/open", {"uuid": "00000000-0000-4000-8000-000000000000"} | body)
    assert answer.code == 211 and answer.data["field"] == field, answer.body
    assert not agent.windows.windows()


@pytest.mark.parametrize("path", ["/browser/open", "/browser/close"])
def test_ids_or_aliases_naming_other_windows_start_or_stop_nothing(local, agent, cloud,
                                                                   path):
    one, other = (cloud_call(cloud, "/browser/update", {})["data"] for _ in range(2))
    for body, field in (({"uuid": one["uuid"], "id": one["id"], "ids": [1, 2]}, "ids"),
                        ({"uuid": one["uuid"], "ids": [one["id"]]}, "ids"),
                        ({"uuid": one["uuid"], "ids": []}, "ids"),
                        ({"id": one["id"], "ids": None}, "ids"),
                        ({"uuid": one["uuid"], "browserId": other["id"]}, "id"),
                        ({"id": one["id"], "config_uuid": other["uuid"]}, "id")):
        answer = local(path, body)
        assert (answer.code, answer.data["field"]) == (211, field), (body, answer.body)
    assert agent.pids() == {}
    for window in (one, other):  # not even reported opening or closing
        detail = cloud_call(cloud, "/browser/detail", {"id": window["id"]})["data"]
        assert detail["openStatus"] == "closed"


def test_other_calls_are_forwarded_unchanged(local, cloud):
    made = local("/browser/update", {"name": "via agent"})
    assert made.code == 0 and made.data["name"] == "via agent"
    direct = cloud_call(cloud, "/browser/list", {})
    forwarded = local("/browser/list", {})
    assert forwarded.body == direct
    assert local("/browser/detail", {"id": 424242}).code == 404


@pytest.fixture
def local_server(agent):
    """The Local API on a real HTTP server: paths reach it as a client sent them."""
    server = make_local_server(agent, 0)  # as `browserfarm local` serves it
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(10)


def raw_post(port: int, path: str, token: str = "local-secret") -> tuple[int, str]:
    """POST ``path`` byte for byte (http.client normalises nothing, unlike curl or
    requests, which resolve "..")."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=b"{}", headers={
            "X-Cos-Local-Token": token, "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


POOL_SECRET = "pool-password-0xC0FFEE"


@pytest.mark.parametrize("path", [
    "/browser/../proxy/list", "/browser/%2e%2e/proxy/list", "/browser/..%2fproxy/list",
    "/browser/..%2Fproxy/list", "/browser/%2E%2E%2Fproxy%2Flist", "/proxy/list",
    "/browser/list/../../proxy/list", "/browser/.%2e/proxy/list",
    "/browser%2flist", "/browser/list%2f", "/browser//list", "/browser/list/",
    # werkzeug's server reads a leading "//" as "/": the raw target is judged
    "//browser/list", "///browser/list", "//browser/recycle/list", "/browser/list//",
    # the agent's own cloud calls: launch configurations hold proxy passwords
    "/browser/launch", "/browser/status", "/browser/cookies/sync",
    "/browser/profile/latest", "/browser/profile/missing", "/browser/profile/chunk/get",
    "/browser/proxy/check", "/browser/recycle/delete", "/browser/nothing",
])
def test_only_the_spec_window_calls_are_forwarded(local_server, cloud, path):
    added = cloud_call(cloud, "/proxy/add", {"proxyType": "socks5", "host": "127.0.0.1",
                                             "port": 1080, "proxyUserName": "u",
                                             "proxyPassword": POOL_SECRET})
    assert added["code"] == 0, added
    status, body = raw_post(local_server, path)
    assert status == 404 and json.loads(body)["code"] == 404, (path, body)
    assert POOL_SECRET not in body


def test_the_forwarded_calls_answer_as_the_cloud_does(local_server, cloud):
    for path in ("/browser/list", "/browser/list?x=/../proxy/list", "/browser/list?x=//y",
                 "/browser/recycle/list"):
        status, body = raw_post(local_server, path)
        assert status == 200 and json.loads(body)["code"] == 0, (path, body)
    assert raw_post(local_server, "/browser/list", token="wrong")[0] == 401


def test_doubled_slashes_are_404_on_the_agent_calls_too(local_server, agent):
    for path in ("//browser/open", "//browser/pids", "/browser//pids"):
        status, body = raw_post(local_server, path)
        assert status == 404 and json.loads(body)["code"] == 404, (path, body)
    assert agent.pids() == {}


def test_unknown_window_is_404_and_nothing_starts(local):
    answer = local("/browser/open", {"uuid": "00000000-0000-0000-0000-000000000000"})
    assert answer.code == 404


@pytest.fixture
def second_agent(tmp_path, cloud, window_display):
    """Another desktop: its own data dir, the same account."""
    url, token = cloud
    plugins = load_plugins()
    plugins.manager.register(ProxyLoopback())
    agent = Agent(tmp_path / "agent-2", plugins, login=Login(server=url, token=token,
                                                             local_token="other"),
                  window_display=window_display)
    yield agent
    agent.shutdown()


@firefox
def test_cookies_survive_close_and_move_to_another_agent(agent, second_agent, cloud,
                                                         origin):
    window = cloud_call(cloud, "/browser/update", {"name": "keeps cookies",
                                                   "url": origin.url + "/"})["data"]
    opened = agent.open_window({"uuid": window["uuid"]})
    client = Firefox.attach(window_handle(opened))
    client.execute_script("document.cookie = 'basket=42; max-age=86400; path=/'")
    client.delete_session()
    closed = agent.close_window({"uuid": window["uuid"]})
    assert closed["close"]["synced"] is True and closed["close"]["profileZipSize"] > 0
    assert Path(closed["close"]["profileZipPath"]).exists()

    def basket(an_agent):
        data = an_agent.open_window({"uuid": window["uuid"]})
        client = Firefox.attach(window_handle(data))
        cookies = client.execute_script("return document.cookie")
        client.delete_session()
        an_agent.close_window({"uuid": window["uuid"]})
        return cookies

    assert "basket=42" in basket(agent)  # the same desktop, after a close
    assert "basket=42" in basket(second_agent)  # another desktop, from the cloud


@firefox
def test_a_profile_waits_for_an_unreachable_cloud_and_is_sent_later(agent, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]
    agent.open_window({"uuid": window["uuid"]})
    real_server = agent.login.server
    agent.login.server = "http://127.0.0.1:9"  # nothing listens there
    closed = agent.close_window({"uuid": window["uuid"]})  # closes all the same
    assert closed["close"]["synced"] is False and closed["close"]["profileZipSize"] > 0
    assert agent.data.pending_upload(window["uuid"]).exists()
    agent.login.server = real_server
    assert agent.uploads.send_pending() == [window["uuid"]]
    latest = cloud_call(cloud, "/browser/profile/latest", {"uuid": window["uuid"]})
    assert latest["data"]["manifest"]


@firefox
def test_twenty_concurrent_opens_start_one_browser(agent, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]
    answers, errors = [], []

    def open_it():
        try:
            answers.append(agent.open_window({"uuid": window["uuid"]}))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len({a["pid"] for a in answers}) == 1
    assert sorted(a["alreadyStarted"] for a in answers) == [False] + [True] * 19
    assert agent.pids() == {window["uuid"]: answers[0]["pid"]}


@firefox
def test_runtime_endpoints_and_a_browser_that_died(local, agent, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]
    opened = local("/browser/open", {"uuid": window["uuid"]}).data
    assert local("/browser/pids").data == {window["uuid"]: opened["pid"]}
    ports = local("/browser/ports").data[window["uuid"]]
    assert ports["marionettePort"] == opened["marionettePort"] and ports["relayPort"]
    client = Firefox.attach(window_handle(opened))
    client.execute_script("document.cookie = 'seen=yes; max-age=600; path=/'")
    client.delete_session()
    cookies = local("/browser/cookies", {"uuid": window["uuid"]}).data["cookies"]
    assert any(c["name"] == "seen" for c in cookies)
    import os
    import signal
    os.kill(opened["pid"], signal.SIGKILL)  # the browser crashes
    wait_until(lambda: not processes.alive(opened["pid"]), 10, "the killed Firefox to exit")
    reopened = local("/browser/open", {"uuid": window["uuid"]}).data
    assert reopened["alreadyStarted"] is False and reopened["pid"] != opened["pid"]
    assert local("/browser/close/all").data == {"closed": [window["uuid"]]}
    assert local("/browser/pids").data == {}


# An agent of its own process, started as `browserfarm local` is, so it can be killed
# with -9; ProxyLoopback is registered in it as in the agents of the other tests.
AGENT_PROCESS = """
import sys
from browserfarm import cli, plugins
from tests.test_local import ProxyLoopback
load_plugins = plugins.load_plugins
def with_loopback(*args, **kwargs):
    loaded = load_plugins(*args, **kwargs)
    loaded.manager.register(ProxyLoopback())
    return loaded
plugins.load_plugins = with_loopback
cli.main(sys.argv[1:])
"""


class AgentProcess:
    def __init__(self, data_dir: Path, port: int, window_display: str = "auto"):
        self.data_dir, self.url, self.port = data_dir, f"http://127.0.0.1:{port}", port
        self.window_display = window_display  # BROWSERFARM_WINDOW_DISPLAY
        self.proc = None

    def start(self):
        with open(self.data_dir / "agent-process.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", AGENT_PROCESS, "--data-dir", str(self.data_dir),
                 "local", "--port", str(self.port)], cwd=Path(__file__).parent.parent,
                env=os.environ | {"BROWSERFARM_WINDOW_DISPLAY": self.window_display},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                return self.call("/browser/pids")
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("the agent did not start: "
                             + (self.data_dir / "agent-process.log").read_text())

    def call(self, path, body=None):
        return requests.post(self.url + path, json=body or {}, timeout=60,
                             headers={"X-Cos-Local-Token": "t"}).json()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: it closes its windows
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


@firefox
def test_a_restarted_agent_adopts_the_windows_still_running(tmp_path, cloud, origin,
                                                            microsocks, window_display):
    url, token = cloud
    data_dir = tmp_path / "desk"
    Login(server=url, token=token, local_token="t").save(data_dir)
    proxy = microsocks("alice", "secret")
    window = cloud_call(cloud, "/browser/update", {
        "url": origin.url + "/", "proxyType": "socks5", "host": proxy.host,
        "port": proxy.port, "proxyUserName": "alice", "proxyPassword": "secret"})["data"]
    agent = AgentProcess(data_dir, free_port(), window_display)
    pid = None
    try:
        agent.start()
        pid = agent.call("/browser/open", {"uuid": window["uuid"]})["data"]["pid"]
        agent.kill()  # the agent crashes; the window the user works in stays
        assert agent.start() == {"code": 0, "msg": "success",
                                 "data": {window["uuid"]: pid}}  # adopted, same Firefox
        assert cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"][
            "openStatus"] == "opened"

        before = proxy.connections()
        ports = agent.call("/browser/ports")["data"][window["uuid"]]
        client = Firefox.attach(window_handle(ports))
        client.navigate(origin.url + "/page/Adopted")  # through its relay, born again
        assert client.execute_script("return document.title") == "Adopted"
        client.delete_session()
        assert proxy.connections() > before  # the page came through the window's proxy

        closed = agent.call("/browser/close", {"uuid": window["uuid"]})
        assert closed["code"] == 0 and closed["data"]["close"]["killed"] is False
        assert closed["data"]["close"]["synced"] is True
        assert Path(closed["data"]["close"]["profileZipPath"]).exists()
        assert not Firefox.alive(window_handle({"pid": pid}))
        assert agent.call("/browser/pids")["data"] == {}
    finally:
        agent.stop()
        if pid and Firefox.alive(window_handle({"pid": pid})):
            os.kill(pid, signal.SIGKILL)


@firefox
def test_a_restarted_agent_closes_and_syncs_what_it_cannot_adopt(tmp_path, cloud, origin,
                                                                 window_display):
    url, token = cloud
    plugins = load_plugins()
    first = Agent(tmp_path / "desk", plugins, login=Login(server=url, token=token,
                                                          local_token="t"),
                  window_display=window_display)
    crashed, squatted = (cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})[
        "data"]["uuid"] for _ in range(2))
    gone = first.open_window({"uuid": crashed})
    running = first.open_window({"uuid": squatted})
    relay_port = first.windows.get(squatted).relay.port
    first.relays.close()  # the agent dies: its relays go with it, Firefox stays
    os.kill(gone["pid"], signal.SIGKILL)  # one browser crashed meanwhile
    os.waitpid(gone["pid"], 0)
    with socket.socket() as squatter:  # and another program took the other's relay port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", relay_port))
        squatter.listen()
        again = Agent(tmp_path / "desk", plugins, login=first.login,
                      window_display=window_display)
        result = again.reconcile()
    try:
        # The squatter has only the relay's TCP port: the browser reaches its relay by
        # the socket in the data dir (net.relay), so that window is adopted all the same.
        assert result == {"adopted": [squatted], "closed": [crashed]}
        assert Firefox.alive(window_handle(running))
        for uuid in (crashed,):
            detail = cloud_call(cloud, "/browser/detail", {"uuid": uuid})["data"]
            assert detail["openStatus"] == "closed"
            latest = cloud_call(cloud, "/browser/profile/latest", {"uuid": uuid})
            assert latest["data"]["manifest"]  # the profile was synced, not lost
    finally:
        again.shutdown()


def test_one_agent_per_data_dir(tmp_path, cloud):
    url, token = cloud
    login = Login(server=url, token=token, local_token="t")
    first = Agent(tmp_path / "desk", load_plugins(), login=login)
    assert first.reconcile() == {"adopted": [], "closed": []}
    second = Agent(tmp_path / "desk", load_plugins(), login=login)
    with pytest.raises(FarmError, match="another agent runs"):
        second.reconcile()  # it would close the first one's windows
    first.shutdown()
    assert second.reconcile() == {"adopted": [], "closed": []}
    second.shutdown()


@pytest.fixture
def display(monkeypatch, tmp_path):
    """A real X display (Xvfb) for this test's windows."""
    require_executable("Xvfb", "Xvfb")
    read, write = os.pipe()
    with open(tmp_path / "xvfb.log", "ab") as log:
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp",
                                 "-screen", "0", "1280x1024x24"], pass_fds=(write,),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    os.close(write)
    number = b""
    while not number.endswith(b"\n") and select.select([read], [], [], 30)[0]:
        chunk = os.read(read, 16)  # Xvfb writes the display it took, then a newline
        if not chunk:
            break
        number += chunk
    os.close(read)
    if not number.strip():
        proc.kill()
        pytest.fail("Xvfb did not start: " + (tmp_path / "xvfb.log").read_text())
    monkeypatch.setenv("DISPLAY", f":{number.decode().strip()}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("MOZ_HEADLESS", raising=False)
    yield
    proc.terminate()
    proc.wait(10)


def _headless(pid: int) -> bool:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return b"--headless" in argv or any(v.startswith(b"MOZ_HEADLESS=") for v in environ)


@firefox
@pytest.mark.parametrize("window_display", ["auto"])  # the default: the desktop's display
def test_a_window_opens_headed_on_a_display_unless_asked_headless(display, local, cloud,
                                                                  origin):
    shown, hidden = (cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})[
        "data"]["uuid"] for _ in range(2))
    for uuid, body, headless in ((shown, {}, False), (hidden, {"headless": True}, True)):
        opened = local("/browser/open", {"uuid": uuid, **body}).data
        assert _headless(opened["pid"]) is headless
        client = Firefox.attach(window_handle(opened))
        assert client.session_capabilities["moz:headless"] is headless  # Firefox says so
        assert client.execute_script("return document.body.textContent") == \
            "hello from origin"
        client.delete_session()
        assert local("/browser/close", {"uuid": uuid}).data["close"]["killed"] is False


def _bidi(connection):
    """``call(method, params)``: one WebDriver BiDi command, its result."""
    ids = iter(range(1, 1000))

    def call(method, params):
        number = next(ids)
        connection.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(connection.recv())
            if message.get("id") == number:  # events in between are skipped
                assert message["type"] == "success", message
                return message["result"]
    return call


@firefox
def test_a_client_attaches_through_the_webdriver_bidi_ws(local, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]
    opened = local("/browser/open", {"uuid": window["uuid"]}).data
    assert opened["ws"].startswith("ws://127.0.0.1:")
    with pytest.raises(websocket.WebSocketBadStatusException):  # so web pages can't
        websocket.create_connection(opened["ws"], timeout=30, origin="http://evil.example")
    # Puppeteer and Selenium send no Origin; websocket-client must be told not to.
    connection = websocket.create_connection(opened["ws"], timeout=30, suppress_origin=True)
    try:
        call = _bidi(connection)
        session = call("session.new", {"capabilities": {}})
        assert session["capabilities"]["moz:processID"] == opened["pid"]
        context = call("browsingContext.getTree", {})["contexts"][0]["context"]
        call("browsingContext.navigate", {"context": context, "wait": "complete",
                                          "url": origin.url + "/page/Checkout"})
        title = call("script.evaluate", {"expression": "document.title",
                                         "target": {"context": context},
                                         "awaitPromise": False})
        assert title["result"] == {"type": "string", "value": "Checkout"}
        call("session.end", {})
    finally:
        connection.close()
    closed = local("/browser/close", {"uuid": window["uuid"]}).data
    assert closed["close"]["killed"] is False  # quit as usual after the client's session


@firefox
def test_time_zone_and_language_follow_the_exit_ip_at_open(tmp_path, cloud, origin,
                                                           microsocks, ip_services,
                                                           window_display):
    url, token = cloud
    plugins = load_plugins()
    plugins.manager.register(ProxyLoopback())
    agent = Agent(tmp_path / "geo", plugins, ip_check_urls=ip_services.base_urls,
                  login=Login(server=url, token=token, local_token="t"),
                  window_display=window_display)
    proxy = microsocks()
    window = cloud_call(cloud, "/browser/update", {
        "url": origin.url + "/", "proxyType": "socks5", "host": proxy.host,
        "port": proxy.port, "browserFingerPrint": {
            "isIpCreateTimeZone": True, "isIpCreateLanguage": True,
            "timeZone": "America/New_York", "languages": "en-US"}})["data"]
    try:
        opened = agent.open_window({"uuid": window["uuid"]})
        client = Firefox.attach(window_handle(opened))
        seen = client.execute_script(
            "return [Intl.DateTimeFormat().resolvedOptions().timeZone, navigator.language]")
        client.delete_session()
        assert seen == ["Europe/Berlin", "de-DE"]  # the stand-in service says Berlin
        assert ip_services.requests  # asked through the window's proxy
    finally:
        agent.shutdown()


def test_a_proxy_that_is_down_fails_the_open_with_its_kind(agent, cloud, misbehaving):
    dead = misbehaving("closer")
    window = cloud_call(cloud, "/browser/update", {
        "proxyType": "socks5", "host": dead.host, "port": dead.port,
        "browserFingerPrint": {"isIpCreateTimeZone": True}})["data"]
    with pytest.raises(Exception) as failed:
        agent.open_window({"uuid": window["uuid"]})
    assert failed.value.data["kind"] == "bad_response"
    assert agent.pids() == {}
    assert cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"][
        "openStatus"] == "closed"


@firefox
def test_given_cookies_seed_a_first_open_and_close_syncs_them_back(agent, cloud, origin):
    window = cloud_call(cloud, "/browser/update", {
        "url": origin.url + "/", "syncCookies": True,
        "cookie": [{"name": "given", "value": "v1", "domain": "127.0.0.1", "path": "/"}]}
    )["data"]
    opened = agent.open_window({"uuid": window["uuid"]})
    client = Firefox.attach(window_handle(opened))
    client.navigate(origin.url + "/")
    assert "given=v1" in client.execute_script("return document.cookie")
    client.execute_script("document.cookie = 'made=here; max-age=600; path=/'")
    client.delete_session()
    closed = agent.close_window({"uuid": window["uuid"]})
    assert closed["cookies"]["synced"] >= 2
    stored = cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"]["cookie"]
    assert {"given", "made"} <= {c["name"] for c in stored}


def test_a_proxy_refusing_its_credentials_fails_the_open(agent, cloud, microsocks, origin):
    proxy = microsocks("alice", "right")
    window = cloud_call(cloud, "/browser/update", {
        "url": origin.url + "/", "proxyType": "socks5", "host": proxy.host,
        "port": proxy.port, "proxyUserName": "alice", "proxyPassword": "wrong"})["data"]
    with pytest.raises(Exception) as failed:
        agent.open_window({"uuid": window["uuid"]})
    assert failed.value.data["kind"] == "auth_failed"
    assert agent.pids() == {} and origin.requests == []


@firefox
def test_a_proxy_that_is_down_fails_an_open_without_a_start_page(agent, cloud):
    dead = free_port()  # nothing listens there
    window = cloud_call(cloud, "/browser/update", {
        "proxyType": "socks5", "host": "127.0.0.1", "port": dead})["data"]
    with pytest.raises(Exception) as failed:
        agent.open_window({"uuid": window["uuid"]})
    assert failed.value.data["kind"] == "connect_refused"
    assert agent.pids() == {}  # no Firefox started
    assert cloud_call(cloud, "/browser/detail", {"id": window["id"]})["data"][
        "openStatus"] == "closed"


class CloudGoesDown:
    """The cloud stops answering while the browser starts, and the start fails."""

    def __init__(self, agent):
        self.agent = agent

    @hookimpl
    def browserfarm_browser_preferences(self, window, backend):
        self.agent.login.server = f"http://127.0.0.1:{free_port()}"  # nothing listens
        raise RuntimeError("no preferences today")


def test_a_failed_open_tells_its_own_error_when_the_cloud_is_down(agent, cloud):
    window = cloud_call(cloud, "/browser/update", {"name": "w"})["data"]
    agent.plugins.manager.register(CloudGoesDown(agent))
    with pytest.raises(RuntimeError, match="no preferences today"):
        agent.open_window({"uuid": window["uuid"]})  # not "the cloud is unreachable"
    assert agent.pids() == {}


class CookieRefusingFirefox(Firefox):
    """Firefox whose cookie import fails once the browser runs."""
    started: list = []

    @classmethod
    def set_cookies(cls, handle, cookies):
        cls.started.append(handle)
        raise RuntimeError("cookie store broken")


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@firefox
def test_a_failed_cookie_import_stops_the_browser_and_its_relay(agent, cloud, origin):
    agent.plugins.browser_backends.register(CookieRefusingFirefox, plugin="test",
                                            builtin=False)  # replaces firefox
    window = cloud_call(cloud, "/browser/update", {
        "url": origin.url + "/",
        "cookie": [{"name": "given", "value": "v1", "domain": "127.0.0.1", "path": "/"}]}
    )["data"]
    with pytest.raises(RuntimeError, match="cookie store broken"):
        agent.open_window({"uuid": window["uuid"]})
    [handle] = CookieRefusingFirefox.started
    assert not Firefox.alive(handle)
    launch_config = json.loads(agent.data.launch_config(window["uuid"]).read_text())
    assert refuses_connections(launch_config["relayPort"])
    assert agent.pids() == {}
    assert cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"][
        "openStatus"] == "closed"


@firefox
def test_a_window_whose_backend_was_disabled_since_its_open_still_closes(agent, cloud,
                                                                         origin):
    uuid = cloud_call(cloud, "/browser/update", {"url": origin.url + "/"})["data"]["uuid"]
    agent.open_window({"uuid": uuid})
    opened = agent.windows.get(uuid)
    agent.plugins = load_plugins(disabled=["firefox"])
    try:
        with pytest.raises(FarmError, match="no browser backend 'firefox'"):
            agent.cookies({"uuid": uuid})
        closed = agent.close_window({"uuid": uuid})
        assert closed["close"] == {"error": 0, "killed": False}  # nothing here stops it
        assert agent.data.pending_upload(uuid).exists()  # its profile is sent later
        assert refuses_connections(opened.relay.port)
        assert agent.windows.get(uuid) is None
        assert cloud_call(cloud, "/browser/detail", {"uuid": uuid})["data"][
            "openStatus"] == "closed"
    finally:
        Firefox.stop(opened.handle)


class LyingCloud:
    """A cloud (a real HTTP server) that answers a window uuid it should not: the
    desktop must not let it name files outside its folders."""

    def __init__(self, detail_uuid: str, launch_uuid: str):
        from flask import Flask, jsonify
        app = Flask("lying-cloud")
        self.calls = []

        def answer(data):
            return jsonify({"code": 0, "msg": "success", "data": data})

        @app.post("/browser/detail")
        def detail():
            self.calls.append("detail")
            return answer({"id": 1, "uuid": detail_uuid, "openStatus": "closed"})

        @app.post("/browser/status")
        def status():
            self.calls.append("status")
            return answer({"status": "closed"})

        @app.post("/browser/launch")
        def launch():
            self.calls.append("launch")
            return answer({"window": {"id": 1, "uuid": launch_uuid},
                           "proxy": {"type": "direct", "host": "", "port": 0,
                                     "username": "", "password": ""}})

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.mark.parametrize("detail_uuid, launch_uuid", [
    ("../../../escaped", None), ("a/b", None), ("", None), (None, None),
    ("00000000-0000-0000-0000-00000000000A", None),  # not canonical: another folder
    ("00000000-0000-0000-0000-000000000001", "../../../escaped"),
    ("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"),
])
def test_a_uuid_from_the_cloud_names_no_file_unless_it_is_one(tmp_path, detail_uuid,
                                                              launch_uuid):
    cloud = LyingCloud(detail_uuid, launch_uuid)
    data_dir = tmp_path / "deep" / "er" / "agent"
    agent = Agent(data_dir, load_plugins(), login=Login(server=cloud.url, token="bf_x",
                                                        local_token="t"))
    try:
        with pytest.raises(FarmError, match="invalid window uuid|another window") as failed:
            agent.open_window({"uuid": "00000000-0000-0000-0000-000000000001"})
        assert failed.value.code == 500
        assert agent.pids() == {} and agent.relays.hub.ports() == set()
        assert not any("escaped" in str(path) for path in tmp_path.rglob("*"))
        assert not data_dir.exists() or not any(data_dir.glob("*-profiles/*"))
    finally:
        agent.shutdown()
        cloud.server.shutdown()


def test_a_socks5_proxy_that_speaks_another_protocol_fails_the_open(agent, cloud,
                                                                     misbehaving):
    """No start page and no IP check: the proxy's handshake is still made."""
    for kind in ("garbage", "closer"):
        impostor = misbehaving(kind)
        window = cloud_call(cloud, "/browser/update", {
            "proxyType": "socks5", "host": impostor.host, "port": impostor.port})["data"]
        with pytest.raises(FarmError) as failed:
            agent.open_window({"uuid": window["uuid"]})
        assert failed.value.data["kind"] == "bad_response", kind
        assert impostor.accepted >= 1
        assert agent.pids() == {} and agent.relays.hub.ports() == set()  # relay stopped
        assert cloud_call(cloud, "/browser/detail", {"uuid": window["uuid"]})["data"][
            "openStatus"] == "closed"


def test_up_logs_the_agent_in_with_an_agent_token_and_revokes_lost_ones(tmp_path):
    """`browserfarm up`: the agent's login may do what an agent does and no more (its
    Local API forwards scripts' window calls with it, so those work; the proxy pool and
    groups don't); a lost owner token stops working."""
    from tests.test_embedded import post, running
    port, data_dir = free_port(), tmp_path / "var"

    def tokens():
        creds = json.loads((data_dir / "credentials.json").read_text())
        return creds, json.loads((data_dir / "agent.json").read_text())["token"]

    with running(["up"], data_dir, port):
        creds, agent_token = tokens()
        base = creds["cloud_url"]
        assert agent_token != creds["token"]
        assert post(base, creds["token"], "/proxy/add", {
            "proxyType": "socks5", "host": "127.0.0.1", "port": 1080,
            "proxyUserName": "u", "proxyPassword": POOL_SECRET})[0] == 200
        for path, status in (("/browser/list", 200), ("/browser/update", 200),
                             ("/proxy/list", 403), ("/group/list", 403)):
            code, answer = post(base, agent_token, path, {})
            assert code == status, (path, answer)
            assert POOL_SECRET not in json.dumps(answer)
    with running(["up"], data_dir, port):
        assert tokens()[1] == agent_token  # kept while it is live
    (data_dir / "credentials.json").unlink()
    with running(["up"], data_dir, port):
        again, kept = tokens()
        assert again["token"] != creds["token"] and kept == agent_token
        assert post(base, again["token"], "/browser/list", {})[0] == 200
        assert post(base, creds["token"], "/browser/list", {})[0] == 401  # revoked


def test_account_and_token_lists_have_headers(tmp_path):
    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                               str(tmp_path / "var"), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    cli("db", "upgrade")
    cli("account", "create", "Team A")
    assert cli("account", "list")[0].split("\t") == ["ID", "NAME", "V5 USERNAME", "MEMBERS"]
    tokens = cli("token", "list", "--account", "1")
    assert tokens[0].split("\t") == ["ID", "PREFIX", "NAME", "STATE", "PERMISSIONS"]
    assert tokens[1].startswith("1\tbf_") and len(tokens) == 2


def test_login_reads_the_token_from_stdin_or_a_file_not_the_command_line(tmp_path, cloud):
    url, token = cloud

    def login(*args, stdin=""):
        data_dir = tmp_path / f"desk-{len(list(tmp_path.iterdir()))}"
        done = subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                               str(data_dir), "login", "--server", url, *args],
                              input=stdin, capture_output=True, text=True, timeout=60)
        saved = data_dir / "agent.json"
        return done, json.loads(saved.read_text())["token"] if saved.exists() else None

    done, saved = login(stdin=token + "\n")  # piped: echo $TOKEN | browserfarm login
    assert done.returncode == 0 and saved == token, done.stderr
    assert token not in done.stdout + done.stderr
    (tmp_path / "token").write_text(token + "\n")
    done, saved = login("--token-file", str(tmp_path / "token"))
    assert done.returncode == 0 and saved == token, done.stderr
    done, saved = login("--token", token)  # still works, with a warning
    assert done.returncode == 0 and saved == token and "warning: --token" in done.stderr
    done, saved = login(stdin="")
    assert done.returncode != 0 and not saved and "no token" in done.stderr
    done, saved = login(stdin="bf_wrong\n")
    assert done.returncode != 0 and not saved and "login refused" in done.stderr


@pytest.mark.parametrize("proxy_type", ["socks5", "http", "ssh"])
def test_the_proxy_handshake_made_without_a_start_page(agent, proxy_type, microsocks,
                                                       tinyproxy, sshd, misbehaving):
    """What the open checks when no start page tells more, per proxy type: a proxy
    that works passes, wrong credentials are auth_failed, another protocol is
    bad_response (the open then fails with that kind, as above)."""
    from browserfarm.net.proxy import ProxySettings
    if proxy_type == "socks5":
        server = microsocks("alice", "right")
        user, good = "alice", "right"
    elif proxy_type == "http":
        server = tinyproxy("alice", "right")
        user, good = "alice", "right"
    else:
        server = sshd()
        user, good = server.user, server.password
    # Its page is an HTTP answer an HTTP proxy might give: for http, a port that
    # hangs up is the other protocol.
    impostor = misbehaving("closer" if proxy_type == "http" else "garbage")

    def check(host, port, password):
        relay = agent.relays.start(ProxySettings(proxy_type, host, port, user, password),
                                   allow_udp=False)
        try:
            agent.relays.check(relay, {}, {}, "")
            return "ok"
        except FarmError as exc:
            return exc.data["kind"]
        finally:
            agent.relays.stop(relay)

    assert check(server.host, server.port, good) == "ok"
    assert check(server.host, server.port, "wrong") == "auth_failed"
    assert check(impostor.host, impostor.port, good) == "bad_response"
