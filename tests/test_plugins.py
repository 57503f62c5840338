"""Plugins: third-party ones installed through the ``browserfarm`` entry-point group,
disabled by name, listed as unavailable when their dependency is missing, replacing a
built-in class of the same name; every hook documented and tested (``test_hook_<name>``
below); browserfarm.pluginapi, the import surface for plugin authors."""
import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from browserfarm import hookspecs, pluginapi
from browserfarm.app import create_app
from browserfarm.plugins import PluginError, load_plugins
from tests.conftest import Caller, in_db, make_farm

ROOT = Path(__file__).resolve().parent.parent

TINY_PLUGIN = '''
from browserfarm.pluginapi import (BrowserBackend, IpCheckService, IpInfo, ProxySource,
                                   ProxyType, hookimpl)


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


def socks5_plugin(name: str, rule: str) -> str:
    """A plugin module whose ``socks5`` class refuses every host with ``rule``."""
    return f'''
        from browserfarm.pluginapi import InvalidInput, ProxyType, hookimpl

        class Socks5(ProxyType):
            name = "socks5"

            @classmethod
            def validate(cls, settings):
                raise InvalidInput("host", {rule!r})

        @hookimpl
        def browserfarm_register_proxy_types(register):
            register(Socks5)
        '''


def prefs_plugin(value: str) -> str:
    return f'''
        from browserfarm.pluginapi import hookimpl

        @hookimpl
        def browserfarm_browser_preferences(window, backend):
            return {{"shared.pref": {value!r}, {value + ".pref"!r}: True}}
        '''


def run_cli(*args, pythonpath: Path) -> str:
    return subprocess.run([sys.executable, "-m", "browserfarm.cli", *args],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": str(pythonpath)}).stdout


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
    assert all(info.distribution == "browserfarm" and info.builtin
               for info in plugins.infos)
    assert plugins.proxy_types.names() == ["direct", "http", "https", "socks5", "ssh"]
    assert plugins.ip_check_services.names() == ["ip-api", "ipapi.co", "ipinfo"]
    assert plugins.proxy_source_for_method(3).name == "extracted"


def test_a_third_party_plugin_is_listed_with_its_version_and_hooks(tiny_plugin):
    tiny = next(i for i in load_plugins().infos if i.name == "tiny")
    assert (tiny.version, tiny.distribution) == ("1.2.3", "bf-tiny-plugin")
    assert tiny.hooks == sorted(name for name, _ in inspect.getmembers(hookspecs)
                                if name.startswith("browserfarm_"))


def test_browserfarm_plugins_command_lists_a_third_party_plugin(tiny_plugin, tmp_path):
    out = run_cli("--data-dir", str(tmp_path / "d"), "plugins", pythonpath=tiny_plugin)
    assert "tiny 1.2.3 (bf-tiny-plugin)" in out
    assert "\n  carrier-pigeon: tiny\n" in out
    assert "\n  socks5: proxy_types\n" in out
    assert ("\n  missingbrowser: tiny (unavailable: none of no-such-browser-binary is "
            "installed)\n") in out
    listed = json.loads(run_cli("plugins", "--json", pythonpath=tiny_plugin))
    backends = listed["registries"]["browser backend"]
    assert "tinybrowser" in backends["available"]
    assert backends["classes"]["tinybrowser"] == {
        "class": "bf_tiny_plugin.TinyBrowser", "plugin": "tiny", "replaces": None}


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


def test_a_third_party_class_replaces_the_built_in_one_of_its_name(
        tmp_path, sqlite_url, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-my-socks",
                                {"bf_my_socks": socks5_plugin("my_socks", "my socks5 rule")},
                                {"my_socks": "bf_my_socks"})
    monkeypatch.syspath_prepend(str(site))
    try:
        plugins = load_plugins()
        socks5 = next(e for e in plugins.proxy_types.entries() if e.name == "socks5")
        assert (socks5.cls.__module__, socks5.plugin, socks5.replaces) == (
            "bf_my_socks", "my_socks", "proxy_types")
        assert plugins.proxy_types.names() == ["direct", "http", "https", "socks5", "ssh"]
        # The windows' rules are the replacement's; the other built-in types are untouched.
        from browserfarm.services.accounts import create_account
        farm = make_farm(tmp_path / "data", sqlite_url)
        caller = Caller(create_app(farm=farm).test_client(),
                        in_db(farm, lambda: create_account(farm, "acme")).token)
        answer = caller("/browser/update", {"proxyType": "socks5", "host": "h", "port": 1})
        assert (answer.code, answer.data["field"]) == (211, "host")
        assert "my socks5 rule" in answer.msg
        assert caller("/browser/update", {"proxyType": "http", "host": "h", "port": 1}
                      ).code == 0
        farm.db.close()
        out = run_cli("--data-dir", str(tmp_path / "d"), "plugins", pythonpath=site)
        assert "\n  socks5: my_socks (replaces proxy_types)\n" in out
        # Disabling the replacement brings the built-in back.
        assert load_plugins(disabled=["my_socks"]).proxy_types.get("socks5").__module__ \
            == "browserfarm_plugins.proxy_types"
    finally:
        sys.modules.pop("bf_my_socks", None)


def test_an_unavailable_replacement_still_wins_and_says_why(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-gone", {"bf_gone": '''
        from browserfarm.pluginapi import ProxyType, hookimpl

        class Socks5(ProxyType):
            name = "socks5"

            @classmethod
            def unavailable_reason(cls):
                return "needs a library not installed here"

        @hookimpl
        def browserfarm_register_proxy_types(register):
            register(Socks5)
        '''}, {"gone": "bf_gone"})
    monkeypatch.syspath_prepend(str(site))
    try:
        types = load_plugins().proxy_types
        assert types.get("socks5") is None and types.known("socks5")
        assert types.unavailable == {"socks5": "needs a library not installed here"}
        assert next(e for e in types.entries() if e.name == "socks5").replaces == "proxy_types"
    finally:
        sys.modules.pop("bf_gone", None)


def test_one_plugin_registering_a_name_twice_is_an_error():
    from browserfarm.plugins import Registry

    class Twice:
        name = "twice"
    registry = Registry("proxy type")
    registry.register(Twice, plugin="p", builtin=False)
    with pytest.raises(PluginError, match="'twice' is registered twice by plugin 'p'"):
        registry.register(Twice, plugin="p", builtin=False)


def test_two_third_party_classes_of_one_name_are_refused_naming_both(tmp_path, monkeypatch):
    for name in ("first_socks", "second_socks"):
        monkeypatch.syspath_prepend(str(install_distribution(
            tmp_path / name, f"bf-{name}", {f"bf_{name}": socks5_plugin(name, name)},
            {name: f"bf_{name}"})))
    try:
        with pytest.raises(PluginError) as refused:
            load_plugins()
        assert str(refused.value) == ("proxy type 'socks5' is registered by two plugins: "
                                      "'first_socks' and 'second_socks' (disable one of them)")
        assert load_plugins(disabled=["first_socks"]).proxy_types.get(
            "socks5").__module__ == "bf_second_socks"
    finally:
        for name in ("first_socks", "second_socks"):
            sys.modules.pop(f"bf_{name}", None)


def test_a_registry_hook_cannot_be_a_wrapper(tmp_path, monkeypatch):
    site = install_distribution(tmp_path / "site", "bf-wrap", {"bf_wrap": '''
        from browserfarm.pluginapi import hookimpl

        @hookimpl(wrapper=True)
        def browserfarm_register_proxy_types(register):
            return (yield)
        '''}, {"wrap": "bf_wrap"})
    monkeypatch.syspath_prepend(str(site))
    try:
        with pytest.raises(PluginError, match="'wrap': browserfarm_register_proxy_types "
                                              "cannot be a wrapper"):
            load_plugins()
    finally:
        sys.modules.pop("bf_wrap", None)


def test_preferences_merge_in_plugin_name_order_whatever_the_install_order(
        tmp_path, monkeypatch):
    sites = [install_distribution(tmp_path / name, f"bf-{name}",
                                  {f"bf_{name}": prefs_plugin(name)}, {name: f"bf_{name}"})
             for name in ("alpha", "zulu")]
    expected = {"shared.pref": "zulu", "alpha.pref": True, "zulu.pref": True}
    try:
        for order in (sites, sites[::-1]):  # which distribution Python finds first
            with monkeypatch.context() as patch:
                for site in order:
                    patch.syspath_prepend(str(site))
                assert load_plugins().browser_preferences({"name": "w"}, "firefox") \
                    == expected
    finally:
        for name in ("alpha", "zulu"):
            sys.modules.pop(f"bf_{name}", None)


# ----- browserfarm.pluginapi: the import surface for plugin authors ----------------

def test_pluginapi_exports_exactly_its_all_and_every_name_resolves():
    public = {name for name in vars(pluginapi) if not name.startswith("_")}
    assert sorted(public) == sorted(pluginapi.__all__)
    assert len(set(pluginapi.__all__)) == len(pluginapi.__all__)
    for name in pluginapi.__all__:
        assert getattr(pluginapi, name) is not None, name


def test_pluginapi_names_are_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert [name for name in pluginapi.__all__ if f"`{name}" not in docs] == []


@pytest.mark.parametrize("module", ["proxy_types", "proxy_sources", "ip_check", "firefox",
                                    "firefox_prefs", "firefox_automation", "chromium",
                                    "selenium_grid"])
def test_built_in_plugins_import_only_the_pluginapi(module):
    tree = ast.parse((ROOT / "plugins" / f"{module}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert {m for m in imported if m.split(".")[0] == "browserfarm"} <= {
        "browserfarm.pluginapi"}


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
    plugins = load_plugins()
    backends = plugins.browser_backends
    assert "tinybrowser" in backends.names()
    assert "no-such-browser-binary" in backends.unavailable["missingbrowser"]
    # Written for the old single contract, which was the worker side only: it runs
    # workers, not windows, so a window can't name it.
    assert "tinybrowser" in plugins.worker_backends
    assert "tinybrowser" not in plugins.window_backends
    answer = tiny_owner("/browser/update", {"browserFingerPrint": {"coreProduct":
                                                                   "tinybrowser"}})
    assert answer.code == 211 and "browserFingerPrint.coreProduct" in answer.msg


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
