"""The agent's client of the cloud when the agent stops: a call waiting for the cloud
(the command poll's long poll) is answered as soon as the client is closed."""
import socket
import threading

import pytest

from browserfarm.agent.cloud import Cloud, Login
from browserfarm.errors import UpstreamError

ATTEMPTS = 20  # the old close() left a waiting call unanswered in ~1 of 4


@pytest.fixture
def silent_cloud():
    """A loopback server that takes connections and never answers (a held poll)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=ATTEMPTS * 2)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    listener.close()
    for connection in held:
        connection.close()


def test_closing_the_client_answers_a_call_waiting_for_the_cloud(silent_cloud):
    """Fails on the old close(): it cancelled the call on the client's loop and then
    stopped the loop, which at times stopped before the cancelled httpx call had ended,
    so its caller waited for ever (`up` took 11 s to stop: the poll thread's join). Now
    close() answers the caller itself, before it returns: no wait here depends on time
    but for a thread being scheduled."""
    url, held = silent_cloud
    for attempt in range(ATTEMPTS):
        cloud = Cloud(Login(server=url, token="t"), timeout=60)
        answers, started = [], threading.Event()

        def poll():
            started.set()
            try:
                cloud.call("/agent/poll", {})
            except UpstreamError as exc:
                answers.append(exc)

        caller = threading.Thread(target=poll, daemon=True)
        caller.start()
        started.wait(5)
        while len(held) <= attempt:  # the call reached the cloud, and waits
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)  # its request sent
        cloud.close()
        caller.join(30)  # well under the call's own 60 s deadline
        assert not caller.is_alive(), "a call waiting for the cloud outlived close()"
        assert "cancelled" in answers[0].msg
