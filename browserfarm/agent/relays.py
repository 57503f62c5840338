"""Each open window's relay, and what is asked through it before a browser starts.

A window's browser speaks SOCKS5 to a relay on 127.0.0.1, which goes on through the
window's proxy (of any type a plugin provides). Owns: the relay hub (one event-loop
thread for every relay of this agent) and the proxy options; and the check made
through a new relay: the exit IP that the fingerprint's time zone, language and
position follow (``isIpCreate*``), or else one probe of the proxy (the start page
reached through it, or the proxy's handshake), so that a proxy that is down, speaks
another protocol or refuses its credentials fails the open with its kind before any
browser starts."""
from __future__ import annotations

from urllib.parse import urlsplit

from browserfarm.datadir import release_relay_socket
from browserfarm.errors import FarmError, InvalidInput
from browserfarm.net.geo import follow_ip
from browserfarm.net.proxy import ProxyFailure, ProxyOptions, ProxySettings, failure_from
from browserfarm.net.relay import Relay, RelayHub, RelayLimits
from browserfarm.net.ipcheck import ask_through

IP_FLAGS = ("isIpCreateTimeZone", "isIpCreatePosition", "isIpCreateLanguage",
            "isIpCreateDisplayLanguage")


class WindowRelays:
    def __init__(self, plugins, options: ProxyOptions, ip_check_urls: dict | None = None):
        self.plugins = plugins
        self.options = options
        self.ip_check_urls = ip_check_urls or {}  # service name -> base URL (settings)
        self.hub = RelayHub()
        self._relays: set[Relay] = set()  # started here: their sockets' folders to remove

    def start(self, proxy: ProxySettings, allow_udp: bool, port: int = 0,
              path: str | None = None) -> Relay:
        """A running relay through ``proxy`` (on ``port``: an ``OSError`` if taken),
        private with its browser's Unix socket at ``path`` (see net.relay; its folder
        removed when the relay stops or does not start, if one of the temp dir's)."""
        try:
            proxy_type = self.plugins.proxy_types.get(proxy.type)
            if proxy_type is None:
                raise InvalidInput("proxyType", f"proxy type {proxy.type!r} is not "
                                                "available on this machine")
            relay = self.hub.start(proxy_type(proxy, self.options),
                                   RelayLimits(allow_udp=allow_udp), port=port, path=path)
        except BaseException:
            release_relay_socket(path)
            raise
        self._relays.add(relay)
        return relay

    def stop(self, relay: Relay) -> None:
        self.hub.stop(relay)
        self._relays.discard(relay)
        release_relay_socket(relay.path)

    def close(self) -> None:
        """Stop every relay (the agent stops)."""
        self.hub.close()
        for relay in self._relays:
            release_relay_socket(relay.path)
        self._relays.clear()

    def check(self, relay: Relay, window: dict, fingerprint: dict, url: str) -> dict:
        """The fingerprint, following the exit IP where the window asks for it; a
        ``FarmError`` with the failure's kind when the proxy doesn't work."""
        try:
            if not any(fingerprint.get(flag) for flag in IP_FLAGS):
                self._probe(relay, url)  # no IP check runs: still try the proxy once
                return fingerprint
            return self._follow_ip(relay, window, fingerprint)
        except ProxyFailure as failure:
            raise FarmError(f"the window's proxy failed: {failure}",
                            {"kind": failure.kind}) from None

    def _follow_ip(self, relay: Relay, window: dict, fingerprint: dict) -> dict:
        """Time zone, language and position from the exit IP, as the window's check
        service sees it through the window's own relay."""
        name = window.get("ipCheckService") or "ip-api"
        service = self.plugins.ip_check_services.get(name)
        if service is None:
            raise InvalidInput("ipCheckService", f"no IP-check service {name!r} here")
        url = self.ip_check_urls.get(name) or service.base_url
        return follow_ip(fingerprint, ask_through(relay, service, url,
                                                   self.options.connect_timeout))

    def _probe(self, relay: Relay, url: str) -> None:
        """Reach the start page's host through the proxy once. Without a start page,
        the proxy's handshake (its protocol and, where it checks them first, the
        credentials): a port that answers in another protocol fails too."""
        timeout = self.options.connect_timeout
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            proxy = relay.proxy.settings
            if proxy.type == "direct" or not proxy.host:
                return
            try:
                self.hub.call(relay.proxy.handshake(), timeout=timeout + 5)
            except Exception as exc:  # noqa: BLE001 - its kind is the answer
                raise failure_from(exc) from None
            return

        async def connect():
            _, writer = await relay.proxy.open_connection(
                parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            writer.close()

        self.hub.call(connect(), timeout=timeout + 5)
