"""Fixtures: real databases (a SQLite file, and a throw-away PostgreSQL cluster started
as the ``postgres`` user on a free port), the app, accounts and an API caller."""
from __future__ import annotations

import atexit
import functools
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from browserfarm.app import create_app
from browserfarm.browsers.backends import free_port  # noqa: F401 - tests import it from here
from browserfarm.config import load_settings
from browserfarm.db import close_all, open_database, upgrade
from browserfarm.farm import Farm
from browserfarm.services.accounts import create_account, create_token

pytest_plugins = ["tests.servers"]


# ----- PostgreSQL -------------------------------------------------------------------

@dataclass
class PostgresServer:
    port: int
    datadir: str

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, template: str = "") -> str:
        """A new database: empty, or a copy of the database ``template``."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(self.url(), connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"'
                        + (f' TEMPLATE "{template}"' if template else ""))
        conn.close()
        return self.url(name)

    @functools.cached_property
    def migrated(self) -> str:
        """A database every migration was applied to, once this session: the template
        of the farms' databases (a copy costs ~20 ms; migrating each, 10 times that)."""
        url = self.create_database()
        _migrate(url)
        return url.rsplit("/", 1)[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return cmd if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of its own, on loopback and a free port, for this session."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail("PostgreSQL is not installed: run `make test` (it installs it)")
    bindir = os.path.dirname(bins[-1])
    datadir = tempfile.mkdtemp(prefix="browserfarm-pg-")
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(datadir, pg.pw_uid, pg.pw_gid)
    port = free_port()
    subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", datadir, "-U", "postgres",
                                 "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", datadir, "-o", options,
                                 "-l", f"{datadir}/server.log", "-w", "-t", "60", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield PostgresServer(port, datadir)
    finally:
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate",
                                     "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(datadir, ignore_errors=True)


# ----- the farm ---------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A farm's database, migrated (make_farm's upgrade then finds nothing to do)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/farm.db"  # make_farm copies the migrated file
    postgres = request.getfixturevalue("postgres")
    return postgres.create_database(template=postgres.migrated)


@pytest.fixture
def sqlite_url(tmp_path):
    """For tests about something other than the database: SQLite only."""
    return f"sqlite:///{tmp_path}/farm.db"


def _migrate(url: str) -> None:
    db = open_database(url)
    upgrade(db)
    close_all(db)


@functools.cache
def _migrated_sqlite() -> Path:
    """A SQLite database file every migration was applied to, once this session."""
    folder = Path(tempfile.mkdtemp(prefix="browserfarm-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _migrate(f"sqlite:///{folder}/farm.db")  # closed: its WAL is checkpointed and gone
    return folder / "farm.db"


def make_farm(data_dir, database_url, **overrides) -> Farm:
    """A farm on ``database_url``, upgraded. A SQLite file that does not exist yet
    starts as a copy of one migrated once this session (migrating each costs ~0.3 s,
    paid by hundreds of tests); the migrations themselves are what made that copy."""
    path = database_url.removeprefix("sqlite:///")
    if path != database_url and not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        shutil.copyfile(_migrated_sqlite(), path)
    farm = Farm.assemble(load_settings({"data_dir": data_dir, "database_url": database_url,
                                        **overrides}, environ={}))
    upgrade(farm.db)
    return farm


@pytest.fixture
def farm(tmp_path, database_url):
    farm = make_farm(tmp_path / "data", database_url)
    yield farm
    farm.close()


@pytest.fixture
def app(farm):
    return create_app(farm=farm)


@pytest.fixture
def client(app):
    return app.test_client()


class Caller:
    """Posts JSON the way a script does, with one bearer token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def __call__(self, path: str, body=None, *, raw: bytes | None = None, headers=None):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if raw is not None:
            response = self.client.post(path, data=raw, headers=headers)
        else:
            response = self.client.post(path, json={} if body is None else body,
                                        headers=headers)
        return Answer(response.status_code, response.get_json())


@dataclass
class Answer:
    status: int
    body: dict

    @property
    def code(self):
        return self.body["code"]

    @property
    def data(self):
        return self.body["data"]

    @property
    def msg(self):
        return self.body["msg"]


def in_db(farm, fn):
    with farm.db.connection_context():
        return fn()


def account_owner(farm, client, name: str) -> Caller:
    """A new account's owner (every permission), calling the API."""
    new = in_db(farm, lambda: create_account(farm, name))
    caller = Caller(client, new.token)
    caller.account = new.account
    return caller


@pytest.fixture
def owner(farm, client):
    return account_owner(farm, client, "acme")


@pytest.fixture
def stranger(farm, client):
    """The owner of another account."""
    return account_owner(farm, client, "globex")


@pytest.fixture
def token_with(farm, client, owner):
    """``token_with("browser:list", role=None)``: a caller on the owner's account."""
    def make(*permissions, role=None):
        raw, _ = in_db(farm, lambda: create_token(farm, owner.account.id, "test",
                                                  permissions=permissions, role=role))
        return Caller(client, raw)
    return make


@pytest.fixture
def window_display() -> str:
    """Where the test agents' windows show (Settings.window_display). Headless here:
    a tested window's display is a cost (its Xvfb, a drawn screen up to 2560x1440 at
    devicePixelRatio 2, painted in software) that tests of something else need not pay.
    Modules about screens, identity and automation tells override this fixture with
    "virtual", and tests/test_displays.py keeps "auto", the default, end to end."""
    return "headless"


def wait_until(condition, timeout: float, what: str):
    """Polls ``condition()`` until it returns something true, and returns that; fails
    saying ``what`` was awaited if ``timeout`` seconds pass first. For tests that wait
    for something to happen, instead of sleeping a guessed time."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.02)
    return result


def require_executable(path_or_name: str, what: str) -> str:
    """The executable's path; a test that needs one that is missing fails (never
    skips): `make test` installs everything, so a missing one is a broken setup, not
    a green run."""
    found = shutil.which(path_or_name)
    if found is None:
        pytest.fail(f"{what} is not installed ({path_or_name}): `make test` installs it "
                    "(scripts/ensure-system-packages)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def firefox_installed():
    """Fails the tests that need a real Firefox when it can't start here (see
    require_executable: a missing browser fails, it is never skipped)."""
    from browserfarm_plugins.firefox import Firefox
    reason = Firefox.unavailable_reason()
    if reason is not None:
        pytest.fail(f"Firefox is needed: {reason}. `make test` installs it "
                    "(scripts/ensure-system-packages)", pytrace=False)


def needs_firefox():
    """Marks tests (or a module, as ``pytestmark``) that need a real Firefox."""
    return pytest.mark.usefixtures("firefox_installed")


@pytest.fixture(scope="session")
def selenium_grid(tmp_path_factory):
    """A real Selenium Grid 4 standalone (Debian's chromium and chromedriver) for the
    session: its URL (a str with ``.pid`` and ``.log_path``)."""
    from tests.servers import selenium_grid_server  # servers imports this module
    with selenium_grid_server(tmp_path_factory.mktemp("selenium-grid")) as url:
        yield url


@contextmanager
def started_runner(farm, name: str, **options):
    """A v5 runner in a thread, as `browserfarm runner` runs it, ready to claim; on
    exit it stops (ending its workers) and its thread is joined."""
    from browserfarm.runner import WorkerRunner
    runner = WorkerRunner(farm, name=name, **options)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    assert runner.ready.wait(30)
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(90)
