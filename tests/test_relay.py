"""The relay against real proxies: microsocks (SOCKS5), tinyproxy (HTTP), tinyproxy
behind TLS (HTTPS proxy), OpenSSH (ssh), Dante (SOCKS5 with UDP), and servers that
misbehave. Every test proves the traffic crossed the proxy by the proxy's own log."""
import asyncio
import socket
import subprocess
import threading
import time

import pytest
from python_socks import ProxyError
from python_socks.sync import Proxy as SocksClient

from browserfarm.net import udp
from browserfarm.net.proxy import ProxyOptions, ProxySettings
from browserfarm.net.relay import RelayHub, RelayLimits
from browserfarm_plugins.proxy_types import Direct, Http, Https, Socks5, Ssh
from tests.conftest import wait_until
from tests.servers import open_fds

FAST = ProxyOptions(connect_timeout=2.0)


@pytest.fixture
def hub():
    hub = RelayHub()
    yield hub
    hub.close()


def curl(relay_port: int, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--socks5-hostname",
                           f"127.0.0.1:{relay_port}", url],
                          capture_output=True, timeout=30)


def through(relay_port: int, host: str, port: int) -> socket.socket:
    """A socket to host:port through the relay, as a browser's SOCKS client makes it."""
    return SocksClient.from_url(f"socks5://127.0.0.1:{relay_port}").connect(
        host, port, timeout=5)


def socks_refusal(relay_port: int, host="127.0.0.1", port=9) -> int:
    """The SOCKS5 reply code the relay answers a CONNECT with."""
    with pytest.raises(ProxyError) as refused:
        through(relay_port, host, port).close()
    return refused.value.error_code


# ----- every proxy type carries traffic ---------------------------------------------

def test_socks5_with_username_and_password(hub, microsocks, origin):
    upstream = microsocks("alice", "wonder land")
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port,
                                           "alice", "wonder land"), FAST))
    answer = curl(relay.port, origin.url + "/")
    assert answer.stdout == b"hello from origin"
    assert upstream.connections() == 1
    assert relay.stats.accepted == 1 and relay.stats.bytes_down > 0


def test_http_proxy_with_basic_auth(hub, tinyproxy, origin):
    upstream = tinyproxy("bob", "secret")
    relay = hub.start(Http(ProxySettings("http", upstream.host, upstream.port,
                                         "bob", "secret"), FAST))
    assert curl(relay.port, origin.url + "/").stdout == b"hello from origin"
    assert upstream.connects() == 1


def test_https_proxy_is_reached_over_verified_tls(hub, tinyproxy, tls_front, origin):
    upstream = tinyproxy("bob", "secret")
    front = tls_front(upstream.port)
    settings = ProxySettings("https", "localhost", front.port, "bob", "secret")
    trusted = hub.start(Https(settings, ProxyOptions(connect_timeout=2,
                                                     ca_file=str(front.ca_file))))
    assert curl(trusted.port, origin.url + "/").stdout == b"hello from origin"
    assert upstream.connects() == 1
    untrusted = hub.start(Https(settings, FAST))  # the test CA is not trusted here
    assert socks_refusal(untrusted.port, "127.0.0.1", origin.port) != 0
    assert "certificate" in untrusted.stats.last_failure.message.lower()
    assert upstream.connects() == 1


@pytest.mark.parametrize("login", ["password", "private key"])
def test_ssh_with_password_or_private_key(hub, sshd, origin, tmp_path, login):
    server = sshd()
    if login == "password":
        settings = ProxySettings("ssh", server.host, server.port, server.user,
                                 server.password)
    else:
        settings = ProxySettings("ssh", server.host, server.port, server.key_user,
                                 server.private_key)
    options = ProxyOptions(connect_timeout=5, ssh_known_hosts=tmp_path / "known_hosts")
    relay = hub.start(Ssh(settings, options))
    for _ in range(3):  # one SSH connection, a channel per stream
        assert curl(relay.port, origin.url + "/").stdout == b"hello from origin"
    assert server.forwards() == 3
    assert (tmp_path / "known_hosts").read_text().split()[-2:] == \
        server.host_key_pub.split()[:2]


def test_ssh_host_key_policy_strict_refuses_an_unknown_server(hub, sshd, tmp_path, origin):
    server = sshd()
    options = ProxyOptions(connect_timeout=5, ssh_host_key_policy="strict",
                           ssh_known_hosts=tmp_path / "known_hosts")
    relay = hub.start(Ssh(ProxySettings("ssh", server.host, server.port, server.user,
                                        server.password), options))
    assert socks_refusal(relay.port, "127.0.0.1", origin.port) == 0x02
    assert relay.stats.last_failure.kind == "auth_failed"
    assert server.forwards() == 0


def test_ssh_changed_host_key_is_refused(hub, sshd, tmp_path, origin):
    server = sshd()
    known = tmp_path / "known_hosts"
    known.write_text(f"[{server.host}]:{server.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIGZha2VrZXlmYWtla2V5ZmFrZWtleWZha2VrZXlmYWs=\n")
    relay = hub.start(Ssh(ProxySettings("ssh", server.host, server.port, server.user,
                                        server.password),
                          ProxyOptions(connect_timeout=5, ssh_known_hosts=known)))
    assert socks_refusal(relay.port, "127.0.0.1", origin.port) == 0x02
    assert server.forwards() == 0


def test_direct(hub, origin):
    relay = hub.start(Direct(ProxySettings("direct"), FAST))
    assert curl(relay.port, origin.url + "/").stdout == b"hello from origin"
    assert origin.requests[-1][1] == "/"


# ----- streaming --------------------------------------------------------------------

def test_large_transfers_arrive_whole_both_ways(hub, microsocks, origin):
    upstream = microsocks()
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port), FAST))
    size = 20 * 1024 * 1024
    answer = subprocess.run(["curl", "-sS", "--max-time", "60", "--socks5-hostname",
                             f"127.0.0.1:{relay.port}", f"{origin.url}/bytes/{size}"],
                            capture_output=True, timeout=90)
    assert len(answer.stdout) == size
    assert answer.stdout[:512] == bytes(range(256)) * 2
    body = bytes(range(256)) * 8192  # 2 MiB up, echoed back down
    echoed = subprocess.run(["curl", "-sS", "--max-time", "60", "--socks5-hostname",
                             f"127.0.0.1:{relay.port}", "--data-binary", "@-",
                             "-H", "Content-Type: application/octet-stream",
                             f"{origin.url}/echo"], input=body, capture_output=True,
                            timeout=90)
    assert echoed.stdout == body
    assert relay.stats.bytes_up > len(body) and relay.stats.bytes_down > size


@pytest.fixture
def answer_after_eof():
    """A TCP server that reads until the client half-closes, then answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
            conn.sendall(b"got " + str(len(received)).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(10)


def test_half_close_reaches_the_other_side(hub, answer_after_eof):
    # Direct: microsocks itself closes both ways on the first EOF.
    relay = hub.start(Direct(ProxySettings("direct"), FAST))
    with through(relay.port, "127.0.0.1", answer_after_eof) as sock:
        sock.sendall(b"x" * 100_000)
        sock.shutdown(socket.SHUT_WR)  # "done sending", still reading
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(100):
            answer += chunk
    assert answer == b"got 100000"


# ----- failures have a kind, and the SOCKS client gets the matching reply -------------

def test_wrong_credentials(hub, microsocks, tinyproxy, sshd, origin, tmp_path):
    socks, http, ssh = microsocks("alice", "right"), tinyproxy("bob", "right"), sshd()
    for proxy in (Socks5(ProxySettings("socks5", socks.host, socks.port, "alice", "wrong"),
                         FAST),
                  Http(ProxySettings("http", http.host, http.port, "bob", "wrong"), FAST),
                  Ssh(ProxySettings("ssh", ssh.host, ssh.port, ssh.user, "wrong"),
                      ProxyOptions(connect_timeout=5,
                                   ssh_known_hosts=tmp_path / "known_hosts"))):
        relay = hub.start(proxy)
        assert socks_refusal(relay.port, "127.0.0.1", origin.port) == 0x02, proxy.name
        assert relay.stats.last_failure.kind == "auth_failed", relay.stats.last_failure
    assert socks.connections() == 0 and ssh.forwards() == 0
    assert origin.requests == []


def test_a_proxy_that_is_not_listening(hub):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = hub.start(Socks5(ProxySettings("socks5", "127.0.0.1", port), FAST))
    assert socks_refusal(relay.port) == 0x05
    assert relay.stats.last_failure.kind == "connect_refused"


@pytest.mark.parametrize("behaviour, kind", [("silent", "timeout"),
                                             ("closer", "bad_response"),
                                             ("garbage", "bad_response")])
def test_a_proxy_that_misbehaves(hub, misbehaving, behaviour, kind):
    server = misbehaving(behaviour)
    relay = hub.start(Socks5(ProxySettings("socks5", server.host, server.port),
                             ProxyOptions(connect_timeout=1)))
    started = time.monotonic()
    socks_refusal(relay.port)
    assert time.monotonic() - started < 5  # bounded by the timeout, never a hang
    assert relay.stats.last_failure.kind == kind
    # The server counts a loop turn after the connect.
    wait_until(lambda: server.accepted >= 1, 5, "the server to count the connection")
    assert server.accepted == 1


def test_a_target_the_proxy_cannot_resolve(hub, microsocks):
    upstream = microsocks()
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port), FAST))
    assert socks_refusal(relay.port, "no-such-host.invalid", 80) != 0
    assert relay.stats.last_failure.kind in ("dns_failed", "bad_response")
    direct = hub.start(Direct(ProxySettings("direct"), FAST))
    socks_refusal(direct.port, "no-such-host.invalid", 80)
    assert direct.stats.last_failure.kind == "dns_failed"


@pytest.fixture
def udp_echo():
    """A UDP server answering each datagram with "echo: " + the datagram."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, address = server.recvfrom(65535)
            except OSError:
                continue
            server.sendto(b"echo: " + data, address)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def udp_associate(relay_port: int):
    """A SOCKS5 UDP association: (control socket, reply code, relay UDP port)."""
    control = socket.create_connection(("127.0.0.1", relay_port), timeout=5)
    control.sendall(b"\x05\x01\x00")
    assert control.recv(2) == b"\x05\x00"
    control.sendall(b"\x05\x03\x00\x01" + bytes(4) + b"\x00\x00")
    reply = control.recv(10)
    return control, reply[1], int.from_bytes(reply[8:10], "big")


def udp_round_trip(relay_port: int, echo_port: int, *payloads: bytes) -> list[bytes]:
    """Sends each payload to the echo server through one association; what came back."""
    control, code, udp_port = udp_associate(relay_port)
    assert code == 0
    answers = []
    with control, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        for payload in payloads:
            client.sendto(udp.pack("127.0.0.1", echo_port, payload),
                          ("127.0.0.1", udp_port))
            host, port, data = udp.unpack(client.recvfrom(65535)[0])
            assert (host, port) == ("127.0.0.1", echo_port)
            answers.append(data)
    return answers


def test_udp_is_refused_unless_the_window_enables_it(hub):
    relay = hub.start(Direct(ProxySettings("direct"), FAST))
    control, code, _ = udp_associate(relay.port)
    control.close()
    assert code == 0x07
    assert "enableSocks5Udp" in relay.stats.last_failure.message


def test_udp_associate_direct(hub, udp_echo):
    relay = hub.start(Direct(ProxySettings("direct"), FAST), RelayLimits(allow_udp=True))
    assert udp_round_trip(relay.port, udp_echo, b"ping") == [b"echo: ping"]


@pytest.mark.parametrize("login", [False, True], ids=["no auth", "username"])
def test_udp_associate_through_a_socks5_proxy_that_carries_udp(hub, danted, udp_echo,
                                                               login):
    # Dante, a SOCKS5 server with UDP ASSOCIATE (microsocks has none); its log counts.
    upstream = danted(login=login)
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port,
                                           upstream.user, upstream.password), FAST),
                      RelayLimits(allow_udp=True))
    assert udp_round_trip(relay.port, udp_echo, b"hello", b"again") == \
        [b"echo: hello", b"echo: again"]
    wait_until(lambda: upstream.datagrams() == (2, 2), 5,
               "Dante to log 2 datagrams each way")


def test_udp_through_a_socks5_proxy_refusing_the_password(hub, danted):
    upstream = danted(login=True)
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port,
                                           upstream.user, "wrong"), FAST),
                      RelayLimits(allow_udp=True))
    control, code, _ = udp_associate(relay.port)
    control.close()
    assert code == 0x02
    assert relay.stats.last_failure.kind == "auth_failed"
    assert upstream.datagrams() == (0, 0)


def test_udp_through_a_proxy_without_udp_says_so(hub, microsocks):
    upstream = microsocks()
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port), FAST),
                      RelayLimits(allow_udp=True))
    control, code, _ = udp_associate(relay.port)
    control.close()
    assert code != 0
    assert relay.stats.last_failure.kind in ("unsupported", "connect_refused")
    assert "UDP" in relay.stats.last_failure.message


def test_clients_asking_for_authentication_are_refused(hub):
    relay = hub.start(Direct(ProxySettings("direct"), FAST))
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(b"\x05\x01\x02")  # username/password only
        assert sock.recv(2) == b"\x05\xff"


# ----- limits and shutdown ----------------------------------------------------------

def test_connection_limit(hub, origin):
    relay = hub.start(Direct(ProxySettings("direct"), FAST), RelayLimits(max_connections=2))
    held = [through(relay.port, "127.0.0.1", origin.port) for _ in range(2)]
    with pytest.raises((ProxyError, OSError)):
        through(relay.port, "127.0.0.1", origin.port)
    assert relay.stats.refused == 1
    for sock in held:
        sock.close()


def test_idle_connections_are_closed(hub, origin):
    relay = hub.start(Direct(ProxySettings("direct"), FAST),
                      RelayLimits(idle_timeout=0.3))
    with through(relay.port, "127.0.0.1", origin.port) as sock:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the relay, not by the origin
    wait_until(lambda: relay.connections == 0, 5, "the relay to forget the connection")


def test_stop_closes_every_socket_and_task(hub, microsocks, origin):
    upstream = microsocks()
    hub.call(asyncio.sleep(0))  # the hub's loop and its own descriptors exist already
    fds_before = open_fds()
    relay = hub.start(Socks5(ProxySettings("socks5", upstream.host, upstream.port), FAST))
    clients = [through(relay.port, "127.0.0.1", origin.port) for _ in range(20)]
    assert relay.connections == 20
    hub.stop(relay)
    for sock in clients:
        sock.settimeout(5)
        assert sock.recv(1) == b""
        sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=2)
    tasks = hub.call(_other_tasks())
    assert tasks == []
    # The origin runs in this process too: its handler threads close their side soon.
    wait_until(lambda: open_fds() <= fds_before, 5,
               f"the file descriptors to come back to {fds_before}")


async def _other_tasks():
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_many_concurrent_connections_through_one_relay(hub, origin):
    relay = hub.start(Direct(ProxySettings("direct"), FAST))
    errors = []

    def one():
        try:
            with through(relay.port, "127.0.0.1", origin.port) as sock:
                sock.settimeout(10)
                sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                assert data.endswith(b"hello from origin")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert relay.stats.accepted == 100


# ----- a guarded relay (v5 workers): the network policy and the farm's own ports ------

def _guarded(hub, blocked="", allowed="", farm_ports=()):
    from browserfarm.net.policy import NetworkPolicy, parse_networks
    from browserfarm.net.relay import Guard
    guard = Guard(NetworkPolicy(parse_networks(blocked), parse_networks(allowed)),
                  lambda: set(farm_ports))
    return hub.start(Direct(ProxySettings("direct"), FAST), guard=guard)


@pytest.fixture
def blocked_origin():
    """An HTTP server on 127.66.0.1, in the range the tests block."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secret")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.66.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.hits = hits
    yield server
    server.shutdown()
    server.server_close()


def test_a_guarded_relay_refuses_blocked_networks_and_the_farms_ports(hub, origin,
                                                                      blocked_origin):
    relay = _guarded(hub, blocked="127.66.0.0/16", farm_ports={origin.port})
    port = blocked_origin.server_address[1]
    assert socks_refusal(relay.port, "127.66.0.1", port) == 2  # not allowed by ruleset
    assert socks_refusal(relay.port, "169.254.169.254", 80) == 2  # always blocked
    # the farm's port: by address, by name (resolved here), by 0.0.0.0 (this host)
    for host in ("127.0.0.1", "localhost", "0.0.0.0", "127.0.0.2"):
        assert socks_refusal(relay.port, host, origin.port) == 2, host
    assert blocked_origin.hits == [] and origin.requests == []
    assert relay.stats.refused == 6
    assert socks_refusal(relay.port, "no-such-name.invalid", 80) == 4  # dns_failed


def test_a_guarded_relay_reaches_other_loopback_ports_and_allowed_networks(
        hub, origin, blocked_origin):
    port = blocked_origin.server_address[1]
    open_relay = _guarded(hub, farm_ports={port})
    assert curl(open_relay.port, origin.url + "/").stdout == b"hello from origin"
    assert curl(open_relay.port, f"http://localhost:{origin.port}/").stdout \
        == b"hello from origin"
    # an allowed network wins over a blocked one, and over the farm's ports
    allowed = _guarded(hub, blocked="127.66.0.0/16", allowed="127.66.0.1/32",
                       farm_ports={port})
    assert curl(allowed.port, f"http://127.66.0.1:{port}/").stdout == b"secret"


def test_a_guarded_relay_carries_no_udp(hub):
    from browserfarm.net.policy import NetworkPolicy
    from browserfarm.net.relay import Guard
    relay = hub.start(Direct(ProxySettings("direct"), FAST), RelayLimits(allow_udp=True),
                      guard=Guard(NetworkPolicy()))
    with socket.create_connection(("127.0.0.1", relay.port)) as control:
        control.sendall(b"\x05\x01\x00")
        assert control.recv(2) == b"\x05\x00"
        control.sendall(b"\x05\x03\x00\x01" + bytes(4) + b"\x00\x00")
        assert control.recv(10)[1] == 0x07


# ----- UDP and the blocked networks (issue 12 item 4) -------------------------------
# 127.66.0.0/16 plays the blocked network; listeners there must receive nothing.

def _blocking_options(blocked="127.66.0.0/16", **options) -> ProxyOptions:
    from browserfarm.net.policy import NetworkPolicy, parse_networks
    return ProxyOptions(connect_timeout=2.0,
                        network_policy=NetworkPolicy(parse_networks(blocked)), **options)


class _BlockedUdp:
    """A UDP socket on 127.66.0.1 that must receive no datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.66.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    def received(self) -> list[bytes]:
        datagrams = []
        while True:
            try:
                datagrams.append(self.sock.recv(65535))
            except BlockingIOError:
                return datagrams


@pytest.fixture
def blocked_udp():
    listener = _BlockedUdp()
    yield listener
    listener.sock.close()


def test_udp_direct_drops_datagrams_to_blocked_networks(hub, udp_echo, blocked_udp):
    relay = hub.start(Direct(ProxySettings("direct"), _blocking_options()),
                      RelayLimits(allow_udp=True))
    blocked_port = blocked_udp.address[1]
    control, code, udp_port = udp_associate(relay.port)
    assert code == 0
    with control, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        # by address, twice (the second from the cache), and by a name that resolves
        # there (127.66.0.1 written as one number)
        for host in ("127.66.0.1", "127.66.0.1", "2135031809"):
            client.sendto(udp.pack(host, blocked_port, b"leak"), ("127.0.0.1", udp_port))
        client.sendto(udp.pack("127.0.0.1", udp_echo, b"ping"), ("127.0.0.1", udp_port))
        assert udp.unpack(client.recvfrom(65535)[0]) == ("127.0.0.1", udp_echo,
                                                         b"echo: ping")
        wait_until(lambda: relay.stats.udp_blocked == 3, 5, "3 datagrams dropped")
    assert relay.stats.last_failure.kind == "blocked"
    assert "127.66.0.1" in relay.stats.last_failure.message
    time.sleep(0.2)
    assert blocked_udp.received() == []


class _Socks5UdpLiar:
    """A SOCKS5 server (no auth) on 127.0.0.1 whose UDP ASSOCIATE answer points at
    ``relay_address`` (Dante answers its own address, which the test can't block
    without blocking Dante itself)."""

    def __init__(self, relay_address):
        self.relay_address = relay_address
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    connection.recv(3)  # 05 01 00
                    connection.sendall(b"\x05\x00")
                    connection.recv(10)  # the UDP ASSOCIATE request (IPv4)
                    host, port = self.relay_address
                    connection.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(host)
                                       + port.to_bytes(2, "big"))
                    connection.recv(1)  # until the association ends
                except OSError:
                    pass

    def stop(self):
        self.stopped.set()
        self.thread.join(10)
        self.server.close()


def test_a_socks5_udp_relay_address_in_a_blocked_network_is_refused(hub, blocked_udp):
    liar = _Socks5UdpLiar(blocked_udp.address)
    try:
        relay = hub.start(Socks5(ProxySettings("socks5", "127.0.0.1", liar.port),
                                 _blocking_options()), RelayLimits(allow_udp=True))
        control, code, udp_port = udp_associate(relay.port)
        with control, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            if code == 0:  # the old code: a datagram would go to the blocked address
                client.sendto(udp.pack("127.0.0.1", 9, b"leak"), ("127.0.0.1", udp_port))
                time.sleep(0.5)
        assert code == 0x02  # not allowed by ruleset
        assert relay.stats.last_failure.kind == "blocked"
        assert "UDP relay address" in relay.stats.last_failure.message
    finally:
        liar.stop()
    assert blocked_udp.received() == []


def test_an_https_proxy_is_dialled_at_the_address_checked(tinyproxy, tls_front, origin):
    """DNS rebinding: a resolver that answers 127.0.0.1 for localhost once, then an
    address in a blocked network. The connection goes to the address checked, and TLS
    still verifies the proxy's name (its certificate is for localhost)."""
    upstream = tinyproxy("bob", "secret")
    front = tls_front(upstream.port)
    trap = socket.create_server(("127.66.0.1", 0))  # where a second lookup points
    trap.setblocking(False)

    class RebindingLoop(asyncio.SelectorEventLoop):
        lookups = 0

        async def getaddrinfo(self, host, port, **kwargs):
            if host == "localhost":
                RebindingLoop.lookups += 1
                host = "127.0.0.1" if RebindingLoop.lookups == 1 else "127.66.0.1"
            return await super().getaddrinfo(host, port, **kwargs)

    async def fetch():
        proxy = Https(ProxySettings("https", "localhost", front.port, "bob", "secret"),
                      _blocking_options(ca_file=front.ca_file))
        reader, writer = await proxy.open_connection("127.0.0.1", origin.port)
        writer.write(b"GET / HTTP/1.0\r\nHost: origin\r\n\r\n")
        answer = await reader.read()
        writer.close()
        return answer

    try:
        with asyncio.Runner(loop_factory=RebindingLoop) as runner:
            assert runner.run(fetch()).endswith(b"hello from origin")
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        trap.close()
    assert RebindingLoop.lookups == 1 and upstream.connects() == 1


# ----- a window relay stays private whatever the data dir's path --------------------

def test_a_deep_data_dir_keeps_a_window_relay_private(tmp_path, origin):
    """Where the data dir's path was too long for a Unix socket, a window's relay was
    open TCP (anyone local could use its proxy): its socket now goes in a 0700 folder
    of ours in the temp dir, removed when the relay stops (or fails to start)."""
    import os
    import stat
    from pathlib import Path

    from browserfarm.agent.relays import WindowRelays
    from browserfarm.datadir import DataDir
    from browserfarm.errors import InvalidInput
    from browserfarm.plugins import load_plugins
    data = DataDir(tmp_path / ("deep" * 30))
    relays = WindowRelays(load_plugins(), FAST)
    try:
        relay = relays.start(ProxySettings("direct"), allow_udp=False,
                             path=data.prepare(data.relay_socket("window-uuid")))
        folder = Path(relay.path).parent
        assert not folder.is_relative_to(tmp_path) and folder.is_dir()
        info = folder.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
        with socket.socket(socket.AF_UNIX) as client:  # the browser's way in
            client.connect(relay.path)
            client.sendall(b"\x05\x01\x00")
            assert client.recv(2) == b"\x05\x00"
        assert curl(relay.port, origin.url + "/").returncode != 0  # no login: refused
        assert subprocess.run(["curl", "-sS", "--max-time", "20", "-x", relay.url.replace(
            "socks5://", "socks5h://"), origin.url + "/"],
            capture_output=True).stdout == b"hello from origin"
        relays.stop(relay)
        assert not folder.exists()
        unknown = data.relay_socket("another")
        with pytest.raises(InvalidInput):
            relays.start(ProxySettings("no-such-type"), allow_udp=False,
                         path=data.prepare(unknown))
        assert not unknown.parent.exists()
    finally:
        relays.close()
