"""Built-in proxy types: direct, http, https (TLS to the proxy), socks5 (RFC 1929
username/password), ssh (asyncssh; password or private key)."""
from __future__ import annotations

import asyncio

from browserfarm.pluginapi import (SOCKS5_CONNECT, DirectUdp, InvalidInput, ProxyFailure,
                                   ProxyType, Socks5Udp, failure_from, hookimpl,
                                   socks5_greet, socks5_request)


class Direct(ProxyType):
    name = "direct"
    needs_address = False
    supports_udp = True

    async def open_connection(self, host, port):
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                return await self.open_direct(host, port)
        except Exception as exc:  # noqa: BLE001 - every failure gets its kind
            raise failure_from(exc) from exc

    async def open_udp(self):
        return await DirectUdp(self.options.network_policy).start()


class _PythonSocks(ProxyType):
    """Types spoken by python-socks: HTTP CONNECT and SOCKS5, plain or over TLS."""

    socks_kind = ""
    over_tls = False

    async def open_connection(self, host, port):
        from python_socks import ProxyError, ProxyType as Kind
        from python_socks.async_.asyncio.v2 import Proxy

        timeout = self.options.connect_timeout
        settings = self.settings
        try:
            async with asyncio.timeout(timeout):  # the lookup and the handshake
                # We dial the proxy (an address the policy checked, never its name
                # again: DNS rebinding) and start TLS naming it, for SNI and the
                # certificate; python-socks speaks the protocol over that connection.
                tls = {"ssl": self.options.tls_context(), "server_hostname": settings.host
                       } if self.over_tls else {}
                reader, writer = await self.open_direct(settings.host, settings.port, **tls)
                proxy = Proxy(getattr(Kind, self.socks_kind), settings.host, settings.port,
                              username=settings.username or None,
                              password=settings.password or None, rdns=True,
                              forward=_Dialled(reader, writer))
                stream = await proxy.connect(host, port, timeout=timeout)
        except ProxyError as exc:
            raise _classified(exc) from exc
        except Exception as exc:  # noqa: BLE001
            raise failure_from(exc) from exc
        return stream.reader, stream.writer

    async def handshake(self):
        # HTTP has no greeting: a CONNECT to the proxy's own address, whose answer
        # (any HTTP status but 407) shows it speaks HTTP and takes the credentials.
        try:
            _, writer = await self.open_connection(self.settings.host, self.settings.port)
            writer.close()
        except ProxyFailure as failure:
            status = getattr(failure.__cause__, "error_code", None)
            if not isinstance(status, int) or status in (401, 407):
                raise


class _Dialled:
    """python-socks' ``forward`` (normally a proxy to reach the proxy through): hands
    it the connection already made, which it then speaks its protocol over. The
    stream class is python-socks' own (a private module: checked with 3.2)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def connect(self, dest_host, dest_port, **_):
        from python_socks.async_.asyncio.v2._stream import AsyncioSocketStream
        return AsyncioSocketStream(asyncio.get_running_loop(), self.reader, self.writer)


def _classified(exc) -> ProxyFailure:
    """python-socks reports the proxy's answer: its code tells what happened."""
    code, text = getattr(exc, "error_code", None), str(exc)
    if code in (401, 407) or "auth" in text.lower():
        return ProxyFailure("auth_failed", text)
    if code in (4, 3):  # SOCKS5: host / network unreachable
        return ProxyFailure("dns_failed", text)
    if code in (5, 502, 503):  # SOCKS5 refused; HTTP bad gateway / unavailable
        return ProxyFailure("connect_refused", text)
    if code == 6 or code == 504:
        return ProxyFailure("timeout", text)
    return failure_from(exc)


class Http(_PythonSocks):
    name = "http"
    socks_kind = "HTTP"


class Https(_PythonSocks):
    """An HTTP proxy reached over TLS (its certificate is verified)."""
    name = "https"
    socks_kind = "HTTP"
    over_tls = True


class Socks5(ProxyType):
    name = "socks5"
    supports_udp = True  # when the proxy itself does: open_udp() says if it doesn't

    async def open_connection(self, host, port):
        writer = None
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                reader, writer = await self.open_direct(
                    self.settings.host, self.settings.port, limit=256 * 1024)
                await socks5_request(reader, writer, SOCKS5_CONNECT, host, port,
                                     self.settings.username, self.settings.password)
                return reader, writer
        except Exception as exc:  # noqa: BLE001 - every failure gets its kind
            if writer is not None:
                writer.close()
            raise failure_from(exc) from exc

    async def handshake(self):
        writer = None
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                reader, writer = await self.open_direct(self.settings.host,
                                                        self.settings.port)
                await socks5_greet(reader, writer, self.settings.username,
                                   self.settings.password)
        except Exception as exc:  # noqa: BLE001 - every failure gets its kind
            raise failure_from(exc) from exc
        finally:
            if writer is not None:
                writer.close()

    async def open_udp(self):
        settings = self.settings
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                address = await self.checked_address(settings.host, settings.port)
        except Exception as exc:  # noqa: BLE001
            raise failure_from(exc) from exc
        return await Socks5Udp(address, settings.port, settings.username,
                               settings.password, self.options.connect_timeout,
                               self.options.network_policy).start()

    @classmethod
    def validate(cls, settings):
        super().validate(settings)
        # RFC 1929 carries each in one length byte.
        if len(settings.username.encode()) > 255:
            raise InvalidInput("proxyUserName", "must be at most 255 bytes for socks5")
        if len(settings.password.encode()) > 255:
            raise InvalidInput("proxyPassword", "must be at most 255 bytes for socks5")
        if settings.password and not settings.username:
            raise InvalidInput("proxyUserName", "is required when proxyPassword is set")


class Ssh(ProxyType):
    """Streams as SSH direct-tcpip channels over one SSH connection per window.

    ``proxyPassword`` is the password, or a private key in OpenSSH/PEM form. Host
    keys follow the deployment's policy: accept-new (trust on first use, kept in the
    data dir), strict (must already be known), insecure (any)."""
    name = "ssh"

    def __init__(self, settings, options=None):
        super().__init__(settings, options)
        self._connection = None
        self._lock = asyncio.Lock()

    @classmethod
    def unavailable_reason(cls):
        try:
            import asyncssh  # noqa: F401
        except ImportError as exc:
            return f"asyncssh is not installed ({exc})"
        return None

    @classmethod
    def validate(cls, settings):
        super().validate(settings)
        if not settings.username:
            raise InvalidInput("proxyUserName", "is required for proxyType ssh")

    async def open_connection(self, host, port):
        try:
            # One deadline for the key, the SSH handshake and the channel.
            async with asyncio.timeout(self.options.connect_timeout):
                connection = await self._connect()
                return await connection.open_connection(host, port)
        except ProxyFailure:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _ssh_failure(exc) from exc

    async def handshake(self):
        # The SSH connection itself: host key, protocol and login.
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                await self._connect()
        except ProxyFailure:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _ssh_failure(exc) from exc

    async def _connect(self):
        import asyncssh
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                return self._connection
            secret = self.settings.password
            key = secret if secret.lstrip().startswith("-----BEGIN") else None
            known_hosts = await self._known_hosts()
            self._connection = await asyncio.wait_for(asyncssh.connect(
                self.settings.host, self.settings.port, username=self.settings.username,
                sock=await self.direct_socket(self.settings.host, self.settings.port),
                password=None if key else (secret or None),
                client_keys=[asyncssh.import_private_key(key)] if key else (),
                known_hosts=known_hosts,
                keepalive_interval=30, agent_path=None,
                connect_timeout=self.options.connect_timeout),
                self.options.connect_timeout)
            return self._connection

    async def _known_hosts(self):
        """What asyncssh checks the server's key against, per the policy."""
        policy, path = self.options.ssh_host_key_policy, self.options.ssh_known_hosts
        if policy == "insecure":
            return None
        if path and path.exists() and self._listed(path):
            return str(path)  # a changed key fails here, whatever the policy
        if policy == "strict":
            raise ProxyFailure("auth_failed", f"the SSH host key of {self._host_pattern()} "
                                              "is not known (host key policy: strict)")
        # accept-new: learn the key now, trust it from then on.
        import asyncssh
        key = await asyncio.wait_for(asyncssh.get_server_host_key(
            self.settings.host, self.settings.port,
            sock=await self.direct_socket(self.settings.host, self.settings.port)),
            self.options.connect_timeout)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as known:
                known.write(f"{self._host_pattern()} {key.export_public_key().decode()}")
        return asyncssh.import_known_hosts(
            f"{self._host_pattern()} {key.export_public_key().decode()}")

    def _host_pattern(self) -> str:
        host, port = self.settings.host, self.settings.port
        return host if port == 22 else f"[{host}]:{port}"

    def _listed(self, path) -> bool:
        pattern = self._host_pattern()
        return any(line.split(" ", 1)[0] == pattern for line in path.read_text().splitlines())

    async def aclose(self):
        if self._connection is not None:
            self._connection.close()
            await self._connection.wait_closed()
            self._connection = None


def _ssh_failure(exc) -> ProxyFailure:
    import asyncssh
    if isinstance(exc, asyncssh.PermissionDenied):
        return ProxyFailure("auth_failed", str(exc) or "SSH authentication failed")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return ProxyFailure("auth_failed", f"SSH host key not trusted: {exc}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        kind = "dns_failed" if "resolve" in str(exc).lower() else "connect_refused"
        return ProxyFailure(kind, exc.reason or str(exc))
    if isinstance(exc, (asyncssh.ProtocolError, asyncssh.ConnectionLost)):
        return ProxyFailure("bad_response", str(exc))
    return failure_from(exc)


@hookimpl
def browserfarm_register_proxy_types(register):
    for cls in (Direct, Http, Https, Socks5, Ssh):
        register(cls)
