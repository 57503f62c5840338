"""The data dir is declared in one place (browserfarm.datadir): whatever a running farm
writes there is a declared entry, and the README's back-up list is its state."""
import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

import pytest
import requests

from browserfarm.datadir import STATE, DataDir
from tests.conftest import free_port, needs_firefox
from tests.test_embedded import post, running
from tests.test_file_modes import open_to_others

README = Path(__file__).resolve().parent.parent / "README.md"


@needs_firefox()
def test_everything_a_running_farm_writes_is_declared(tmp_path, origin):
    """`browserfarm up` (server, agent, runner) with a window opened and closed (profile
    archive, ZIP, logs, registry) and a recorded v5 worker (screenshot, video, locks,
    rate-limit counts)."""
    port, data_dir = free_port(), tmp_path / "var"
    with running(["up"], data_dir, port, {"BROWSERFARM_WORKER_TIME_SCALE": "0.05"}) as proc:
        creds = json.loads((data_dir / "credentials.json").read_text())
        base, token = creds["cloud_url"], creds["token"]
        window = post(base, token, "/browser/update", {"name": "declared"})[1]["data"]
        local = {"X-Cos-Local-Token": creds["local_token"]}
        deadline = time.monotonic() + 60
        while True:
            try:
                opened = requests.post(creds["local_url"] + "/browser/open", headers=local,
                                       json={"id": window["id"], "headless": True},
                                       timeout=120).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the Local API did not start"
                time.sleep(0.2)
        assert opened["code"] == 0, opened
        closed = requests.post(creds["local_url"] + "/browser/close", headers=local,
                               json={"id": window["id"]}, timeout=120).json()
        assert closed["code"] == 0 and closed["data"]["close"]["synced"], closed

        v5 = requests.Session()
        v5.auth = (creds["v5_username"], creds["v5_access_key"])
        flat = v5.get(base + "/5/browsers?flat=true", timeout=30).json()
        firefox = next(e for e in flat if e["browser"] == "firefox")
        worker = v5.post(base + "/5/worker", timeout=120, json={
            **{k: firefox[k] for k in ("os", "os_version", "browser", "browser_version")},
            "url": origin.url + "/page/declared", "browserstack.video": True}).json()
        assert worker["status"] == "running", worker
        shot = v5.get(f"{base}/5/worker/{worker['id']}/screenshot.png", timeout=60)
        assert shot.status_code == 200
        deadline = time.monotonic() + 60
        while v5.get(f"{base}/5/worker/{worker['id']}", timeout=10).json() != {}:
            assert time.monotonic() < deadline, "the worker did not end"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)

    data = DataDir(data_dir)
    found = {p.relative_to(data_dir) for p in data_dir.rglob("*")}
    assert {p for p in found if DataDir.entry_of(p) is None} == set()
    for name in ("database", "secret_key", "credentials", "agent_login", "profile_chunks",
                 "window_profiles", "profile_zips", "videos", "logs", "rate_limit"):
        assert getattr(data, name).exists(), name  # the flow reached what it should
    assert data.video(worker["id"]).exists()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    # Other users of the machine: nothing the farm or its browsers wrote is open to them.
    assert open_to_others(data_dir) == []
    for entry in DataDir.entries():
        path = getattr(data, entry.attr)
        if entry.private and path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, entry.name


def test_paths_asked_for_are_declared(tmp_path):
    data = DataDir(tmp_path)
    asked = [data.profile_chunk(1, "ab" * 32), data.account_chunks_lock(1),
             data.shared_profile_chunk("ab" * 32), data.window_profile("u"),
             data.pending_upload("u"),
             data.launch_config("u"), data.profile_zip("u"), data.window_log("u"),
             data.worker_log(1), data.warm_log, data.video(1), data.worker_lock(1),
             data.runner_lock("host:runner"), data.worker_profile(1), data.warm_profile("w"),
             data.relay_socket("u")]
    for entry in DataDir.entries():
        asked.append(getattr(data, entry.attr))
    for path in asked:
        assert DataDir.entry_of(path.relative_to(tmp_path)) is not None, path
    assert DataDir.entry_of("browserfarm.db-wal") is DataDir.database
    assert DataDir.entry_of("stray.txt") is None


def test_prepared_folders_and_private_files_are_closed_to_others(tmp_path):
    data = DataDir(tmp_path / "var")
    lock = data.prepare(data.worker_lock(7))
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    assert lock.parent.stat().st_mode & 0o777 == 0o700
    data.write_private(data.credentials, "{}")
    assert data.credentials.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in data.root.iterdir()) == ["credentials.json", "locks"]


def test_a_relay_socket_is_short_and_in_a_folder_of_ours_alone(tmp_path):
    socket = DataDir(tmp_path).relay_socket("../../a/window/uuid")
    assert socket.parent == tmp_path / "relays" and len(socket.name) == 16
    deep = DataDir(tmp_path / ("x" * 100))  # a socket path: <108 bytes
    socket = deep.relay_socket("u")
    folder = socket.parent
    assert folder.parent == Path(tempfile.gettempdir()) and folder.stat().st_mode & 0o777 == 0o700
    folder.rmdir()  # an adopted window's, removed when its agent stopped: made again
    assert deep.prepare(socket) == socket and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)  # as another user of the temp dir could have made it
    with pytest.raises(PermissionError):
        deep.prepare(socket)
    folder.rmdir()


def test_the_readme_backs_up_exactly_the_state():
    section = README.read_text().split("## Back up and restore", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- `([^`]+)`", section.split("### What to copy", 1)[1]
                        .split("\n### ", 1)[0], re.MULTILINE)
    state = [e.name for e in DataDir.entries() if e.kind == STATE]
    assert listed == state
    deletable = section.split("### What can be deleted", 1)[1]
    assert {e.name for e in DataDir.entries() if e.kind != STATE} == \
        set(re.findall(r"`([^`]+)`", deletable))
