"""The embedded farm as a new user starts it: `browserfarm up` through gunicorn, then
every spec endpoint with the credentials it wrote."""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

from browserfarm.browsers import processes
from tests.conftest import free_port, wait_until

SCALE = 0.05  # BROWSERFARM_WORKER_TIME_SCALE: 60 s of worker time is 3 s here


@contextmanager
def running(args, data_dir, port, extra_env=None):
    env = {**os.environ, "BROWSERFARM_PORT": str(port),
           "BROWSERFARM_LOCAL_PORT": str(free_port()), **(extra_env or {})}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                             str(data_dir), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start:\n{proc.stdout.read()}")
                time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:  # a test may have stopped it itself
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def post(base, token, path, body):
    response = requests.post(f"{base}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


def test_up_creates_credentials_and_serves_every_spec_endpoint(tmp_path):
    port = free_port()
    data_dir = tmp_path / "var"
    with running(["up"], data_dir, port) as proc:
        path = data_dir / "credentials.json"
        assert path.stat().st_mode & 0o777 == 0o600
        creds = json.loads(path.read_text())
        base = creds["cloud_url"]
        assert base == f"http://127.0.0.1:{port}"
        assert {"token", "v5_username", "v5_access_key"} <= set(creds)
        token = creds["token"]

        status, made = post(base, token, "/browser/update", {
            "name": "windows browser", "remark": "Created via API", "proxyMethod": 2,
            "proxyType": "socks5", "host": "1.2.3.4", "port": 1020,
            "proxyUserName": "abc", "proxyPassword": "def",
            "browserFingerPrint": {"coreVersion": "118", "ostype": "PC", "os": "Win32"}})
        assert (status, made["code"]) == (200, 0)
        window = made["data"]
        other = post(base, token, "/browser/update", {})[1]["data"]
        ids = [window["id"], other["id"]]
        group = post(base, token, "/group/add", {"groupName": "g"})[1]["data"]["id"]
        calls = [
            ("/browser/update", {"id": window["id"], "name": "Modified window name"}),
            ("/browser/update/partial", {"ids": ids, "remark": "New remark"}),
            ("/browser/detail", {"uuid": window["uuid"]}),
            ("/browser/list", {"page": 0, "pageSize": 20, "groupId": group}),
            ("/browser/group/update", {"ids": ids, "groupId": group}),
            ("/browser/remark/update", {"ids": ids, "remark": "Remark info"}),
            ("/browser/proxy/update", {"ids": ids, "ipCheckService": "ip-api",
                                       "proxyMethod": 2, "proxyType": "socks5",
                                       "host": "127.0.0.1", "port": 1080,
                                       "proxyUserName": "user", "proxyPassword": "pass",
                                       "refreshProxyUrl": ""}),
            ("/browser/delete", {"id": window["id"]}),
            ("/browser/delete/ids", {"ids": [other["id"]]}),
        ]
        for path_, body in calls:
            status, answer = post(base, token, path_, body)
            assert (status, answer["code"], answer["msg"]) == (200, 0, "success"), path_
        assert post(base, token, "/browser/recycle/list", {})[1]["data"]["totalNum"] == 2
        assert post(base, "bf_wrong", "/browser/list", {})[0] == 401

        # The agent of this desktop runs too, logged into its own server.
        creds = json.loads(path.read_text())
        local = creds["local_url"]
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.post(local + "/browser/recycle/list", json={}, timeout=5,
                                       headers={"X-Cos-Local-Token": creds["local_token"]})
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the Local API did not start"
                time.sleep(0.2)
        assert answer.json()["data"]["totalNum"] == 2
        refused = requests.post(local + "/browser/list", json={}, timeout=5)
        assert refused.status_code == 401
    output = proc.stdout.read()
    assert str(path.resolve()) in output

    # A restart keeps the account, the windows and the credentials.
    with running(["up"], data_dir, port):
        again = json.loads(path.read_text())
        assert again.pop("local_url") and creds.pop("local_url")  # the port is new here
        assert again == creds
        assert post(base, token, "/browser/recycle/list", {})[1]["data"]["totalNum"] == 2


def test_serve_creates_no_account(tmp_path):
    port = free_port()
    data_dir = tmp_path / "var"
    with running(["serve"], data_dir, port):
        status, answer = post(f"http://127.0.0.1:{port}", "bf_x", "/browser/list", {})
        assert (status, answer["code"]) == (401, 401)
    assert not (data_dir / "credentials.json").exists()


def test_up_reissues_credentials_when_the_file_was_lost(tmp_path):
    port = free_port()
    data_dir = tmp_path / "var"
    with running(["up"], data_dir, port):
        first = json.loads((data_dir / "credentials.json").read_text())
    (data_dir / "credentials.json").unlink()
    with running(["up"], data_dir, port):
        second = json.loads((data_dir / "credentials.json").read_text())
        assert second["v5_username"] == first["v5_username"]
        assert second["token"] != first["token"]
        assert post(second["cloud_url"], second["token"], "/browser/list", {})[0] == 200


def test_up_runs_v5_workers_for_the_credentials_it_wrote(tmp_path, origin):
    port = free_port()
    data_dir = tmp_path / "var"
    with running(["up"], data_dir, port, {"BROWSERFARM_WORKER_TIME_SCALE": str(SCALE)}):
        creds = json.loads((data_dir / "credentials.json").read_text())
        v5 = requests.Session()
        v5.auth = (creds["v5_username"], creds["v5_access_key"])
        base = creds["cloud_url"] + "/5"
        flat = v5.get(base + "/browsers?flat=true", timeout=30).json()
        firefox = next(e for e in flat if e["browser"] == "firefox")
        made = v5.post(base + "/worker", timeout=120, json={
            **{k: firefox[k] for k in ("os", "os_version", "browser", "browser_version")},
            "url": origin.url + "/page/embedded"})
        assert made.headers["X-API-Version"] == "5"
        worker = made.json()
        assert worker["status"] == "running", worker
        shot = v5.get(f"{base}/worker/{worker['id']}/screenshot.png", timeout=60)
        assert shot.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert v5.put(f"{base}/worker/{worker['id']}/url.json", timeout=60,
                      data={"url": origin.url + "/page/moved"}).status_code == 200
        assert ("GET", "/page/moved") in [(m, p) for m, p, *_ in origin.requests]
        # A second farm on the same ports and data dir is refused before it starts
        # anything: the first one's worker runs on.
        env = {**os.environ, "BROWSERFARM_PORT": str(port),
               "BROWSERFARM_WORKER_TIME_SCALE": str(SCALE)}
        second = subprocess.run([sys.executable, "-m", "browserfarm.cli", "--data-dir",
                                 str(data_dir), "up"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode != 0 and "is in use" in second.stderr
        assert [w["id"] for w in v5.get(base + "/workers", timeout=10).json()] == [worker["id"]]
        assert v5.get(base + "/status", timeout=10).json()["running_sessions"] == 1
        assert v5.delete(f"{base}/worker/{worker['id']}", timeout=10).status_code == 422
        wait_until(lambda: v5.get(f"{base}/worker/{worker['id']}", timeout=10).json() == {},
                   60, "the worker to end at its 60 s (scaled)")
        assert v5.get(base + "/status", timeout=10).json()["used_time"] >= 60 * SCALE


def test_stopping_up_closes_and_syncs_a_window_left_open(tmp_path):
    """Ctrl-C / SIGTERM to `up`: the agent closes its windows while the API still
    answers, so each is reported closed and its profile reaches the cloud."""
    port = free_port()
    data_dir = tmp_path / "var"
    with running(["up"], data_dir, port) as proc:
        creds = json.loads((data_dir / "credentials.json").read_text())
        base, token = creds["cloud_url"], creds["token"]
        window = post(base, token, "/browser/update", {"name": "left open"})[1]["data"]
        local = creds["local_url"]
        deadline = time.monotonic() + 60
        while True:
            try:
                opened = requests.post(local + "/browser/open", json={"id": window["id"],
                                                                     "headless": True},
                                       timeout=120,
                                       headers={"X-Cos-Local-Token": creds["local_token"]})
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the Local API did not start"
                time.sleep(0.2)
        assert opened.json()["code"] == 0, opened.json()
        pid = opened.json()["data"]["pid"]
        os.killpg(proc.pid, signal.SIGTERM)  # as Ctrl-C would, to up's process group
        proc.wait(timeout=120)
    assert not processes.alive(pid)  # its Firefox was quit
    with running(["up"], data_dir, port):
        detail = post(base, token, "/browser/detail", {"id": window["id"]})[1]["data"]
        assert detail["openStatus"] == "closed"
        latest = requests.post(base + "/browser/profile/latest", json={"id": window["id"]},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert latest["code"] == 0 and latest["data"]["manifest"], latest  # its profile is there


def test_lost_credentials_of_an_account_without_an_owner_member(farm):
    """A lost credentials file of an account whose owner member was demoted made up
    crash (AttributeError): the owner token is issued without a member."""
    from browserfarm import permissions
    from browserfarm.models import ApiToken, Member
    from browserfarm.services.accounts import create_account, live_token
    from browserfarm.services.embedded import ensure_owner_credentials
    new = create_account(farm, "owner")
    Member.update(role="admin").where(Member.id == new.owner.id).execute()
    path, created = ensure_owner_credentials(farm, "http://127.0.0.1:9")
    credentials = json.loads(path.read_text())
    token = live_token(credentials["token"])
    assert created and token.account_id == new.account.id and token.member_id is None
    assert set(token.permissions) == set(permissions.OWNER)
    assert live_token(new.token) is None  # the lost one is revoked
    assert ApiToken.select().where(ApiToken.name == "owner (owner)").count() == 2
