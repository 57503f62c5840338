"""What a BrowserFarm plugin may import: the one supported import surface for plugin
authors (docs/plugins.md). Every name here stays importable from here when the
modules behind it move::

    from browserfarm.pluginapi import ProxyType, hookimpl

Each name is taken from the module that defines it today; a new name goes at the end
of its group and into ``__all__``. Anything imported from elsewhere in ``browserfarm``
is internal and may move without notice.
"""
from browserfarm import errors as _errors
from browserfarm import hookimpl
from browserfarm.browsers import backends as _backends
from browserfarm.browsers import display, processes, remote
from browserfarm.browsers import handles as _handles
from browserfarm.net import ipcheck as _ipcheck
from browserfarm.net import proxy as _proxy
from browserfarm.net import socks5 as _socks5
from browserfarm.net import udp as _udp

# Errors: raise InvalidInput(field, message) for a setting a class can't use.
InvalidInput = _errors.InvalidInput

# Proxy types and proxy sources.
ProxyType = _proxy.ProxyType
ProxySettings = _proxy.ProxySettings
ProxyOptions = _proxy.ProxyOptions
ProxyFailure = _proxy.ProxyFailure
FAILURE_KINDS = _proxy.FAILURE_KINDS
failure_from = _proxy.failure_from
ProxySource = _proxy.ProxySource
check_proxy_type = _proxy.check_proxy_type
proxy_type_named = _proxy.proxy_type_named

# SOCKS5 and UDP, for proxy types that speak SOCKS5 upstream or carry UDP.
socks5_request = _socks5.request
socks5_greet = _socks5.greet
SOCKS5_CONNECT = _socks5.CONNECT
SOCKS5_UDP_ASSOCIATE = _socks5.UDP_ASSOCIATE
UdpTunnel = _udp.UdpTunnel
DirectUdp = _udp.DirectUdp
Socks5Udp = _udp.Socks5Udp

# IP-check services.
IpCheckService = _ipcheck.IpCheckService
IpInfo = _ipcheck.IpInfo
BadAnswer = _ipcheck.BadAnswer
as_float = _ipcheck.as_float
as_text = _ipcheck.as_text

# Browser backends: the contracts, what they are given and what they hand back.
BrowserBackend = _backends.BrowserBackend
WindowBackend = _backends.WindowBackend
WorkerBackend = _backends.WorkerBackend
LaunchSpec = _backends.LaunchSpec
WorkerSpec = _backends.WorkerSpec
Launched = _backends.Launched
free_port = _backends.free_port
host_os_version = _backends.host_os_version
major_version = _backends.major_version

# What a backend that runs browsers builds on: ``processes`` (starting, finding and
# stopping browser processes, as a user of their own), ``remote`` (W3C WebDriver
# sessions through Selenium; WebDriverBackend runs a worker through one) and
# ``display`` (a browser's own virtual X display; parse_size reads "W x H").
WebDriverBackend = remote.WebDriverBackend
VirtualDisplay = display.VirtualDisplay
stop_display = display.stop_display
parse_size = display.parse_size

# Handles: what a backend's start hands back in ``Launched.handle``, by where the
# browser runs (this machine over Marionette, a local driver, a remote WebDriver).
Handle = _handles.Handle
LocalHandle = _handles.LocalHandle
DriverHandle = _handles.DriverHandle
RemoteHandle = _handles.RemoteHandle

__all__ = [
    "hookimpl",
    "InvalidInput",
    "ProxyType", "ProxySettings", "ProxyOptions", "ProxyFailure", "FAILURE_KINDS",
    "failure_from", "ProxySource", "check_proxy_type", "proxy_type_named",
    "socks5_request", "socks5_greet", "SOCKS5_CONNECT", "SOCKS5_UDP_ASSOCIATE",
    "UdpTunnel", "DirectUdp", "Socks5Udp",
    "IpCheckService", "IpInfo", "BadAnswer", "as_float", "as_text",
    "BrowserBackend", "WindowBackend", "WorkerBackend", "LaunchSpec", "WorkerSpec",
    "Launched", "free_port", "host_os_version", "major_version",
    "processes", "remote", "display", "WebDriverBackend", "VirtualDisplay", "stop_display",
    "parse_size",
    "Handle", "LocalHandle", "DriverHandle", "RemoteHandle",
]
