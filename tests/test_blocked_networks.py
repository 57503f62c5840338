"""The blocked networks (issue 12, item 4): where the server connects on a user's behalf
(extraction and refresh URLs, IP-check services, proxies it checks) it never reaches
an address in a blocked network. A literal address is refused when saved (code 211
naming the field); a name is checked after it resolves, when the connection is made,
and every redirect hop is checked (failure kind ``blocked``).

Never a real link-local or private address: 127.66.0.0/16 plays the blocked network
(BROWSERFARM_BLOCKED_NETWORKS), with a real listener on 127.66.0.1 that must see no
connection. Names that resolve into it: NAME, which the fixture ``name_in_blocked``
makes this process's resolver answer with 127.66.0.1 (as an /etc/hosts line would;
every spelling of the address itself is a literal, refused when saved), and
"localhost" when 127.0.0.0/8 is blocked."""
from __future__ import annotations

import os
import socket
import socketserver
import threading

import pytest

from browserfarm.app import create_app
from browserfarm.net.fetch import FetchBlocked, fetch
from browserfarm.net.policy import NetworkPolicy
from browserfarm.services.accounts import create_account
from tests.conftest import Caller, in_db, make_farm
from tests.servers import HTTPService

BLOCKED = "127.66.0.0/16"
TARGET = "127.66.0.1"
NAME = "in-blocked.test"  # resolves to 127.66.0.1 (fixture name_in_blocked)


@pytest.fixture(autouse=True)
def name_in_blocked(monkeypatch):
    """NAME resolves to TARGET in this process (the API runs in it), like a hosts
    entry; other names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(TARGET if host in (NAME, NAME.encode()) else host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Listener(socketserver.ThreadingTCPServer):
    """Any TCP service on 127.66.0.1: counts the connections it gets (none, here) and
    answers like an extraction API, in case one came."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.accepted = 0

        class Answer(socketserver.BaseRequestHandler):
            def handle(handler):
                self.accepted += 1
                handler.request.sendall(b"HTTP/1.0 200 OK\r\n\r\n127.0.0.1:1080\n")

        super().__init__((TARGET, 0), Answer)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class Redirector(HTTPService):
    """An ordinary server (allowed) whose ``/to?<url>`` redirects to ``url``."""

    def respond(self, h):
        h.send_response(302)
        h.send_header("Location", h.path.split("?", 1)[1])
        h.send_header("Content-Length", "0")
        h.end_headers()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.stop()


@pytest.fixture
def redirector():
    server = Redirector()
    yield server
    server.stop()


def _api(tmp_path, sqlite_url, **settings):
    farm = make_farm(tmp_path / "data", sqlite_url, proxy_timeout=2.0, **settings)
    caller = Caller(create_app(farm=farm).test_client(),
                    in_db(farm, lambda: create_account(farm, "acme")).token)
    caller.farm = farm
    return caller


@pytest.fixture
def api(tmp_path, sqlite_url):
    """An owner of a farm that blocks 127.66.0.0/16 but allows 127.66.0.2."""
    caller = _api(tmp_path, sqlite_url, blocked_networks=BLOCKED,
                  allowed_networks="127.66.0.2/32")
    yield caller
    caller.farm.close()


def refused(answer, field):
    assert (answer.code, answer.data["field"]) == (211, field), answer.body
    assert "blocked network" in answer.body["msg"]
    return answer


# ----- when saved: literal addresses ------------------------------------------------

def test_a_literal_blocked_address_is_refused_in_every_field_that_names_one(api, listener):
    url = f"http://{TARGET}:{listener.port}/get?key=secret"
    refused(api("/browser/update", {"proxyMethod": 2, "proxyType": "socks5",
                                    "host": TARGET, "port": 1080}), "host")
    refused(api("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": url}), "dynamicIpUrl")
    refused(api("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": "http://example.test/",
                                    "refreshProxyUrl": url}), "refreshProxyUrl")
    # The built-in ranges need no setting: cloud metadata, link-local (any spelling).
    for host in ("169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "100.100.100.200"):
        refused(api("/browser/update", {"proxyType": "http", "host": host, "port": 80}),
                "host")
    refused(api("/browser/update", {"proxyMethod": 3,
                                    "dynamicIpUrl": "http://[::ffff:127.66.0.9]/"}),
            "dynamicIpUrl")
    refused(api("/proxy/add", {"proxyType": "socks5", "host": TARGET, "port": 1080}), "host")
    # Every spelling the C library reads as the address (nothing is contacted).
    for host in ("0x7f420001", "2135031809", "0177.0102.0.1", "0x7f.0x42.1", "127.66.1",
                 "127.66.0.1.", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376",
                 "169.254.169.254.", "0xA9.0xFE.0xA9.0xFE"):
        refused(api("/proxy/add", {"proxyType": "socks5", "host": host, "port": 1080}),
                "host")
        refused(api("/browser/update", {"proxyMethod": 3,
                                        "dynamicIpUrl": f"http://{host}/get"}),
                "dynamicIpUrl")
    refused(api("/proxy/check", {"proxyType": "socks5", "host": TARGET, "port": 1080}),
            "host")
    # An allowed exception, and names (checked when they resolve), are saved.
    assert api("/browser/update", {"proxyType": "socks5", "host": "127.66.0.2",
                                   "port": 1080}).code == 0
    assert api("/proxy/add", {"proxyType": "socks5", "host": NAME,
                              "port": 1080}).code == 0
    assert listener.accepted == 0


def test_edits_batches_and_imports_are_refused_whole(api):
    first = api("/browser/update", {"name": "a"}).data
    second = api("/browser/update", {"name": "b"}).data
    refused(api("/browser/update", {"id": first["id"], "proxyType": "socks5",
                                    "host": TARGET, "port": 1080}), "host")
    # A partial update takes no proxy fields at all.
    assert api("/browser/update/partial", {"ids": [first["id"]], "host": TARGET}).code == 211
    refused(api("/browser/proxy/update", {"ids": [first["id"], second["id"]],
                                          "proxyMethod": 3,
                                          "dynamicIpUrl": f"http://{TARGET}/"}),
            "dynamicIpUrl")
    for window in (first, second):
        detail = api("/browser/detail", {"id": window["id"]}).data
        assert (detail["proxyType"], detail["host"], detail["dynamicIpUrl"]) == (
            "direct", "", "")
    pooled = api("/proxy/add", {"proxyType": "socks5", "host": "127.0.0.1",
                                "port": 1080}).data
    refused(api("/proxy/update", {"id": pooled["id"], "host": TARGET}), "host")
    assert api("/proxy/detail", {"id": pooled["id"]}).data["host"] == "127.0.0.1"
    answer = api("/proxy/import", {"text": f"127.0.0.1:1081\n{TARGET}:1080\n"})
    assert answer.code == 211 and [e["line"] for e in answer.data["errors"]] == [2]
    assert "blocked network" in answer.data["errors"][0]["error"]
    assert api("/proxy/list", {}).data["totalNum"] == 1


# ----- at connect time: names, redirects, proxies -----------------------------------

def test_a_name_that_resolves_into_a_blocked_network_is_not_fetched(api, listener):
    window = api("/browser/update", {
        "proxyMethod": 3, "dynamicIpUrl": f"http://{NAME}:{listener.port}/get"}).data
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert (result["reachable"], result["kind"]) == (False, "blocked"), result
    assert TARGET in result["message"] and "key" not in result["message"]
    refresh = api("/browser/update", {
        "proxyMethod": 3, "dynamicIpUrl": f"http://{NAME}:{listener.port}/get",
        "refreshProxyUrl": f"http://{NAME}:{listener.port}/refresh"}).data
    assert api("/browser/proxy/refresh", {"id": refresh["id"]}).data["kind"] == "blocked"
    assert listener.accepted == 0


def test_every_redirect_hop_is_checked(api, listener, redirector):
    hop = f"{redirector.url}/to?http://{TARGET}:{listener.port}/get"
    window = api("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": hop}).data
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert (result["reachable"], result["kind"]) == (False, "blocked"), result
    # Twice removed, and through a name.
    twice = f"{redirector.url}/to?{redirector.url}/to?http://{NAME}:{listener.port}/"
    with pytest.raises(FetchBlocked):
        fetch(twice, timeout=5, max_bytes=100, policy=NetworkPolicy.from_settings(
            api.farm.settings))
    assert listener.accepted == 0 and len(redirector.requests) == 3


@pytest.mark.parametrize("proxy_type", ["socks5", "http", "https", "ssh"])
def test_a_proxy_whose_name_resolves_into_a_blocked_network_is_not_dialled(
        api, listener, proxy_type):
    answer = api("/proxy/check", {"proxyType": proxy_type, "host": NAME,
                                  "port": listener.port, "proxyUserName": "u",
                                  "proxyPassword": "p"})
    assert (answer.data["reachable"], answer.data["kind"]) == (False, "blocked"), answer.body
    assert TARGET in answer.data["message"]
    pooled = api("/proxy/add", {"proxyType": proxy_type, "host": NAME,
                                "port": listener.port, "proxyUserName": "u"}).data
    assert api("/proxy/check", {"id": pooled["id"]}).data["kind"] == "blocked"
    assert listener.accepted == 0


def test_an_extracted_proxy_in_a_blocked_network_is_not_dialled(api, listener,
                                                                 extraction_api):
    extraction_api.answer = (200, "text/plain", f"{TARGET}:{listener.port}\n".encode())
    window = api("/browser/update", {"proxyMethod": 3, "proxyType": "socks5",
                                     "dynamicIpUrl": extraction_api.url + "/get"}).data
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert (result["reachable"], result["kind"]) == (False, "blocked"), result
    assert listener.accepted == 0


def test_the_ip_check_service_of_a_direct_check_is_checked(tmp_path, sqlite_url, listener):
    api = _api(tmp_path, sqlite_url, blocked_networks=BLOCKED,
               ip_check_urls={"ip-api": f"http://{NAME}:{listener.port}/json/"})
    try:
        result = api("/proxy/check", {"proxyType": "direct"}).data
        assert (result["reachable"], result["kind"]) == (False, "blocked"), result
    finally:
        api.farm.close()
    assert listener.accepted == 0


def test_localhost_is_blocked_with_loopback_except_where_allowed(tmp_path, extraction_api):
    """A name the system resolves (here to 127.0.0.1): blocked with 127.0.0.0/8, and
    reached again once its address is an allowed exception."""
    url = f"http://localhost:{extraction_api.port}/get"
    extraction_api.answer = (200, "text/plain", b"127.0.0.1:1\n")
    # Two farms: each its own SQLite file in its data dir.
    blocked = _api(tmp_path / "a", "", blocked_networks="127.0.0.0/8,::1/128")
    try:
        window = blocked("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": url}).data
        assert blocked("/browser/proxy/check", {"id": window["id"]}).data["kind"] == "blocked"
    finally:
        blocked.farm.close()
    assert extraction_api.requests == []
    allowed = _api(tmp_path / "b", "", blocked_networks="127.0.0.0/8,::1/128",
                   allowed_networks="127.0.0.1/32,::1/128")
    try:
        window = allowed("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": url}).data
        result = allowed("/browser/proxy/check", {"id": window["id"]}).data
        assert result["kind"] == "connect_refused", result  # extracted, then dialled
    finally:
        allowed.farm.close()
    assert len(extraction_api.requests) == 1


def test_without_settings_only_the_built_in_ranges_are_blocked():
    policy = NetworkPolicy()
    assert policy.allows("127.66.0.1") and policy.allows("10.0.0.1")
    assert not policy.allows("169.254.169.254") and not policy.allows("fd00:ec2::254")


def test_udp_of_a_direct_window_keeps_to_the_deployments_blocked_networks(api):
    """A window relay carrying UDP (direct proxy, enableSocks5Udp) drops datagrams to
    BROWSERFARM_BLOCKED_NETWORKS and lets the allowed exception (127.66.0.2) through."""
    from browserfarm.net import udp
    from browserfarm.net.proxy import ProxyOptions, ProxySettings
    from browserfarm.net.relay import RelayHub, RelayLimits
    from browserfarm_plugins.proxy_types import Direct

    blocked, allowed = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in "ab")
    blocked.bind((TARGET, 0))
    allowed.bind(("127.66.0.2", 0))
    hub = RelayHub()
    try:
        relay = hub.start(Direct(ProxySettings("direct"),
                                 ProxyOptions.from_settings(api.farm.settings)),
                          RelayLimits(allow_udp=True))
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as control, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            control.sendall(b"\x05\x01\x00")
            assert control.recv(2) == b"\x05\x00"
            control.sendall(b"\x05\x03\x00\x01" + bytes(6))
            udp_port = int.from_bytes(control.recv(10)[8:10], "big")
            for target in (blocked, allowed):
                client.sendto(udp.pack(*target.getsockname(), b"hello"),
                              ("127.0.0.1", udp_port))
            allowed.settimeout(5)
            assert allowed.recv(100) == b"hello"
        blocked.setblocking(False)
        with pytest.raises(BlockingIOError):
            blocked.recv(100)
        assert relay.stats.udp_blocked == 1
    finally:
        hub.close()
        blocked.close()
        allowed.close()


# ----- the farm's own ports, IPv6 spellings, malformed URLs (review of issue 12) ------

def test_a_proxy_at_a_farm_relay_port_is_not_dialled(api, microsocks, monkeypatch):
    """Another account's window relay (open TCP on 127.0.0.1, through its paid proxy)
    is not a proxy anyone may use: not in /proxy/check, not as a window's or a pool's
    proxy. Nor do checks scan the farm's other ports."""
    from browserfarm.net.proxy import ProxySettings
    from plugins.proxy_types import Direct
    relay = api.farm.relays.start(Direct(ProxySettings("direct"), api.farm.proxy_options))
    other = Caller(api.client, in_db(api.farm, lambda: create_account(api.farm, "b")).token)
    proxy = {"proxyType": "socks5", "host": "127.0.0.1", "port": relay.port}
    answer = other("/proxy/check", proxy).data
    assert (answer["reachable"], answer["kind"]) == (False, "blocked"), answer
    assert "service of the farm" in answer["message"]
    window = other("/browser/update", proxy).data
    assert other("/browser/proxy/check", {"id": window["id"]}).data["kind"] == "blocked"
    pooled = other("/proxy/add", proxy).data
    assert other("/proxy/check", {"id": pooled["id"]}).data["kind"] == "blocked"
    # As a name, and spelt IPv4-mapped.
    for host in ("localhost", "::ffff:127.0.0.1"):
        assert other("/proxy/check", {**proxy, "host": host}).data["kind"] == "blocked"
    assert relay.stats.accepted == 0
    # The Local API's port (a setting: nothing need listen there).
    port = api.farm.settings.local_port
    assert other("/proxy/check", {**proxy, "port": port}).data["kind"] == "blocked"
    # A relay of another process under `browserfarm up` (here: a child of this one).
    socks = microsocks()
    assert other("/proxy/check", {**proxy, "port": socks.port}).data["kind"] != "blocked"
    monkeypatch.setenv("BROWSERFARM_FARM_PID", str(os.getpid()))
    assert other("/proxy/check", {**proxy, "port": socks.port}).data["kind"] == "blocked"


def test_a_new_farm_port_is_refused_at_once():
    """A port opened after the farm's ports were looked up (a browser's chromedriver
    just started) is looked up again, not allowed for the next second."""
    import asyncio
    import subprocess
    import sys

    from browserfarm.net.policy import Blocked, FarmPorts
    from browserfarm.net.relay import Guard
    guard = Guard(NetworkPolicy(), FarmPorts(tuple, os.getpid()))
    assert asyncio.run(guard.addresses("127.0.0.1", 1)) == ["127.0.0.1"]
    child = subprocess.Popen([sys.executable, "-c",
                              "import socket, sys, time; s = socket.socket(); "
                              "s.bind(('127.0.0.1', 0)); s.listen(); "
                              "print(s.getsockname()[1], flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        with pytest.raises(Blocked, match="service of the farm"):
            asyncio.run(guard.addresses("127.0.0.1", port))
    finally:
        child.kill()
        child.wait()


def test_an_allowed_exception_holds_for_farm_ports_in_every_spelling():
    """The Guard asks the policy (one test): an IPv4 exception covers ::ffff:127.0.0.1."""
    import asyncio

    from browserfarm.net.policy import parse_networks
    from browserfarm.net.relay import Guard
    guard = Guard(NetworkPolicy(allowed=parse_networks("127.0.0.1/32")), lambda: {4444})
    for host in ("127.0.0.1", "::ffff:127.0.0.1"):
        assert asyncio.run(guard.addresses(host, 4444))


@pytest.mark.parametrize("host", [
    "64:ff9b::127.66.0.1",  # NAT64
    "2002:7f42:1::1",  # 6to4 of 127.66.0.1
    "::127.66.0.1",  # IPv4-compatible
    "2001:0:4136:e378:8000:63bf:80bd:fffe",  # Teredo, client 127.66.0.1
])
def test_ipv6_addresses_that_embed_a_blocked_ipv4_address_are_refused(api, host):
    policy = NetworkPolicy.from_settings(api.farm.settings)
    assert not policy.allows(host)
    refused(api("/browser/update", {"proxyType": "socks5", "host": host, "port": 1080}),
            "host")
    refused(api("/browser/update", {"proxyMethod": 3, "dynamicIpUrl": f"http://[{host}]/"}),
            "dynamicIpUrl")


def test_ipv6_forms_of_allowed_addresses_stay_allowed():
    policy = NetworkPolicy()
    for host in ("::1", "::", "2001:db8::1", "64:ff9b::8.8.8.8", "2002:808:808::1"):
        assert policy.allows(host), host
    assert not policy.allows("64:ff9b::169.254.169.254")
    assert not policy.allows("2002:a9fe:a9fe::1")


@pytest.mark.parametrize("field", ["dynamicIpUrl", "refreshProxyUrl"])
def test_a_malformed_url_is_invalid_input_naming_its_field(api, field):
    """An unclosed bracket (urlsplit raises): 211, whatever the proxyMethod."""
    window = api("/browser/update", {"name": "a"}).data
    for method in (None, 2, 3):
        fields = {field: "http://[::1"}
        if method is not None:
            fields["proxyMethod"] = method
        if method == 3 and field == "refreshProxyUrl":
            fields["dynamicIpUrl"] = "http://example.test/"
        answers = [api("/browser/update", fields)]
        if method is not None:  # /browser/proxy/update requires it
            answers.append(api("/browser/proxy/update", {"ids": [window["id"]], **fields}))
        for answer in answers:
            assert (answer.code, answer.data.get("field")) == (211, field), answer.body
