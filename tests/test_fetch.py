"""browserfarm.net.fetch against real loopback servers: one deadline for the whole call
(however the server spreads its bytes, however many redirects), a size cap that stops
reading, and errors that say which of the two, or that there was no answer at all."""
from __future__ import annotations

import re
import time

import pytest

from browserfarm.net.fetch import FetchFailed, FetchTimeout, TooLarge, fetch
from tests.conftest import free_port
from tests.servers import HTTPService

# The drips below go on for DRIP seconds, far past TIMEOUT: a fetch that waited for
# them would end with a whole answer instead of a timeout.
TIMEOUT = 1.0
DRIP = 6.0
STEP = 0.1  # far below TIMEOUT: httpx's per-read timeout alone never fires


class Tricky(HTTPService):
    """``/text`` (latin-1 text), ``/big/<n>`` (n bytes, no Content-Length),
    ``/drip-body``, ``/drip-headers``, ``/hop/<n>`` (each hop STEP*4 s late, then a
    redirect to hop n-1; hop 0 answers), ``/loop`` (a redirect to itself), ``/silent``."""

    def respond(self, h):
        route = h.route
        if route == "/text":
            h.reply(200, "grüß".encode("latin-1"), "text/plain; charset=latin-1")
        elif match := re.fullmatch(r"/big/(\d+)", route):
            h.send_response(200)
            h.end_headers()  # HTTP/1.0 without a length: the body ends when we close
            left = int(match.group(1))
            while left > 0 and not self.stopping.is_set():
                h.wfile.write(b"x" * min(left, 65536))
                left -= 65536
        elif route == "/drip-body":
            h.send_response(200)
            h.send_header("Content-Length", str(int(DRIP / STEP)))
            h.end_headers()
            self._drip(h, b"x")
        elif route == "/drip-headers":
            h.wfile.write(b"HTTP/1.0 200 OK\r\n")
            self._drip(h, b"X-Slow: yes\r\n")
            h.wfile.write(b"Content-Length: 2\r\n\r\nok")
        elif match := re.fullmatch(r"/hop/(\d+)", route):
            if self.sleep(STEP * 4):
                return
            hop = int(match.group(1))
            if hop == 0:
                h.reply(200, b"arrived")
            else:
                h.send_response(302)
                h.send_header("Location", f"/hop/{hop - 1}")
                h.send_header("Content-Length", "0")
                h.end_headers()
        elif route == "/loop":
            h.send_response(302)
            h.send_header("Location", "/loop")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif route == "/byte-a-second":  # an answer's headers, one byte per second
            if h.command == "POST":
                h.rfile.read(int(h.headers.get("Content-Length") or 0))
            for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"y" * 60:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                if self.sleep(1):
                    return
        elif route == "/silent":
            self.sleep(30)
        else:
            h.reply(404, b"not found")

    def _drip(self, h, piece: bytes) -> None:
        for _ in range(int(DRIP / STEP)):
            if self.sleep(STEP):
                return
            h.wfile.write(piece)


@pytest.fixture
def tricky():
    service = Tricky()
    yield service
    service.stop()


def test_a_whole_answer_with_its_status_headers_and_charset(tricky):
    answer = fetch(tricky.url + "/text", timeout=TIMEOUT, max_bytes=100)
    assert (answer.status, answer.body) == (200, "grüß".encode("latin-1"))
    assert answer.headers["content-type"] == "text/plain; charset=latin-1"
    assert answer.text() == "grüß"


def test_an_error_status_is_an_answer(tricky):
    answer = fetch(tricky.url + "/nothing-here", timeout=TIMEOUT, max_bytes=100)
    assert (answer.status, answer.text()) == (404, "not found")


def test_reading_stops_at_the_size_cap(tricky):
    assert len(fetch(tricky.url + "/big/1000", timeout=5, max_bytes=1000).body) == 1000
    with pytest.raises(TooLarge, match="larger than 1000 bytes"):
        fetch(tricky.url + "/big/1001", timeout=5, max_bytes=1000)
    # 1 GiB on offer: only about max_bytes of it is read before the call ends.
    with pytest.raises(TooLarge):
        fetch(tricky.url + f"/big/{1 << 30}", timeout=30, max_bytes=100_000)


def test_a_body_sent_a_byte_at_a_time_ends_at_the_deadline(tricky):
    with pytest.raises(FetchTimeout) as timeout:
        fetch(tricky.url + "/drip-body", timeout=TIMEOUT, max_bytes=1 << 20)
    assert timeout.value.answered


def test_headers_sent_a_line_at_a_time_end_at_the_deadline(tricky):
    with pytest.raises(FetchTimeout) as timeout:
        fetch(tricky.url + "/drip-headers", timeout=TIMEOUT, max_bytes=1 << 20)
    assert not timeout.value.answered


def test_a_server_that_never_answers_ends_at_the_deadline(tricky):
    with pytest.raises(FetchTimeout):
        fetch(tricky.url + "/silent", timeout=TIMEOUT, max_bytes=100)


def test_redirects_are_followed_within_one_deadline(tricky):
    assert fetch(tricky.url + "/hop/2", timeout=5, max_bytes=100).body == b"arrived"
    # Each hop comes well within TIMEOUT; all of them together don't.
    with pytest.raises(FetchTimeout):
        fetch(tricky.url + "/hop/5", timeout=TIMEOUT, max_bytes=100)


def test_redirects_not_followed_when_asked(tricky):
    answer = fetch(tricky.url + "/hop/1", timeout=5, max_bytes=100, follow_redirects=False)
    assert (answer.status, answer.headers["location"]) == (302, "/hop/0")


def test_a_redirect_loop_fails(tricky):
    with pytest.raises(FetchFailed) as failed:
        fetch(tricky.url + "/loop", timeout=5, max_bytes=100)
    assert failed.value.kind == "TooManyRedirects"


def test_no_server_fails_with_the_reason(tricky):
    with pytest.raises(FetchFailed) as failed:
        fetch(f"http://127.0.0.1:{free_port()}/", timeout=TIMEOUT, max_bytes=100)
    assert failed.value.kind == "ConnectError"
    with pytest.raises(FetchFailed) as failed:
        fetch("ftp://127.0.0.1/", timeout=TIMEOUT, max_bytes=100)
    assert failed.value.kind == "UnsupportedProtocol"


def test_an_untrusted_certificate_fails(tricky, tls_front):
    front = tls_front(tricky.port)
    with pytest.raises(FetchFailed) as failed:
        fetch(f"https://127.0.0.1:{front.port}/text", timeout=5, max_bytes=100)
    assert failed.value.kind == "ConnectError" and "CERTIFICATE" in str(failed.value)


def test_through_a_socks5_proxy(tricky, microsocks):
    upstream = microsocks()
    proxy = f"socks5://{upstream.host}:{upstream.port}"
    answer = fetch(tricky.url + "/text", timeout=5, max_bytes=100, proxy=proxy)
    assert answer.status == 200 and upstream.connections() == 1
    with pytest.raises(FetchTimeout) as timeout:
        fetch(tricky.url + "/drip-body", timeout=TIMEOUT, max_bytes=1 << 20, proxy=proxy)
    assert timeout.value.answered


@pytest.mark.timeout(60)  # httpx alone would wait for the SOCKS reply forever
def test_a_proxy_that_never_answers_the_handshake_ends_at_the_deadline(tricky, misbehaving):
    silent = misbehaving("silent")
    with pytest.raises(FetchTimeout) as timeout:
        fetch(tricky.url + "/text", timeout=TIMEOUT, max_bytes=100,
              proxy=f"socks5://127.0.0.1:{silent.port}")
    assert not timeout.value.answered


def test_a_byte_a_second_ends_at_the_deadline(tricky):
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(tricky.url + "/byte-a-second", timeout=2, max_bytes=100)
    assert time.monotonic() - started < 4


def test_the_agents_cloud_calls_end_by_one_deadline(tricky):
    """The agent's client of the cloud: a cloud (or something in between) that sends a
    byte a second never trips a per-step timeout; the call still ends by its deadline,
    as the cloud being unreachable. The client works again afterwards."""
    from browserfarm.agent.cloud import Cloud, Login
    from browserfarm.errors import UpstreamError

    with Cloud(Login(server=tricky.url, token="t"), timeout=2) as cloud:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as unreachable:
            cloud.call("/byte-a-second", {})
        assert time.monotonic() - started < 4
        assert unreachable.value.code == 500 and "unreachable" in str(unreachable.value)
        with pytest.raises(UpstreamError):  # answers 404 text: no envelope
            cloud.call("/nothing-here", {})
        assert time.monotonic() - started < 5
