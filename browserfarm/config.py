"""Settings: embedded defaults, overridden by ``BROWSERFARM_*`` environment variables
(and ``DATABASE_URL``), overridden by what the caller passes."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from browserfarm.datadir import DataDir


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    database_url: str = ""  # default: SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8000
    local_port: int = 54345  # the Local API agent
    workers: int = 2
    # Threads per API process: each agent's long poll (up to 25 s) and each live viewer
    # holds one for as long as it lasts; other calls queue behind them when all are held.
    threads: int = 32
    secret_key: str = ""  # Fernet key for proxy passwords; default: DataDir.secret_key
    disable_plugins: tuple[str, ...] = ()
    recycle_retention_days: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    proxy_timeout: float = 10.0  # each network step of reaching or using a proxy
    proxy_ca_file: str = ""  # extra CAs trusted for https proxies
    ssh_host_key_policy: str = "accept-new"  # accept-new | strict | insecure
    ip_check_urls: dict = field(default_factory=dict)  # service name -> base URL
    # CIDRs added to net.policy.ALWAYS_BLOCKED, and exceptions to them (comma-separated)
    blocked_networks: str = ""
    allowed_networks: str = ""
    # Run as root, browsers run as this unprivileged user (scripts/ensure-browser-user);
    # "root": as root, where Chromium then needs chromium_no_sandbox
    browser_user: str = "browserfarm-browser"
    chromium_no_sandbox: bool = False  # only where user namespaces are not allowed
    # Where windows show: "auto" (the desktop's display when DISPLAY or WAYLAND_DISPLAY
    # is set, else a virtual display of each window's own), "virtual", "headless"
    window_display: str = "auto"
    # The Firefox major new windows' fingerprints are drawn for (the desktops', which may
    # not be this server's); default: this server's installed Firefox, else the newest in
    # the fingerprint data
    firefox_version: str = ""
    # stored profile chunks per account (bytes; 0: no limit)
    profile_quota_bytes: int = 10 * 1024**3
    # v5 workers
    grid_url: str = ""  # a Selenium Grid 4 (selenium-grid backend), e.g. http://host:4444
    worker_max_seconds: float = 1800.0  # no worker lives longer, whatever its timeout
    worker_time_scale: float = 1.0  # tests shrink worker lifetimes (timeout, the 60 s rule, the cap) by this
    queue_timeout: float = 600.0  # a queued worker not started by then ends
    worker_retention_days: float = 7.0  # an ended worker's screenshots, video and log
    warm_pool: dict = field(default_factory=dict)  # backend name -> browsers kept ready
    rate_limit: str = "1600 per 5 minutes"  # per v5 user
    # "": counts shared by this host's API processes; redis://... for several hosts
    rate_limit_storage: str = ""
    # The dashboard: how long a sign-in lasts, and where its npm assets are
    # (scripts/ensure-npm-packages fetches them there; the app serves them).
    dashboard_session_hours: float = 12.0
    # How many reverse proxies in front of the API set X-Forwarded-For/-Proto/-Host
    # (werkzeug's ProxyFix); 0: those headers are ignored (anyone could send them).
    trusted_proxies: int = 0
    dashboard_assets_dir: Path = (Path(__file__).resolve().parent.parent
                                  / ".cache/dashboard/node_modules")

    @property
    def data(self) -> DataDir:
        """The files and folders of the data dir, by name (browserfarm.datadir)."""
        return DataDir(self.data_dir)

    @property
    def network_policy(self):
        """What the farm may reach on a user's behalf (browserfarm.net.policy)."""
        from browserfarm.net.policy import NetworkPolicy
        return NetworkPolicy.from_settings(self)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data.database.resolve()}"


def _rate_limit(value: str) -> str:
    """``1600 per 5 minutes``: checked when read, not at the first request."""
    from limits import parse
    parse(value)  # a ValueError says what is wrong
    return value


def _window_display(value: str) -> str:
    if value not in WINDOW_DISPLAYS:
        raise ValueError(f"expected one of {', '.join(WINDOW_DISPLAYS)}")
    return value


WINDOW_DISPLAYS = ("auto", "virtual", "headless")


def _firefox_version(value: str) -> str:
    """A Firefox major (``153``; ``153.0`` is read as 153)."""
    major = value.strip().split(".")[0]
    if not major.isdigit():
        raise ValueError("expected a Firefox major version, e.g. 153")
    return major


def _networks(value: str) -> str:
    """``10.0.0.0/8,127.66.0.0/16``: checked when read."""
    from browserfarm.net.policy import parse_networks
    parse_networks(value)  # a ValueError names the bad network
    return value


def _flag(value: str) -> bool:
    """1/true/yes or 0/false/no."""
    if value.strip().lower() in ("1", "true", "yes"):
        return True
    if value.strip().lower() in ("0", "false", "no"):
        return False
    raise ValueError("expected 1 or 0")


_ENV = {
    "data_dir": ("BROWSERFARM_DATA_DIR", Path),
    "database_url": ("DATABASE_URL", str),
    "host": ("BROWSERFARM_HOST", str),
    "port": ("BROWSERFARM_PORT", int),
    "local_port": ("BROWSERFARM_LOCAL_PORT", int),
    "workers": ("BROWSERFARM_WORKERS", int),
    "threads": ("BROWSERFARM_THREADS", int),
    "secret_key": ("BROWSERFARM_SECRET_KEY", str),
    "disable_plugins": ("BROWSERFARM_DISABLE_PLUGINS",
                        lambda v: tuple(n.strip() for n in v.split(",") if n.strip())),
    "recycle_retention_days": ("BROWSERFARM_RECYCLE_RETENTION_DAYS", float),
    "proxy_timeout": ("BROWSERFARM_PROXY_TIMEOUT", float),
    "proxy_ca_file": ("BROWSERFARM_PROXY_CA_FILE", str),
    "ssh_host_key_policy": ("BROWSERFARM_SSH_HOST_KEY_POLICY", str),
    # "ip-api=http://host/json/,ipinfo=http://host/json"
    "ip_check_urls": ("BROWSERFARM_IP_CHECK_URLS",
                      lambda v: dict(pair.split("=", 1) for pair in v.split(",") if pair)),
    "blocked_networks": ("BROWSERFARM_BLOCKED_NETWORKS", _networks),
    "allowed_networks": ("BROWSERFARM_ALLOWED_NETWORKS", _networks),
    "browser_user": ("BROWSERFARM_BROWSER_USER", str),
    "chromium_no_sandbox": ("BROWSERFARM_CHROMIUM_NO_SANDBOX", _flag),
    "window_display": ("BROWSERFARM_WINDOW_DISPLAY", _window_display),
    "firefox_version": ("BROWSERFARM_FIREFOX_VERSION", _firefox_version),
    "profile_quota_bytes": ("BROWSERFARM_PROFILE_QUOTA_BYTES", int),
    "grid_url": ("BROWSERFARM_GRID_URL", str),
    "worker_max_seconds": ("BROWSERFARM_WORKER_MAX_SECONDS", float),
    "worker_time_scale": ("BROWSERFARM_WORKER_TIME_SCALE", float),
    "queue_timeout": ("BROWSERFARM_QUEUE_TIMEOUT", float),
    "worker_retention_days": ("BROWSERFARM_WORKER_RETENTION_DAYS", float),
    # "firefox=2,chromium=1"
    "warm_pool": ("BROWSERFARM_WARM_POOL",
                  lambda v: {k: int(n) for k, n in (p.split("=", 1) for p in v.split(",") if p)}),
    "rate_limit": ("BROWSERFARM_RATE_LIMIT", _rate_limit),
    "rate_limit_storage": ("BROWSERFARM_RATE_LIMIT_STORAGE", str),
    "dashboard_session_hours": ("BROWSERFARM_DASHBOARD_SESSION_HOURS", float),
    "trusted_proxies": ("BROWSERFARM_TRUSTED_PROXIES", int),
    "dashboard_assets_dir": ("BROWSERFARM_DASHBOARD_ASSETS_DIR", Path),
}


def load_settings(overrides: dict | None = None, environ=None) -> Settings:
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, convert) in _ENV.items():
        raw = environ.get(var) or (environ.get("BROWSERFARM_DATABASE_URL")
                                   if name == "database_url" else None)
        if raw:
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise SystemExit(f"{var}={raw!r} is not valid: {exc}") from None
    known = {f.name for f in fields(Settings)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise TypeError(f"unknown setting {key!r}")
        values[key] = value
    settings = replace(Settings(), **values)
    # Absolute: files are handed to code that resolves relative paths elsewhere
    # (Flask's send_file against the package), and to processes in other directories.
    return replace(settings, data_dir=Path(settings.data_dir).resolve())
