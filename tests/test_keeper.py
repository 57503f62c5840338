"""The session keeper's protocol as the API process sees it: answers, and what counts
as "its runner is gone" (attach directly) versus a browser's failure (a 422). The
keeper is real (its own thread and port); what it holds stands in for a browser,
which tests/test_workers.py covers through the whole farm."""
import socket
import threading

import pytest

from browserfarm.browsers import keeper
from browserfarm.browsers.keeper import KeeperGone, SessionKeeper, ask


class Session:
    def __init__(self):
        self.visited, self.closed = [], False

    def screenshot(self):
        return b"\x89PNG" + b"x" * 300_000  # larger than one socket read

    def navigate(self, url, timeout):
        if url == "http://bad/":
            raise RuntimeError("Reached error page: about:neterror")
        self.visited.append((url, timeout))

    def close(self):
        self.closed = True


@pytest.fixture
def held():
    running = SessionKeeper()
    session = Session()
    handle = running.add(7, session)
    yield running, session, handle
    running.close()


def test_commands_answer_through_the_keeper_on_one_kept_connection(held):
    running, session, handle = held
    assert ask(handle, 7, "screenshot", [], timeout=5) == session.screenshot()
    assert ask(handle, 7, "navigate", ["http://example.test/", 30], timeout=5) == b""
    assert session.visited == [("http://example.test/", 30)]
    assert len(running._connections) == 1


def test_a_browser_failure_is_an_error_with_its_message_not_a_gone_keeper(held):
    handle = held[2]
    with pytest.raises(RuntimeError, match="about:neterror"):
        ask(handle, 7, "navigate", ["http://bad/", 30], timeout=5)
    assert ask(handle, 7, "screenshot", [], timeout=5).startswith(b"\x89PNG")


@pytest.mark.parametrize("change", [
    {"keeperKey": "not-the-key"},  # another runner's keeper now on that port
    {"keeperKey": "ключ"},  # not even ASCII
    {"keeper": "http://127.0.0.1:1"},  # a handle from before this protocol
])
def test_a_wrong_key_or_address_is_a_gone_keeper(held, change):
    handle = held[2]
    with pytest.raises(KeeperGone):
        ask(handle | change, 7, "screenshot", [], timeout=5)


def test_a_worker_it_does_not_hold_is_a_gone_keeper(held):
    running, session, handle = held
    with pytest.raises(KeeperGone, match="not held"):
        ask(handle, 8, "screenshot", [], timeout=5)
    running.remove(7)
    assert session.closed
    with pytest.raises(KeeperGone, match="not held"):
        ask(handle, 7, "screenshot", [], timeout=5)


def test_a_closed_keeper_is_gone_even_on_a_kept_connection(held):
    running, _, handle = held
    assert ask(handle, 7, "screenshot", [], timeout=5)
    running.close()
    with pytest.raises(KeeperGone):
        ask(handle, 7, "screenshot", [], timeout=5)


def test_something_else_on_the_port_is_a_gone_keeper():
    other = socket.create_server(("127.0.0.1", 0))  # answers HTTP, then hangs up

    def serve():
        conn, _ = other.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    handle = {"keeper": f"tcp://127.0.0.1:{other.getsockname()[1]}", "keeperKey": "k"}
    try:
        with pytest.raises(KeeperGone, match="not a session keeper"):
            ask(handle, 7, "screenshot", [], timeout=5)
    finally:
        other.close()


def test_a_keeper_that_does_not_answer_in_time_is_an_error(held, monkeypatch):
    _, session, handle = held
    release = threading.Event()
    session.screenshot = lambda: release.wait(10) and b"late"
    monkeypatch.setattr(keeper, "TIMEOUT_MARGIN", 0.0)
    try:
        with pytest.raises(RuntimeError, match="no answer from its runner"):
            ask(handle, 7, "screenshot", [], timeout=0.3)
    finally:
        release.set()
    session.screenshot = lambda: b"next"
    assert ask(handle, 7, "screenshot", [], timeout=5) == b"next"  # a fresh connection


def test_garbage_on_the_keepers_port_gets_hung_up_on(held):
    handle = held[2]
    port = int(handle["keeper"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # reads as a 1.2 GB frame
        assert conn.recv(100) == b""
    assert ask(handle, 7, "screenshot", [], timeout=5)  # the keeper still serves
