"""The ``browserfarm`` command."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import click

from browserfarm import __version__, permissions
from browserfarm.config import load_settings
from browserfarm.datadir import keep_files_private
from browserfarm.db import close_all, upgrade
from browserfarm.errors import FarmError
from browserfarm.farm import Farm


class _Context:
    """The farm, assembled on first use (so ``--help`` needs no database)."""

    def __init__(self, overrides):
        self.overrides = overrides
        self._farm = None

    @property
    def settings(self):
        return self.farm.settings

    @property
    def farm(self) -> Farm:
        if self._farm is None:
            self._farm = Farm.assemble(load_settings(self.overrides))
        return self._farm


pass_ctx = click.make_pass_decorator(_Context)


def _fail_cleanly(fn):
    """Service errors become a one-line message and exit status 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FarmError as exc:
            raise click.ClickException(exc.msg) from None
    return wrapper


@click.group()
@click.version_option(__version__)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Data directory (default ./var, or BROWSERFARM_DATA_DIR).")
@click.pass_context
def main(ctx, data_dir):
    """BrowserFarm: a self-hosted farm of persistent browser windows."""
    keep_files_private()  # secrets in the data dir, and what browsers started here write
    ctx.obj = _Context({"data_dir": data_dir} if data_dir else {})


# ----- database ---------------------------------------------------------------------

@main.group()
def db():
    """Database migrations."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx):
    """Apply the migrations not applied yet."""
    applied = upgrade(ctx.farm.db)
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.command("datadir")
@pass_ctx
def datadir_cmd(ctx):
    """The data dir's files and folders: state (back it up), cache or runtime."""
    from browserfarm.datadir import DataDir
    click.echo(f"data dir: {load_settings(ctx.overrides).data_dir}")
    for entry in DataDir.entries():
        click.echo(f"{entry.kind:8} {entry.name:24} {entry.why}")


# ----- serving ----------------------------------------------------------------------

@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default 2).")
@click.option("--threads", type=int, default=None,
              help="Threads per worker (default 32): one is held by each agent's long "
                   "poll and each live viewer.")
@pass_ctx
def serve(ctx, host, port, workers, threads):
    """Serve the cloud API with gunicorn; creates nothing but the schema."""
    upgrade(ctx.farm.db)
    _serve(ctx, host, port, workers, threads)


@main.command()
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@pass_ctx
def up(ctx, port):
    """The embedded farm: migrate, create an owner on first start, then run the API,
    the Local API agent and a v5 runner until Ctrl-C or SIGTERM."""
    farm = ctx.farm
    settings = farm.settings
    port = port or settings.port
    # Before anything starts: a second `up` must not touch a running farm's windows.
    for host, number, variable in ((settings.host, port, "BROWSERFARM_PORT"),
                                   ("127.0.0.1", settings.local_port, "BROWSERFARM_LOCAL_PORT")):
        if not _port_free(host, number):
            raise click.ClickException(f"{host}:{number} is in use (another farm running? "
                                       f"{variable} picks another port)")
    upgrade(farm.db)
    url = f"http://{settings.host}:{port}"
    with farm.db.connection_context():
        from browserfarm.services.embedded import ensure_owner_credentials, login_agent
        path, created = ensure_owner_credentials(farm, url)
        login_agent(farm)  # the agent of this desktop, on its own server, as an agent
    close_all(farm.db)
    click.echo(f"{'Created' if created else 'Using'} credentials: {path.resolve()}")
    click.echo(f"Cloud API on {url}  (docs: {url}/docs)")
    base = [sys.executable, "-m", "browserfarm.cli", "--data-dir", str(settings.data_dir)]
    server = _supervised(base + ["serve", "--port", str(port)])
    agent, runner = _supervised(base + ["local"]), _supervised(base + ["runner"])
    stopping = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            exited = [c for c in (server, agent, runner) if c.poll() is not None]
            if exited:
                raise click.ClickException(
                    f"{' '.join(exited[0].args[5:])} exited ({exited[0].returncode}); "
                    "the farm stops")
    finally:
        # The agent and the runner first, while the API still answers them: windows
        # closed and their profiles synced, workers ended and charged. Then the API.
        for group in ((agent, runner), (server,)):
            for child in group:
                if child.poll() is None:
                    child.terminate()
            for child in group:
                try:
                    child.wait(120)
                except subprocess.TimeoutExpired:
                    child.kill()


def _supervised(command: list[str]) -> subprocess.Popen:
    """A child of ``up`` in its own session, so Ctrl-C reaches only ``up``, which stops
    the children in order; and it gets SIGTERM should ``up`` die."""
    from browserfarm.net.policy import FARM_PID_VARIABLE  # the farm's ports: its children's
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent,
                            env=os.environ | {FARM_PID_VARIABLE: str(os.getpid())})


def _die_with_parent() -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(host: str, port: int) -> bool:
    import socket
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _serve(ctx, host, port, workers, threads=None):
    from gunicorn.app.base import BaseApplication

    from browserfarm.app import create_app

    settings = ctx.settings
    overrides = dict(ctx.overrides)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host or settings.host}:{port or settings.port}")
            self.cfg.set("workers", workers or settings.workers)
            # Threads: POST /5/worker waits for its page to load, an agent's poll for a
            # command, a live view for its viewer to leave; others go on meanwhile.
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads or settings.threads)
            self.cfg.set("accesslog", "-" if os.environ.get("BROWSERFARM_ACCESS_LOG") else None)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("control_socket_disable", True)

        def load(self):
            # Each worker assembles its own farm after the fork: no shared connections.
            return create_app(overrides)

    close_all(ctx.farm.db)  # nothing open crosses the fork into the workers
    Server().run()


# ----- the Local API agent ----------------------------------------------------------

@main.command()
@click.option("--server", required=True, help="The cloud API, e.g. http://127.0.0.1:8000")
@click.option("--token-file", type=click.File("r"), default=None,
              help="A file holding the bearer token (without it: read from stdin).")
@click.option("--token", default=None, help="The token itself: every user of this "
                                            "machine sees it in the process list "
                                            "(deprecated; use --token-file or stdin).")
@pass_ctx
def login(ctx, server, token_file, token):
    """Log this desktop's agent into a cloud, with a bearer token of the "agent" role
    (`token create --role agent`), read from --token-file or stdin."""
    from browserfarm.agent import Cloud, Login
    if token is not None:
        click.echo("warning: --token shows the token to every user of this machine "
                   "(ps); use --token-file FILE or stdin", err=True)
    elif token_file is not None:
        token = token_file.read().strip()
    elif sys.stdin.isatty():
        token = click.prompt("Bearer token", hide_input=True).strip()
    else:  # piped: getpass would read the terminal instead
        token = sys.stdin.readline().strip()
    if not token:
        raise click.UsageError("no token given (--token-file FILE, or on stdin)")
    data_dir = load_settings(ctx.overrides).data_dir
    current = Login.load(data_dir)
    candidate = Login(server=server, token=token, local_token=current.local_token)
    try:
        with Cloud(candidate, timeout=10) as cloud:
            cloud.call("/browser/list", {"pageSize": 1})
    except FarmError as exc:
        raise click.ClickException(f"login refused: {exc.msg}") from None
    candidate.save(data_dir)
    click.echo(f"logged in to {server}")


@main.group(invoke_without_command=True)
@click.option("--port", type=int, default=None, help="Port (default 54345).")
@click.option("--name", default=None, help="The agent's name in the cloud (default: "
                                           "<host>:<8 hex of the data dir>, the same at "
                                           "every start).")
@click.pass_context
def local(click_ctx, port, name):
    """Serve the Local API agent on 127.0.0.1."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(_Context)
    from browserfarm.agent import Agent
    from browserfarm.api.local import make_local_server
    from browserfarm.plugins import load_plugins
    from browserfarm.net.proxy import ProxyOptions
    settings = load_settings(ctx.overrides)
    agent = Agent(settings.data_dir, load_plugins(settings.disable_plugins), name=name or "",
                  options=ProxyOptions.from_settings(settings),
                  ip_check_urls=settings.ip_check_urls,
                  window_display=settings.window_display)
    if agent.login.logged_in:
        try:
            agent.reconcile()  # a dead agent's windows: adopted, or synced and closed
        except FarmError as exc:  # e.g. another agent runs with this data dir
            raise click.ClickException(exc.msg) from None
        agent.commands.start()  # the dashboard's opens and closes, through the cloud
    server = make_local_server(agent, port or settings.local_port)
    # Where it listens, for `local info` run without this process's settings.
    settings.data.prepare(settings.data.local_api).write_text(json.dumps(
        {"local_url": f"http://127.0.0.1:{server.server_port}"}))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    click.echo(f"Local API on http://127.0.0.1:{server.server_port} "
               f"({'logged in to ' + agent.login.server if agent.login.logged_in else 'not logged in'})")
    try:
        server.serve_forever()
    finally:
        agent.shutdown()


@main.command()
@click.option("--name", default=None, help="Unique per runner (default: <host>:runner); "
                                           "a restarted runner reaps what its name left.")
@click.option("--slots", type=int, default=4, help="Browsers at once on this runner.")
@pass_ctx
def runner(ctx, name, slots):
    """Run v5 workers: claim queued ones, start and end their browsers."""
    from browserfarm.runner import WorkerRunner, default_name
    farm = ctx.farm
    upgrade(farm.db)
    worker_runner = WorkerRunner(farm, name=name or default_name(), slots=slots)
    signal.signal(signal.SIGTERM, lambda *_: worker_runner.stop())
    signal.signal(signal.SIGINT, lambda *_: worker_runner.stop())
    # What it can run here: a backend with nothing to offer (no Grid URL, no browser
    # installed) is not worth naming.
    backends = ", ".join(sorted({e["backend"] for e in farm.catalogue.entries()})) or "none"
    click.echo(f"runner {worker_runner.name}: {slots} slots, backends: {backends}")
    try:
        worker_runner.run()
    except RuntimeError as exc:  # e.g. a runner of this name already runs
        raise click.ClickException(str(exc)) from None


def _exit_on_sigterm(*_):
    # Once: a second SIGTERM must not cut short the closing (archives, uploads).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)  # unwinds serve_forever, so the agent closes its windows


@local.command("info")
@pass_ctx
def local_info(ctx):
    """The Local API's port and token."""
    from browserfarm.agent import Login
    settings = load_settings(ctx.overrides)
    login = Login.load(settings.data_dir)
    served = settings.data.local_api  # written by the running agent
    local_url = (json.loads(served.read_text())["local_url"] if served.exists()
                 else f"http://127.0.0.1:{settings.local_port}")
    click.echo(json.dumps({"local_url": local_url,
                           "local_token": login.local_token, "server": login.server,
                           "logged_in": login.logged_in}, indent=2))


# ----- plugins ----------------------------------------------------------------------

@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def plugins_cmd(ctx, as_json):
    """The installed plugins, their versions and hooks, and what they registered."""
    from browserfarm.plugins import load_plugins
    plugins = load_plugins(load_settings(ctx.overrides).disable_plugins)
    registries = [plugins.proxy_types, plugins.proxy_sources, plugins.ip_check_services,
                  plugins.browser_backends]
    if as_json:
        click.echo(json.dumps({
            "plugins": [vars(i) for i in plugins.infos],
            "registries": {r.family: {
                "available": r.names(), "unavailable": r.unavailable,
                "classes": {e.name: {"class": f"{e.cls.__module__}.{e.cls.__qualname__}",
                                     "plugin": e.plugin, "replaces": e.replaces}
                            for e in r.entries()}} for r in registries}}, indent=2))
        return
    for info in plugins.infos:
        state = f"UNAVAILABLE: {info.unavailable}" if info.unavailable else ", ".join(info.hooks)
        click.echo(f"{info.name} {info.version} ({info.distribution})  {state}")
    for registry in registries:  # each name: the plugin whose class won, and whom it beat
        click.echo(f"{registry.family}s:{'' if registry.entries() else ' -'}")
        for e in registry.entries():
            notes = [f"replaces {e.replaces}"] if e.replaces else []
            if e.unavailable:
                notes.append(f"unavailable: {e.unavailable}")
            click.echo(f"  {e.name}: {e.plugin}" + (f" ({'; '.join(notes)})" if notes else ""))


# ----- accounts and tokens ----------------------------------------------------------

@main.group()
def account():
    """Accounts (teams)."""


@account.command("create")
@click.argument("name")
@click.option("--owner", default="owner", help="The owner member's name.")
@click.option("--email", default=None)
@click.option("--sessions-limit", type=int, default=2, help="Parallel v5 workers.")
@pass_ctx
@_fail_cleanly
def account_create(ctx, name, owner, email, sessions_limit):
    """Create an account with an owner; prints the owner token and v5 key once."""
    from browserfarm.services.accounts import create_account
    with ctx.farm.db.connection_context():
        new = create_account(ctx.farm, name, owner_name=owner, email=email,
                             sessions_limit=sessions_limit)
    click.echo(json.dumps({"account_id": new.account.id, "token": new.token,
                           "v5_username": new.v5_username,
                           "v5_access_key": new.v5_access_key}, indent=2))


@account.command("list")
@pass_ctx
def account_list(ctx):
    """Accounts, their members and v5 usernames."""
    from browserfarm.models import Account
    with ctx.farm.db.connection_context():
        accounts = list(Account.select().order_by(Account.id))
        click.echo("ID\tNAME\tV5 USERNAME\tMEMBERS")
        for acc in accounts:
            members = ", ".join(f"{m.name} ({m.role})" for m in acc.members)
            click.echo(f"{acc.id}\t{acc.name}\t{acc.v5_username}\t{members}")


@account.command("add-member")
@click.option("--account", "account_ref", required=True, help="Account id or name.")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(list(permissions.ROLES)), default="member")
@click.option("--email", default=None)
@pass_ctx
@_fail_cleanly
def account_add_member(ctx, account_ref, name, role, email):
    """Add a member to an account; prints the member's token once."""
    from browserfarm.services.accounts import add_member, find_account
    with ctx.farm.db.connection_context():
        member, raw = add_member(ctx.farm, find_account(account_ref).id, name, role, email)
    click.echo(json.dumps({"member_id": member.id, "role": role, "token": raw}, indent=2))


@main.group()
def token():
    """API tokens."""


@token.command("create")
@click.option("--account", "account_ref", required=True, help="Account id or name.")
@click.option("--permission", "permission_list", multiple=True,
              type=click.Choice(permissions.ALL), help="Repeat for each permission.")
@click.option("--role", type=click.Choice(list(permissions.ROLES)), default=None,
              help="A preset: its permissions are added.")
@click.option("--name", default="api token")
@pass_ctx
@_fail_cleanly
def token_create(ctx, account_ref, permission_list, role, name):
    """Create a bearer token; prints it once."""
    from browserfarm.services.accounts import create_token, find_account
    with ctx.farm.db.connection_context():
        acc = find_account(account_ref)
        raw, tok = create_token(ctx.farm, acc.id, name=name, permissions=permission_list,
                                role=role)
    click.echo(json.dumps({"id": tok.id, "token": raw, "permissions": tok.permissions},
                          indent=2))


@token.command("list")
@click.option("--account", "account_ref", required=True, help="Account id or name.")
@pass_ctx
@_fail_cleanly
def token_list(ctx, account_ref):
    """Tokens of an account (their prefixes, never the secrets)."""
    from browserfarm.models import ApiToken
    from browserfarm.services.accounts import find_account
    with ctx.farm.db.connection_context():
        acc = find_account(account_ref)
        click.echo("ID\tPREFIX\tNAME\tSTATE\tPERMISSIONS")
        for tok in acc.tokens.order_by(ApiToken.id):
            state = f"revoked {tok.revoked_at:%Y-%m-%d}" if tok.revoked_at else "active"
            click.echo(f"{tok.id}\t{tok.prefix}…\t{tok.name}\t{state}\t"
                       f"{' '.join(tok.permissions)}")


@token.command("revoke")
@click.argument("token_id", type=int, required=False)
@click.option("--token", "raw", default=None, help="The token itself instead of its id.")
@pass_ctx
@_fail_cleanly
def token_revoke(ctx, token_id, raw):
    """Revoke a token by id (see `token list`) or by its value."""
    from browserfarm.services.accounts import revoke_token
    if token_id is None and not raw:
        raise click.UsageError("give a TOKEN_ID or --token")
    with ctx.farm.db.connection_context():
        tok = revoke_token(ctx.farm, token_id=token_id, raw=raw)
    click.echo(f"revoked token {tok.id} ({tok.name})")


@main.group()
def recycle():
    """The recycle bin."""


@recycle.command("purge")
@pass_ctx
def recycle_purge(ctx):
    """Delete windows older than the retention (BROWSERFARM_RECYCLE_RETENTION_DAYS)."""
    from browserfarm.services.windows import purge_recycle_bin
    with ctx.farm.db.connection_context():
        count = purge_recycle_bin(ctx.farm)
    click.echo(f"purged {count} window(s)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
