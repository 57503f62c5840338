"""Plugins: third-party ones installed through the ``browserfarm`` entry-point group,
disabled by name, listed as unavailable when their dependency is missing; every hook
documented and tested (``test_hook_<name>`` below)."""
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from browserfarm import hookspecs
from browserfarm.app import create_app
from browserfarm.plugins import load_plugins
from tests.conftest import Caller, in_db, make_farm

ROOT = Path(__file__).resolve().parent.parent

TINY_PLUGIN = '''
from browserfarm import hookimpl
from browserfarm.browsers.backends import BrowserBackend
from browserfarm.net.ipcheck import IpCheckService, IpInfo
from browserfarm.net.proxy import ProxySource, ProxyType


class Carrier(ProxyType):
    name = "carrier-pigeon"


class Sticky(ProxySource):
    name = "sticky"
    method = 7

    @classmethod
    def validate(cls, fields, plugins):
        pass


class TinyIp(IpCheckService):
    name = "tiny-ip"

    @classmethod
    def parse(cls, payload):
        return IpInfo(ip=payload["addr"])


class TinyBrowser(BrowserBackend):
    name = "tinybrowser"


class MissingBrowser(BrowserBackend):
    name = "missingbrowser"
    executables = ("no-such-browser-binary",)


@hookimpl
def browserfarm_register_proxy_types(register):
    register(Carrier)


@hookimpl
def browserfarm_register_proxy_sources(register):
    register(Sticky)


@hookimpl
def browserfarm_register_ip_check_services(register):
    register(TinyIp)


@hookimpl
def browserfarm_register_browser_backends(register):
    register(TinyBrowser)
    register(MissingBrowser)


@hookimpl
def browserfarm_browser_preferences(window, backend):
    return {"tiny.pref": window["name"], "tiny.backend": backend}
'''


def install_distribution(root: Path, name: str, modules: dict, entry_points: dict,
                         version: str = "1.2.3") -> Path:
    """An installed distribution as pip leaves it: modules + a .dist-info directory."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[browserfarm]\n{lines}\n")
    return root


@pytest.fixture
def tiny_plugin(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-tiny-plugin",
                                {"bf_tiny_plugin": TINY_PLUGIN}, {"tiny": "bf_tiny_plugin"})
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("bf_tiny_plugin", None)


@pytest.fixture
def tiny_owner(tmp_path, sqlite_url, tiny_plugin):
    """The API of a farm with the tiny plugin installed, and an owner calling it."""
    from browserfarm.services.accounts import create_account
    farm = make_farm(tmp_path / "data", sqlite_url)
    client = create_app(farm=farm).test_client()
    new = in_db(farm, lambda: create_account(farm, "acme"))
    yield Caller(client, new.token)
    farm.db.close()


def test_built_in_plugins_load_through_entry_points():
    plugins = load_plugins()
    names = {info.name for info in plugins.infos}
    assert {"proxy_types", "proxy_sources", "ip_check", "firefox", "chromium"} <= names
    assert all(info.distribution == "browserfarm" for info in plugins.infos
               if info.name in names)
    assert plugins.proxy_types.names() == ["direct", "http", "https", "socks5", "ssh"]
    assert plugins.ip_check_services.names() == ["ip-api", "ipapi.co", "ipinfo"]
    assert plugins.proxy_source_for_method(3).name == "extracted"


def test_a_third_party_plugin_is_listed_with_its_version_and_hooks(tiny_plugin):
    tiny = next(i for i in load_plugins().infos if i.name == "tiny")
    assert (tiny.version, tiny.distribution) == ("1.2.3", "bf-tiny-plugin")
    assert tiny.hooks == sorted(name for name, _ in inspect.getmembers(hookspecs)
                                if name.startswith("browserfarm_"))


def test_browserfarm_plugins_command_lists_a_third_party_plugin(tiny_plugin, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(tiny_plugin)}
    out = subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                          str(tmp_path / "d"), "plugins"], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout
    assert "tiny 1.2.3 (bf-tiny-plugin)" in out
    assert "carrier-pigeon" in out
    assert "missingbrowser (unavailable: none of no-such-browser-binary is installed)" in out
    listed = json.loads(subprocess.run(
        [sys.executable, "-m", "browserfarm.cli", "plugins", "--json"], capture_output=True,
        text=True, env=env, timeout=60, check=True).stdout)
    assert "tinybrowser" in listed["registries"]["browser backend"]["available"]


def test_disabled_plugins_are_not_loaded(tiny_plugin, monkeypatch, tmp_path):
    plugins = load_plugins(disabled=["tiny", "chromium"])
    names = {i.name for i in plugins.infos}
    assert "tiny" not in names and "chromium" not in names
    assert not plugins.browser_backends.known("chromium")
    # Through the environment, as an operator does it:
    monkeypatch.setenv("BROWSERFARM_DISABLE_PLUGINS", "tiny, chromium")
    from browserfarm.config import load_settings
    assert load_settings().disable_plugins == ("tiny", "chromium")


def test_a_disabled_backend_is_refused_as_core_product(tmp_path, sqlite_url):
    from browserfarm.services.accounts import create_account
    farm = make_farm(tmp_path / "d", sqlite_url, disable_plugins=("chromium",))
    client = create_app(farm=farm).test_client()
    caller = Caller(client, in_db(farm, lambda: create_account(farm, "a")).token)
    answer = caller("/browser/update", {"browserFingerPrint": {"coreProduct": "chromium"}})
    assert answer.code == 211 and "coreProduct" in answer.msg
    assert caller("/browser/update", {"browserFingerPrint": {"coreProduct": "firefox"}}
                  ).code == 0


def test_a_plugin_with_a_missing_dependency_is_listed_unavailable(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-broken", {
        "bf_broken": "import a_dependency_that_is_not_installed\n"}, {"broken": "bf_broken"})
    monkeypatch.syspath_prepend(str(site))
    plugins = load_plugins()
    broken = next(i for i in plugins.infos if i.name == "broken")
    assert "a_dependency_that_is_not_installed" in broken.unavailable
    assert plugins.proxy_types.names()  # the others still load


def test_a_misspelled_hook_fails_at_load(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-typo", {"bf_typo": '''
        from browserfarm import hookimpl

        @hookimpl
        def browserfarm_register_proxy_typos(register):
            pass
        '''}, {"typo": "bf_typo"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(pluggy.PluginValidationError, match="proxy_typos"):
        load_plugins()
    sys.modules.pop("bf_typo", None)


def test_the_same_name_registered_twice_is_an_error(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-dup", {"bf_dup": '''
        from browserfarm import hookimpl
        from browserfarm.net.proxy import ProxyType

        class Socks5Again(ProxyType):
            name = "socks5"

        @hookimpl
        def browserfarm_register_proxy_types(register):
            register(Socks5Again)
        '''}, {"dup": "bf_dup"})
    monkeypatch.syspath_prepend(str(site))
    from browserfarm.plugins import PluginError
    with pytest.raises(PluginError, match="socks5"):
        load_plugins()
    sys.modules.pop("bf_dup", None)


# ----- one test per hook ------------------------------------------------------------

def test_hook_browserfarm_register_proxy_types(tiny_owner):
    answer = tiny_owner("/browser/update", {"proxyType": "carrier-pigeon", "host": "coop",
                                            "port": 1})
    assert answer.code == 0 and answer.data["proxyType"] == "carrier-pigeon"
    assert tiny_owner("/browser/update", {"proxyType": "carrier-pigeon"}).data[
        "field"] == "host"


def test_hook_browserfarm_register_proxy_sources(tiny_owner):
    assert tiny_owner("/browser/update", {"proxyMethod": 7}).data["proxyMethod"] == 7
    answer = tiny_owner("/browser/update", {"proxyMethod": 8})
    assert answer.code == 211 and "[2, 3, 4, 7]" in answer.msg


def test_hook_browserfarm_register_ip_check_services(tiny_owner, tiny_plugin):
    assert tiny_owner("/browser/update", {"ipCheckService": "tiny-ip"}).code == 0
    service = load_plugins().ip_check_services.get("tiny-ip")
    assert service.parse({"addr": "192.0.2.1"}).ip == "192.0.2.1"


def test_hook_browserfarm_register_browser_backends(tiny_owner, tiny_plugin):
    answer = tiny_owner("/browser/update", {"browserFingerPrint": {"coreProduct":
                                                                   "tinybrowser"}})
    assert answer.code == 0
    backends = load_plugins().browser_backends
    assert "tinybrowser" in backends.names()
    assert "no-such-browser-binary" in backends.unavailable["missingbrowser"]


def test_hook_browserfarm_browser_preferences(tiny_plugin):
    prefs = load_plugins().browser_preferences({"name": "w1"}, "firefox")
    assert prefs == {"tiny.pref": "w1", "tiny.backend": "firefox"}


def test_plugin_hooks_have_tests():
    hooks = [name for name, _ in inspect.getmembers(hookspecs)
             if name.startswith("browserfarm_")]
    tested = {name[len("test_hook_"):] for name in globals() if name.startswith("test_hook_")}
    assert sorted(set(hooks) - tested) == []


def test_plugin_hooks_are_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name, spec in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("browserfarm_"):
            assert f"{name}{inspect.signature(spec)}" in docs, name
