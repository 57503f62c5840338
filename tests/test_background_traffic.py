"""Firefox's background services (telemetry, Normandy/Nimbus, Remote Settings, Safe
Browsing, updates, ...) stay off: a window's proxy sees nothing but its own pages. A
loopback SOCKS5 recorder stands in for the window's relay; it writes down every CONNECT
target and refuses it, so Firefox never reaches anything (names are resolved by the
proxy, which resolves nothing)."""
import socket
import threading
import time

import pytest

from browserfarm.browsers.backends import LaunchSpec, WorkerSpec
from browserfarm.config import load_settings
from browserfarm_plugins.firefox import Firefox
from tests.conftest import free_port, needs_firefox
from tests.servers import ConnectionServer

pytestmark = needs_firefox()

QUIET_FOR = 25  # seconds: Remote Settings asked within 3 s, the Widevine update at ~20 s


class Recorder:
    """A SOCKS5 server on 127.0.0.1 that records each CONNECT's host:port and answers
    "connection refused" (reply 5): it never connects anywhere."""

    def __init__(self):
        self.targets: list[str] = []
        self.changed = threading.Condition()
        self._server = ConnectionServer(self._handle)
        self.port = self._server.port

    def _handle(self, conn):
        try:
            conn.settimeout(10)
            head = _read(conn, 2)
            _read(conn, head[1])  # methods
            conn.sendall(b"\x05\x00")
            _, _, _, kind = _read(conn, 4)
            if kind == 1:
                host = socket.inet_ntop(socket.AF_INET, _read(conn, 4))
            elif kind == 4:
                host = socket.inet_ntop(socket.AF_INET6, _read(conn, 16))
            else:
                host = _read(conn, _read(conn, 1)[0]).decode()
            port = int.from_bytes(_read(conn, 2), "big")
            with self.changed:
                self.targets.append(f"{host}:{port}")
                self.changed.notify_all()
            conn.sendall(b"\x05\x05\x00\x01" + bytes(6))
        except (OSError, IndexError, ValueError):
            pass

    def wait_for_other(self, expected: str, seconds: float) -> list[str]:
        """Waits until a target other than ``expected`` comes, at most ``seconds``."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while time.monotonic() < deadline:
                others = [t for t in self.targets if t != expected]
                if others:
                    return others
                self.changed.wait(deadline - time.monotonic())
            return []

    def close(self):
        self._server.stop()


def _read(conn, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.fixture
def recorder():
    recorder = Recorder()
    yield recorder
    recorder.close()


def test_a_window_sends_nothing_but_its_pages_through_its_proxy(recorder, tmp_path):
    """A tryout saw ~15 CONNECTs to firefox.settings.services.mozilla.com:443 in 3 s:
    ESR ignores services.settings.server unless MOZ_REMOTE_SETTINGS_DEVTOOLS=1."""
    start = f"127.0.0.1:{free_port()}"  # refused by the recorder: Firefox shows its error
    spec = LaunchSpec(profile_dir=tmp_path / "profile", relay_port=recorder.port,
                      start_url=f"http://{start}/", log_path=tmp_path / "firefox.log")
    spec.profile_dir.mkdir()
    assert_quiet(recorder, start, Firefox.launch(spec), tmp_path / "firefox.log")


def test_a_v5_worker_sends_nothing_but_its_pages_through_its_relay(recorder, tmp_path):
    """A worker goes through the runner's guarded direct relay: background traffic
    would go out from this machine, around any window proxy."""
    start = f"127.0.0.1:{free_port()}"
    spec = WorkerSpec(browser="firefox", url=f"http://{start}/", relay_port=recorder.port,
                      log_path=tmp_path / "firefox.log")
    launched = Firefox.start_worker(spec, load_settings({}, environ={}))
    assert_quiet(recorder, start, launched, tmp_path / "firefox.log")


def assert_quiet(recorder, start, launched, log_path):
    try:
        assert start in recorder.targets  # the proxy is in use
        leaked = recorder.wait_for_other(start, QUIET_FOR)
    finally:
        Firefox.stop(launched.handle)
    assert leaked == [], (leaked, log_path.read_text(errors="replace")[-3000:])
