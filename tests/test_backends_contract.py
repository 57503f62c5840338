"""The two backend contracts: which backend offers what, the window save path checking
a window's browser against them, and typed handles that still read the JSON of
handles stored before they were typed."""
import pytest

from browserfarm.app import create_app
from browserfarm.browsers.backends import (BrowserBackend, Launched, WindowBackend,
                                           WorkerBackend, WorkerSpec, start_worker)
from browserfarm.browsers.handles import DriverHandle, Handle, LocalHandle, RemoteHandle
from browserfarm.plugins import PluginError, Registry, load_plugins
from browserfarm.services.accounts import create_account
from browserfarm_plugins.chromium import Chromium
from browserfarm_plugins.firefox import Firefox
from browserfarm_plugins.selenium_grid import SeleniumGrid
from tests.conftest import Caller, in_db, make_farm


@pytest.fixture
def owner(tmp_path, sqlite_url):
    farm = make_farm(tmp_path / "d", sqlite_url)
    client = create_app(farm=farm).test_client()
    yield Caller(client, in_db(farm, lambda: create_account(farm, "a")).token)
    farm.close()


def test_each_backend_declares_what_it_runs():
    assert issubclass(Firefox, WindowBackend) and issubclass(Firefox, WorkerBackend)
    for worker_only in (Chromium, SeleniumGrid):
        assert issubclass(worker_only, WorkerBackend)
        assert not issubclass(worker_only, WindowBackend)
    # The old single contract declared the worker side only: a backend written for it
    # is not offered for windows (it has no launch).
    assert issubclass(BrowserBackend, WorkerBackend)
    assert not issubclass(BrowserBackend, WindowBackend)


class HalfWindow(WindowBackend):
    """A window backend that forgot attach, set_cookies and adoptable."""
    name = "half"

    @classmethod
    def launch(cls, spec):
        return Launched(1, LocalHandle("half", pid=1))

    @classmethod
    def get_cookies(cls, handle):
        return []

    @classmethod
    def alive(cls, handle):
        return False

    @classmethod
    def stop(cls, handle, timeout=20.0):
        return False


def test_a_backend_missing_a_contract_method_is_refused_naming_them():
    registry = Registry("browser backend")
    with pytest.raises(PluginError, match=r"HalfWindow \('half', plugin 'p'\) does not "
                                          r"implement adoptable, attach, set_cookies"):
        registry.register(HalfWindow, plugin="p", builtin=False)
    assert not registry.known("half")
    registry.register(Firefox, plugin="firefox", builtin=True)  # complete: accepted
    assert registry.names() == ["firefox"]


class OldBackend(BrowserBackend):
    """A backend written for the old contract: its handle is a dict."""
    name = "old"
    handle: dict = {}
    stopped: list = []

    @classmethod
    def start_worker(cls, spec, settings):
        return Launched(7, dict(cls.handle))

    @classmethod
    def stop(cls, handle, timeout=20.0):
        cls.stopped.append(handle)
        return False


def test_a_dict_handle_of_an_old_backend_is_typed_or_refused(monkeypatch):
    spec = WorkerSpec(browser="old")
    monkeypatch.setattr(OldBackend, "handle", {"pid": 7, "marionettePort": 2828})
    handle = start_worker(OldBackend, spec, None).handle
    assert handle == LocalHandle("old", pid=7, marionette_port=2828)
    # Keys that fit no handle type: the browser could not be reached again; it is stopped.
    monkeypatch.setattr(OldBackend, "handle", {"pid": 7, "port": 1234})
    with pytest.raises(TypeError, match=r"'old' .* would lose pid, port\): return a pluginapi"):
        start_worker(OldBackend, spec, None)
    assert OldBackend.stopped == [{"pid": 7, "port": 1234}]


def test_the_registry_answers_which_backends_run_windows_and_workers():
    plugins = load_plugins()
    assert list(plugins.window_backends) == ["firefox"]
    assert {"chromium", "firefox", "selenium-grid"} <= set(plugins.worker_backends)


@pytest.mark.parametrize("path, extra", [
    ("/browser/update", {}),  # create
    ("/browser/update", "id"),  # update
    ("/browser/update/partial", "ids"),
])
def test_a_chromium_window_is_refused_naming_the_field(owner, path, extra):
    made = owner("/browser/update", {"name": "w"}).data
    body = {"browserFingerPrint": {"coreProduct": "chromium"}}
    if extra == "id":
        body["id"] = made["id"]
    elif extra == "ids":
        body["ids"] = [made["id"]]
    answer = owner(path, body)
    assert answer.code == 211, answer.body
    assert "browserFingerPrint.coreProduct" in answer.msg and "firefox" in answer.msg
    unknown = owner(path, body | {"browserFingerPrint": {"coreProduct": "netscape"}})
    assert unknown.code == 211 and "browserFingerPrint.coreProduct" in unknown.msg


def test_a_firefox_window_is_saved(owner):
    made = owner("/browser/update", {"browserFingerPrint": {"coreProduct": "firefox",
                                                            "coreVersion": "118"}})
    assert made.code == 0, made.body
    assert owner("/browser/update/partial", {"ids": [made.data["id"]], "browserFingerPrint":
                                             {"coreVersion": ""}}).code == 0


def test_a_core_version_newer_than_the_installed_browser_is_refused(owner):
    installed = int(Firefox.version().split(".")[0])
    for version in ("", "118", str(installed), f"{installed}.0.1", "latest"):
        answer = owner("/browser/update", {"browserFingerPrint": {"coreVersion": version}})
        assert answer.code == 0, (version, answer.body)
    answer = owner("/browser/update", {"browserFingerPrint": {
        "coreProduct": "firefox", "coreVersion": str(installed + 1)}})
    assert answer.code == 211 and "browserFingerPrint.coreVersion" in answer.msg


# ----- handles ----------------------------------------------------------------------

OLD_FIREFOX = {"backend": "firefox", "pid": 7, "marionettePort": 2828,
               "ws": "ws://127.0.0.1:9222/session", "profileDir": "/p",
               "keeper": "tcp://127.0.0.1:1", "keeperKey": "k"}
OLD_CHROMIUM = {"backend": "chromium", "executor": "http://127.0.0.1:9515", "session": "s",
                "pids": [8], "pgid": 8, "browserPid": 9, "starts": {"8": 100, "9": 101},
                "tempDir": "/tmp/browserfarm-chromium-x"}
OLD_GRID = {"backend": "selenium-grid", "executor": "http://grid:4444", "session": "s"}


@pytest.mark.parametrize("stored, kind, remote", [
    (OLD_FIREFOX, LocalHandle, False), (OLD_CHROMIUM, DriverHandle, False),
    (OLD_GRID, RemoteHandle, True)])
def test_handles_stored_before_they_were_typed_are_read(stored, kind, remote):
    handle = Handle.from_json(stored)
    assert type(handle) is kind and handle.remote is remote
    written = {k: v for k, v in handle.to_json().items() if k != "kind"}
    if kind is not RemoteHandle:  # a handle stored before displays had none
        assert all(written.pop(key) is None for key in ("display", "displayPid", "xauthority"))
    assert written == stored
    assert Handle.from_json(handle.to_json()) == handle


def test_a_handle_gains_its_keeper():
    handle = Handle.from_json(OLD_GRID)
    assert handle.keeper_reference is None
    kept = handle.kept_by({"keeper": "tcp://127.0.0.1:2", "keeperKey": "x"})
    assert kept.keeper_reference == {"keeper": "tcp://127.0.0.1:2", "keeperKey": "x"}
    assert Handle.from_json(kept.to_json()) == kept
