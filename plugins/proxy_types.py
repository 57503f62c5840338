"""Built-in proxy types: direct, http, https, socks5, ssh."""
from browserfarm import hookimpl
from browserfarm.errors import InvalidInput
from browserfarm.proxy import ProxyType


class Direct(ProxyType):
    name = "direct"
    needs_address = False


class Http(ProxyType):
    name = "http"


class Https(ProxyType):
    """An HTTP proxy reached over TLS."""
    name = "https"


class Socks5(ProxyType):
    name = "socks5"

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
    name = "ssh"

    @classmethod
    def validate(cls, settings):
        super().validate(settings)
        if not settings.username:
            raise InvalidInput("proxyUserName", "is required for proxyType ssh")


@hookimpl
def browserfarm_register_proxy_types(register):
    for cls in (Direct, Http, Https, Socks5, Ssh):
        register(cls)
