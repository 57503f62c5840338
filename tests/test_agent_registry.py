"""The agent's registry of open windows: what it writes for a restarted agent, and
that windows opened and closed from many threads at once leave it whole (no Firefox
needed: the windows' relays are real, their browsers only handles)."""
import json
import stat
import threading

import pytest

from browserfarm.agent.registry import OpenWindow, Registry
from browserfarm.agent.relays import WindowRelays
from browserfarm.browsers.handles import LocalHandle
from browserfarm.datadir import DataDir
from browserfarm.net.proxy import ProxyOptions, ProxySettings
from browserfarm.plugins import load_plugins


@pytest.fixture
def relays():
    relays = WindowRelays(load_plugins(), ProxyOptions())
    yield relays
    relays.close()


def a_window(data: DataDir, relays: WindowRelays, uuid: str, number: int) -> OpenWindow:
    relay = relays.start(ProxySettings("direct"), allow_udp=number % 2 == 0)
    return OpenWindow(uuid=uuid, id=number, pid=1000 + number,
                      handle=LocalHandle("firefox", pid=1000 + number,
                                         marionette_port=2000 + number),
                      relay=relay, profile_dir=data.window_profile(uuid),
                      config_path=data.launch_config(uuid))


def test_a_restarted_agent_reads_back_what_was_open(tmp_path, relays):
    data = DataDir(tmp_path)
    first = Registry(data)
    window = a_window(data, relays, "w-1", 1)
    first.add(window)
    assert stat.S_IMODE(data.open_windows.stat().st_mode) == 0o600  # proxy credentials

    left = Registry(data).left_behind()
    assert list(left) == ["w-1"]
    relays.stop(window.relay)  # the agent died: its relay went with it
    saved = left["w-1"]["relay"]
    again = relays.start(ProxySettings(**saved["proxy"]), saved["allowUdp"],
                         port=saved["port"])
    adopted = OpenWindow.from_entry("w-1", left["w-1"], again)
    assert adopted.entry() == window.entry()
    assert adopted.handle == window.handle and adopted.relay.port == window.relay.port


def test_windows_opened_and_closed_from_many_threads_leave_it_whole(tmp_path, relays):
    data = DataDir(tmp_path)
    registry = Registry(data)
    windows = [a_window(data, relays, f"w-{n}", n) for n in range(40)]
    failures = []

    def open_and_close(mine):
        try:
            for window in mine:
                registry.add(window)
                registry.find({"id": window.id})
                [w.pid for w in registry.windows()]  # as /browser/pids reads them
            for window in mine[::2]:
                registry.remove(window.uuid)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_and_close, args=(windows[n::8],))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    still_open = {w.uuid for n in range(8) for w in windows[n::8][1::2]}
    assert {w.uuid for w in registry.windows()} == still_open
    assert set(json.loads(data.open_windows.read_text())) == still_open
    assert sorted(p.name for p in tmp_path.iterdir()) == ["open-windows.json"]
