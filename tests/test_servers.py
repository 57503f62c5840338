"""Smoke tests of the servers in tests/servers.py: each one really serves."""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import asyncssh
import pytest

from tests import servers
from tests.servers import Misbehaving, Origin, TLSFront, open_fds


def curl(*args: str) -> subprocess.CompletedProcess:
    """curl's body on stdout; ``-w`` puts the status code on the last line."""
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                           *args], capture_output=True, text=True, timeout=20)


def body_and_status(result: subprocess.CompletedProcess) -> tuple[str, str]:
    body, _, status = result.stdout.rpartition("\n")
    return body, status


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def get(url: str, **kwargs) -> bytes:
    with urllib.request.urlopen(url, timeout=10, **kwargs) as response:
        return response.read()


# ----- origin -----------------------------------------------------------------------

def test_origin(origin):
    assert get(origin.url + "/") == b"hello from origin"
    data = get(origin.url + "/bytes/200000")
    assert len(data) == 200000 and all(data[k] == k % 256 for k in (0, 255, 65536, 199999))
    assert get(origin.url + "/echo", data=b"ping") == b"ping"
    with pytest.raises(urllib.error.HTTPError) as error:
        get(origin.url + "/nowhere")
    assert error.value.code == 404
    error.value.close()
    assert [(m, p) for m, p, _ in origin.requests] == [
        ("GET", "/"), ("GET", "/bytes/200000"), ("POST", "/echo"), ("GET", "/nowhere")]
    assert origin.requests[0][2][0] == "127.0.0.1"


def test_http_service_stops_without_leftovers():
    before, threads = open_fds(), threading.active_count()
    service = Origin()
    idle = socket.create_connection((service.host, service.port), timeout=5)  # silent
    assert get(service.url + "/") == b"hello from origin"
    started = time.monotonic()
    service.stop()
    idle.close()
    assert time.monotonic() - started < 2
    assert (open_fds(), threading.active_count()) == (before, threads)


# ----- microsocks -------------------------------------------------------------------

def test_microsocks_with_password(microsocks, origin):
    proxy = microsocks("alice", "s3cret")
    assert proxy.connections() == 0
    ok = curl("--socks5-hostname", f"alice:s3cret@{proxy.host}:{proxy.port}", origin.url)
    assert body_and_status(ok) == ("hello from origin", "200"), ok.stderr
    assert proxy.connections() == 1
    refused = curl("--socks5-hostname", f"alice:bad@{proxy.host}:{proxy.port}", origin.url)
    assert refused.returncode != 0
    assert proxy.connections() == 1


def test_microsocks_without_password(microsocks, origin):
    proxy = microsocks()
    ok = curl("--socks5", f"{proxy.host}:{proxy.port}", origin.url + "/bytes/10")
    assert ok.returncode == 0 and body_and_status(ok)[1] == "200"
    assert proxy.connections() == 1


# ----- tinyproxy --------------------------------------------------------------------

def test_tinyproxy_with_password(tinyproxy, origin):
    proxy = tinyproxy("bob", "pa55")
    address = f"http://{proxy.host}:{proxy.port}"
    ok = curl("-x", address, "-U", "bob:pa55", origin.url)
    assert body_and_status(ok) == ("hello from origin", "200"), ok.stderr
    assert body_and_status(curl("-x", address, "-U", "bob:bad", origin.url))[1] != "200"
    assert proxy.connects() == 0
    tunnel = curl("-p", "-x", address, "-U", "bob:pa55", origin.url)  # CONNECT to any port
    assert body_and_status(tunnel) == ("hello from origin", "200"), tunnel.stderr
    assert proxy.connects() == 1


# ----- sshd -------------------------------------------------------------------------

def test_sshd_banner(sshd):
    server = sshd()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        assert sock.recv(256).startswith(b"SSH-2.0-OpenSSH")
    assert server.host_key_pub.startswith("ssh-ed25519 ")
    assert "OPENSSH PRIVATE KEY" in server.private_key


async def fetch_through_ssh(server, origin, **login) -> bytes:
    known_hosts = ([asyncssh.import_public_key(server.host_key_pub)], [], [])
    async with asyncssh.connect(server.host, server.port, known_hosts=known_hosts,
                                **login) as conn:
        reader, writer = await conn.open_connection(origin.host, origin.port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        return await reader.read()


def test_sshd_forwards_with_password_and_key(sshd, origin):
    server = sshd()
    with_password = fetch_through_ssh(server, origin, username=server.user,
                                      password=server.password)
    answer = asyncio.run(asyncio.wait_for(with_password, 20))
    assert answer.endswith(b"hello from origin")
    assert server.forwards() == 1
    key = asyncssh.import_private_key(server.private_key)
    with_key = fetch_through_ssh(server, origin, username=server.key_user,
                                 client_keys=[key])
    assert asyncio.run(asyncio.wait_for(with_key, 20)).endswith(b"hello from origin")
    assert server.forwards() == 2


def test_sshd_refuses_a_wrong_password(sshd, origin):
    server = sshd()
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(asyncio.wait_for(fetch_through_ssh(
            server, origin, username=server.user, password="wrong"), 20))


def test_sshd_stop_ends_open_sessions_too(sshd, origin):
    server = sshd()

    async def stop_while_connected():
        async with asyncssh.connect(server.host, server.port, known_hosts=None,
                                    username=server.user, password=server.password) as conn:
            await conn.open_connection(origin.host, origin.port)
            sessions = servers._descendants(server.pid)
            assert sessions  # sshd forked for this connection
            await asyncio.to_thread(server.stop)
            return sessions
    sessions = asyncio.run(asyncio.wait_for(stop_while_connected(), 20))
    assert not any(map(servers._alive, sessions)) and server.proc.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5)


# ----- TLS front --------------------------------------------------------------------

def test_https_proxy_through_tls_front(tls_front, tinyproxy, origin):
    proxy = tinyproxy("carol", "pw")
    front = tls_front(proxy.port)
    for flags in ([], ["-p"]):  # forwarded GET, then a CONNECT tunnel
        result = curl(*flags, "--proxy-cacert", front.ca_file, "-x",
                      f"https://{front.host}:{front.port}", "-U", "carol:pw", origin.url)
        assert body_and_status(result) == ("hello from origin", "200"), result.stderr
    assert proxy.connects() == 1


def test_tls_front_half_closes_each_way(tls_front):
    """The client's close_notify reaches the upstream as EOF; the upstream's answer after
    that still reaches the client, then its EOF as a close_notify."""
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        front = tls_front(upstream.getsockname()[1])

        def answer_after_eof():
            conn, _ = upstream.accept()
            with conn:
                conn.sendall(b"got %d bytes" % len(conn.makefile("rb").read()))
        thread = threading.Thread(target=answer_after_eof)
        thread.start()
        with socket.create_connection((front.host, front.port), timeout=5) as raw:
            # A memory-BIO client: ssl.SSLSocket can't read on after its own close_notify.
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ssl.create_default_context(cafile=front.ca_file).wrap_bio(
                incoming, outgoing, server_hostname="localhost")

            def run(step):
                while True:
                    try:
                        return step()
                    except ssl.SSLWantReadError:
                        raw.sendall(outgoing.read())
                        if data := raw.recv(65536):
                            incoming.write(data)
                        else:
                            incoming.write_eof()
                    finally:
                        raw.sendall(outgoing.read())
            run(tls.do_handshake)
            tls.write(b"abc")
            with pytest.raises(ssl.SSLWantReadError):
                tls.unwrap()  # sends close_notify; the server's is still to come
            raw.sendall(outgoing.read())
            assert run(lambda: tls.read(100)) == b"got 3 bytes"
            with pytest.raises(ssl.SSLZeroReturnError):
                run(lambda: tls.read(100))
        thread.join(5)


def test_tls_front_stops_without_leftovers(_tls_certs, origin):
    before = open_fds()
    front = TLSFront(origin.port, _tls_certs)
    result = curl("--cacert", front.ca_file, f"https://localhost:{front.port}/")
    assert body_and_status(result) == ("hello from origin", "200"), result.stderr
    front.stop()
    assert open_fds() == before


# ----- misbehaving ------------------------------------------------------------------

def test_misbehaving(misbehaving):
    silent, closer, garbage = map(misbehaving, ("silent", "closer", "garbage"))
    with socket.create_connection((silent.host, silent.port), timeout=0.3) as sock:
        with pytest.raises(TimeoutError):
            sock.recv(1)
    with socket.create_connection((closer.host, closer.port), timeout=5) as sock:
        assert sock.recv(1) == b""
    with socket.create_connection((garbage.host, garbage.port), timeout=5) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.makefile("rb").read() == Misbehaving.GARBAGE
    assert (silent.accepted, closer.accepted, garbage.accepted) == (1, 1, 1)


def test_misbehaving_stops_without_leftovers():
    before = open_fds()
    server = Misbehaving("silent")
    clients = [socket.create_connection((server.host, server.port), timeout=5)
               for _ in range(3)]
    wait_until(lambda: server.accepted == 3)  # accepted by the loop, not just queued
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert all(client.recv(1) == b"" for client in clients)  # their sockets were closed
    for client in clients:
        client.close()
    assert open_fds() == before


# ----- IP-check services ------------------------------------------------------------

def get_json(url):
    return json.loads(get(url))


def test_ip_services_formats(ip_services):
    ip_api = get_json(ip_services.base_urls["ip-api"])
    assert (ip_api["status"], ip_api["query"], ip_api["countryCode"], ip_api["lat"]) == (
        "success", "127.0.0.1", "DE", 52.52)
    ipinfo = get_json(ip_services.base_urls["ipinfo"])
    assert (ipinfo["ip"], ipinfo["country"], ipinfo["loc"]) == (
        "127.0.0.1", "DE", "52.5200,13.4050")
    ipapi = get_json(ip_services.base_urls["ipapi.co"])
    assert (ipapi["ip"], ipapi["country_code"], ipapi["longitude"]) == (
        "127.0.0.1", "DE", 13.405)
    assert [p for _, p, _ in ip_services.requests] == [
        "/ip-api/json/", "/ipinfo/json", "/ipapi.co/json/"]


def test_ip_services_modes(ip_services):
    ip_services.mode = "fail"
    assert get_json(ip_services.base_urls["ip-api"]) == {
        "status": "fail", "message": "reserved range", "query": "127.0.0.1"}
    ip_services.mode = "garbage"
    assert get(ip_services.base_urls["ipinfo"]).startswith(b"<html>")
    ip_services.mode = "empty"
    assert get(ip_services.base_urls["ipapi.co"]) == b""


def test_slow_answers_do_not_delay_the_stop(ip_services, extraction_api):
    ip_services.mode = "slow"
    for url in (ip_services.base_urls["ip-api"], extraction_api.url + "/slow"):
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(url, timeout=0.3)
    started = time.monotonic()
    ip_services.stop()
    extraction_api.stop()
    assert time.monotonic() - started < 2


# ----- extraction API ---------------------------------------------------------------

def test_extraction_api(extraction_api):
    extraction_api.answer = (200, "application/json", b'{"proxies": ["1.2.3.4:8080"]}')
    with urllib.request.urlopen(extraction_api.url + "/get?count=1", timeout=5) as response:
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read()) == {"proxies": ["1.2.3.4:8080"]}
    extraction_api.answer = (503, "text/plain", b"busy")
    with pytest.raises(urllib.error.HTTPError) as error:
        get(extraction_api.url + "/get")
    assert (error.value.code, error.value.read()) == (503, b"busy")
    error.value.close()
    get(extraction_api.url + "/refresh")
    get(extraction_api.url + "/refresh")
    assert extraction_api.refreshes == 2
    assert [p for _, p, _ in extraction_api.requests][-1] == "/refresh"
