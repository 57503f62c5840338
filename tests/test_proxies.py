"""Proxies through the API: checks, the pool, extracted proxies, against real proxies
and local stand-ins for the IP-check services and extraction APIs."""
import pytest

from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import Caller, in_db, make_farm
from tests.servers import ConnectionServer, Dribbler, open_fds


@pytest.fixture
def api(tmp_path, sqlite_url, ip_services):
    """An owner calling a farm whose IP-check services are the local stand-ins."""
    farm = make_farm(tmp_path / "data", sqlite_url, ip_check_urls=ip_services.base_urls,
                     proxy_timeout=2.0)
    caller = Caller(create_app(farm=farm).test_client(),
                    in_db(farm, lambda: create_account(farm, "acme")).token)
    caller.farm = farm
    yield caller
    farm.close()


def socks(server, **extra):
    return {"proxyType": "socks5", "host": server.host, "port": server.port,
            "proxyUserName": server.user or "", "proxyPassword": server.password or "",
            **extra}


# ----- checks -----------------------------------------------------------------------

@pytest.mark.parametrize("service", ["ip-api", "ipinfo", "ipapi.co"])
def test_check_reports_exit_ip_and_geo_from_each_service(api, microsocks, ip_services,
                                                         service):
    upstream = microsocks("u", "p")
    answer = api("/proxy/check", {**socks(upstream), "ipCheckService": service})
    assert answer.code == 0, answer.body
    result = answer.data
    assert result["reachable"] is True and result["kind"] == ""
    assert (result["ip"], result["countryCode"], result["city"], result["timezone"]) == (
        "127.0.0.1", "DE", "Berlin", "Europe/Berlin")
    assert result["latitude"] == pytest.approx(52.52)
    assert result["latencyMs"] >= 0 and result["service"] == service
    assert upstream.connections() == 1 and len(ip_services.requests) == 1
    assert "p@" not in result["proxy"] and "***" in result["proxy"]


def test_check_through_http_and_ssh_proxies(api, tinyproxy, sshd):
    http = tinyproxy("bob", "pw")
    assert api("/proxy/check", {"proxyType": "http", "host": http.host, "port": http.port,
                                "proxyUserName": "bob", "proxyPassword": "pw"}
               ).data["reachable"] is True
    assert http.connects() == 1
    ssh = sshd()
    answer = api("/proxy/check", {"proxyType": "ssh", "host": ssh.host, "port": ssh.port,
                                  "proxyUserName": ssh.user, "proxyPassword": ssh.password})
    assert answer.data["reachable"] is True, answer.data
    assert ssh.forwards() == 1


def test_check_failures_have_a_kind_and_the_upstream_message(api, microsocks, misbehaving,
                                                             ip_services):
    upstream = microsocks("u", "right")
    wrong = api("/proxy/check", {**socks(upstream), "proxyPassword": "wrong"}).data
    assert (wrong["reachable"], wrong["kind"]) == (False, "auth_failed")
    assert wrong["message"] and wrong["latencyMs"] is None
    silent = misbehaving("silent")
    assert api("/proxy/check", {"proxyType": "socks5", "host": silent.host,
                                "port": silent.port}).data["kind"] == "timeout"
    closer = misbehaving("closer")
    assert api("/proxy/check", {"proxyType": "socks5", "host": closer.host,
                                "port": closer.port}).data["kind"] == "bad_response"
    ip_services.mode = "garbage"
    html = api("/proxy/check", socks(microsocks())).data
    assert (html["kind"], html["reachable"]) == ("bad_response", False)
    ip_services.mode = "fail"
    assert "reserved range" in api("/proxy/check", socks(microsocks())).data["message"]


def test_check_of_a_closed_port_is_connect_refused(api):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = api("/proxy/check", {"proxyType": "socks5", "host": "127.0.0.1",
                                  "port": port}).data
    assert result["kind"] == "connect_refused"


def test_checks_leave_no_socket_or_relay_behind(api, microsocks):
    upstream = microsocks()
    api("/proxy/check", socks(upstream))  # warm: the relay loop starts once
    before = open_fds()
    for _ in range(10):
        assert api("/proxy/check", socks(upstream)).data["reachable"] is True
    assert open_fds() <= before + 1
    assert api.farm.relays.call(_task_count()) == 0


async def _task_count():
    import asyncio
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])


def test_check_needs_permission_and_valid_fields(api, tmp_path):
    farm = api.farm
    from browserfarm.services.accounts import create_token
    raw, _ = in_db(farm, lambda: create_token(farm, 1, "t", ["proxy:list"]))
    assert Caller(api.client, raw)("/proxy/check", {"proxyType": "direct"}).code == 403
    assert api("/proxy/check", {"proxyType": "socks5"}).data["field"] == "host"
    assert api("/proxy/check", {"proxyType": "socks5", "host": "h", "port": 99999}
               ).data["field"] == "port"
    assert api("/proxy/check", {"proxyType": "direct", "ipCheckService": "x"}
               ).data["field"] == "ipCheckService"


# ----- the pool ---------------------------------------------------------------------

def test_pool_add_list_update_delete(api, microsocks):
    upstream = microsocks("u", "p")
    added = api("/proxy/add", {**socks(upstream), "remark": "first"}).data
    assert added["proxyPassword"] == "p" and added["lastCheck"] is None
    assert api("/proxy/add", socks(upstream)).data["field"] == "host"  # no duplicates
    listed = api("/proxy/list", {}).data
    assert listed["totalNum"] == 1 and listed["list"][0]["remark"] == "first"
    updated = api("/proxy/update", {"id": added["id"], "remark": "renamed",
                                    "proxyPassword": "new"}).data
    assert (updated["remark"], updated["proxyPassword"], updated["host"]) == (
        "renamed", "new", upstream.host)
    assert api("/proxy/delete", {"id": added["id"]}).data == {"id": added["id"],
                                                              "unbound": []}
    assert api("/proxy/detail", {"id": added["id"]}).code == 404


def test_pool_check_is_stored_on_the_proxy(api, microsocks):
    upstream = microsocks()
    added = api("/proxy/add", socks(upstream)).data
    result = api("/proxy/check", {"id": added["id"]}).data
    assert result["reachable"] is True and upstream.connections() == 1
    stored = api("/proxy/detail", {"id": added["id"]}).data["lastCheck"]
    assert stored["ip"] == "127.0.0.1" and stored["checkedAt"]


def test_import_reports_each_bad_line_and_imports_nothing_unless_asked(api):
    text = "\n".join(["10.0.0.1:1080", "not a proxy", "u:p@10.0.0.2:1080",
                      "http://10.0.0.3:3128", "10.0.0.4:99999", "10.0.0.1:1080", ""])
    refused = api("/proxy/import", {"text": text})
    assert refused.code == 211 and refused.data["field"] == "text"
    assert [e["line"] for e in refused.data["errors"]] == [2, 5, 6]
    assert api("/proxy/list", {}).data["totalNum"] == 0
    partial = api("/proxy/import", {"text": text, "partial": True}).data
    assert partial["imported"] == 3 and [e["line"] for e in partial["errors"]] == [2, 5, 6]
    types = sorted(p["proxyType"] for p in api("/proxy/list", {}).data["list"])
    assert types == ["http", "socks5", "socks5"]
    again = api("/proxy/import", {"text": "10.0.0.1:1080\n10.0.0.9:1", "partial": True}).data
    assert again["imported"] == 1 and again["errors"][0]["error"] == "already in the pool"


def test_import_format_user_pass_host_port(api):
    answer = api("/proxy/import", {"text": "bob:pw:10.0.0.1:1080",
                                   "format": "user:pass:host:port", "proxyType": "http"})
    assert answer.data["imported"] == 1
    proxy = api("/proxy/list", {}).data["list"][0]
    assert (proxy["proxyUserName"], proxy["host"], proxy["proxyType"]) == (
        "bob", "10.0.0.1", "http")


def test_windows_bind_pool_proxies_and_deleting_a_bound_one_is_refused(api, microsocks,
                                                                       ip_services):
    upstream = microsocks()
    proxy = api("/proxy/add", socks(upstream)).data["id"]
    window = api("/browser/update", {"proxyMethod": 4, "proxyId": proxy}).data
    assert window["proxyMethod"] == 4 and window["proxyId"] == proxy
    assert api("/browser/proxy/check", {"id": window["id"]}).data["reachable"] is True
    assert upstream.connections() == 1
    refused = api("/proxy/delete", {"id": proxy})
    assert refused.code == 211 and str(window["id"]) in refused.msg
    assert api("/proxy/delete", {"id": proxy, "unbind": True}).data["unbound"] == [
        window["id"]]
    after = api("/browser/detail", {"id": window["id"]}).data
    assert (after["proxyMethod"], after["proxyType"], after["proxyId"]) == (2, "direct", None)
    assert api("/browser/update", {"proxyMethod": 4, "proxyId": 424242}
               ).data["field"] == "proxyId"


def test_pool_is_scoped_to_the_account(api, tmp_path):
    farm = api.farm
    other = Caller(api.client, in_db(farm, lambda: create_account(farm, "other")).token)
    theirs = other("/proxy/add", {"proxyType": "socks5", "host": "10.0.0.1",
                                  "port": 1}).data["id"]
    for path in ("/proxy/detail", "/proxy/delete", "/proxy/check"):
        assert api(path, {"id": theirs}).code == 404
    assert api("/browser/update", {"proxyMethod": 4, "proxyId": theirs}).code == 211
    assert api("/proxy/list", {}).data["totalNum"] == 0


# ----- extracted proxies (proxyMethod 3) --------------------------------------------

def extracted_window(api, extraction_api, **extra):
    return api("/browser/update", {"proxyMethod": 3, "proxyType": "socks5",
                                   "dynamicIpUrl": extraction_api.url + "/get",
                                   "refreshProxyUrl": extraction_api.url + "/refresh",
                                   **extra}).data


def test_extracted_proxy_is_fetched_once_and_reused(api, microsocks, extraction_api):
    upstream = microsocks("u", "p")
    extraction_api.answer = (200, "application/json",
                             f'{{"code":0,"data":[{{"ip":"{upstream.host}","port":'
                             f'{upstream.port},"user":"u","pass":"p"}}]}}'.encode())
    window = extracted_window(api, extraction_api)
    for _ in range(2):
        assert api("/browser/proxy/check", {"id": window["id"]}).data["reachable"] is True
    gets = [r for r in extraction_api.requests if r[1] == "/get"]
    assert len(gets) == 1 and upstream.connections() == 2


def test_extracted_anew_on_every_use_when_asked(api, microsocks, extraction_api):
    upstream = microsocks()
    extraction_api.answer = (200, "text/plain", f"{upstream.host}:{upstream.port}\n".encode())
    window = extracted_window(api, extraction_api, isDynamicIpChangeIp=True)
    for _ in range(2):
        assert api("/browser/proxy/check", {"id": window["id"]}).data["reachable"] is True
    assert len([r for r in extraction_api.requests if r[1] == "/get"]) == 2


def test_refresh_calls_the_refresh_url_and_extracts_anew(api, microsocks, extraction_api):
    upstream = microsocks()
    extraction_api.answer = (200, "text/plain", f"{upstream.host}:{upstream.port}".encode())
    window = extracted_window(api, extraction_api)
    api("/browser/proxy/check", {"id": window["id"]})
    answer = api("/browser/proxy/refresh", {"uuid": window["uuid"]})
    assert answer.data["reachable"] is True
    assert extraction_api.refreshes == 1
    assert len([r for r in extraction_api.requests if r[1] == "/get"]) == 2


@pytest.mark.parametrize("answer, kind, words", [
    ((200, "text/html", b"<!DOCTYPE html><html>login</html>"), "extraction_failed", "HTML"),
    ((200, "text/plain", b""), "extraction_failed", "nothing"),
    ((200, "text/plain", b"no proxies left, try later"), "extraction_failed", "no proxy"),
    ((500, "text/plain", b"oops"), "extraction_failed", "HTTP 500"),
    ((200, "application/json", b'{"code": 1, "msg": "balance"'), "extraction_failed", "JSON"),
])
def test_extraction_failures_are_explained(api, extraction_api, answer, kind, words):
    extraction_api.answer = answer
    window = extracted_window(api, extraction_api)
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert (result["reachable"], result["kind"]) == (False, kind)
    assert words in result["message"]


def test_extraction_that_never_answers_times_out(api, extraction_api):
    window = api("/browser/update", {"proxyMethod": 3,
                                     "dynamicIpUrl": extraction_api.url + "/slow"}).data
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert result["kind"] == "timeout"


def test_window_check_shows_what_geo_matching_takes_from_the_ip(api, microsocks):
    upstream = microsocks()
    window = api("/browser/update", {**socks(upstream), "browserFingerPrint": {
        "isIpCreateTimeZone": True, "isIpCreateLanguage": True, "isIpCreatePosition": False,
        "timeZone": "Asia/Tokyo", "languages": "ja-JP"}}).data
    result = api("/browser/proxy/check", {"id": window["id"]}).data
    assert result["fingerprint"]["timeZone"] == "Europe/Berlin"
    assert result["fingerprint"]["languages"].startswith("de-DE")
    assert "lat" not in result["fingerprint"]


# ----- SSH host keys: per account ------------------------------------------------------

class Forwarder:
    """A TCP port on 127.0.0.1 that forwards each connection to ``target`` (a port),
    which the test may switch: one address, then another server behind it."""

    def __init__(self, target: int):
        self.target = target
        self._server = ConnectionServer(self._forward)
        self.port = self._server.port

    def _forward(self, client):
        import socket
        import threading
        with socket.create_connection(("127.0.0.1", self.target)) as upstream:
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(2)
                except OSError:
                    pass

    def stop(self):
        self._server.stop()


def test_ssh_host_keys_are_trusted_per_account(api, sshd):
    """The first account to check an SSH host does not decide its key for the others:
    an account that met another server at that address (its own, say) keeps its trust,
    and the others learn the key they meet themselves."""
    first, second = sshd(), sshd()
    forwarder = Forwarder(first.port)
    other = Caller(api.client, in_db(api.farm, lambda: create_account(api.farm, "other")).token)
    proxy = {"proxyType": "ssh", "host": "127.0.0.1", "port": forwarder.port,
             "proxyUserName": first.user, "proxyPassword": first.password}
    try:
        assert other("/proxy/check", proxy).data["reachable"] is True
        forwarder.target = second.port  # another key at the same address
        mine = api("/proxy/check", proxy).data
        assert mine["reachable"] is True, mine
        assert other("/proxy/check", proxy).data["kind"] == "auth_failed"  # changed key
    finally:
        forwarder.stop()
    data = api.farm.settings.data
    assert not data.ssh_known_hosts.exists()  # the agent's own, untouched by the server
    assert second.host_key_pub.split()[1] in data.account_ssh_known_hosts(1).read_text()


# ----- one deadline per proxy step ---------------------------------------------------

# What each "proxy" sends, and the failure: python-socks takes the first bytes of an
# HTTP proxy's answer for its whole status line, so that one fails at once.
DRIBBLES = {"socks5": (b"\x05\x00\x05\x00\x00\x03\xff" + b"a" * 60, "timeout"),
            "http": (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 60, "bad_response"),
            "ssh": (b"SSH-2.0-" + b"a" * 60, "timeout")}


@pytest.mark.parametrize("proxy_type", sorted(DRIBBLES))
def test_a_proxy_answering_a_byte_a_second_ends_by_the_deadline(api, proxy_type):
    """A check (proxy_timeout 2 s) and the proxy type's own connection end in time."""
    import asyncio
    import time

    from browserfarm.net.proxy import ProxyFailure, ProxyOptions, ProxySettings
    payload, kind = DRIBBLES[proxy_type]
    dribbler = Dribbler(payload)
    fields = {"proxyType": proxy_type, "host": dribbler.host, "port": dribbler.port,
              "proxyUserName": "u", "proxyPassword": "p"}
    try:
        started = time.monotonic()
        result = api("/proxy/check", fields).data
        assert (result["reachable"], result["kind"]) == (False, kind), result
        assert time.monotonic() - started < 5  # the deadline, and the relay's stop
        proxy = api.farm.plugins.proxy_types.get(proxy_type)(
            ProxySettings(proxy_type, dribbler.host, dribbler.port, "u", "p"),
            ProxyOptions(connect_timeout=2, ssh_host_key_policy="insecure"))
        started = time.monotonic()
        with pytest.raises(ProxyFailure) as failure:
            asyncio.run(proxy.open_connection("127.0.0.1", 9))
        assert failure.value.kind == kind and time.monotonic() - started < 3
    finally:
        dribbler.stop()
