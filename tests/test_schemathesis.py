"""/openapi.json tells the truth: `schemathesis run --checks all` (every check it has)
against a farm on loopback, over every operation of the window API and the worker API
v5 except those that connect outward, finds nothing. Generated requests, valid and
invalid by the document, must get the answers the document promises: valid ones
accepted, invalid ones refused, no 5xx, answers of the documented shape and status,
``Allow`` on 405. What the run leaves out and why: tests/schemathesis.toml."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# tests/schemathesis.toml disables these: they connect outward.
OUTWARD = re.compile(r"^(/proxy/check|/browser/proxy/(check|refresh)|/browser/launch)$")
# An agent's poll waits for a command by design (tests/test_agents.py covers it).
WAITS = re.compile(r"^/agent/poll$")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, on a free loopback port, with an account and something to find."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    farm = make_farm(data_dir, f"sqlite:///{data_dir}/farm.db")
    app = create_app(farm=farm)
    new = in_db(farm, lambda: create_account(farm, "fuzz"))
    client = app.test_client()
    auth = {"Authorization": f"Bearer {new.token}"}
    group = client.post("/group/add", json={"groupName": "g"}, headers=auth).get_json()
    client.post("/tag/add", json={"name": "t"}, headers=auth)
    # One window: two of id/browserId/uuid naming different windows is a 211 that no
    # document can foresee; with one window such a pair names a missing one (404).
    client.post("/browser/update", json={"groupId": group["data"]["id"]}, headers=auth)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}", new
    finally:
        server.shutdown()
        thread.join(10)
        farm.close()


def test_every_operation_is_documented(served):
    app = served[0]
    document = app.test_client().get("/openapi.json").get_json()
    operations = [(method, path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"]
    # 15 window, 5 group, 5 tag, 7 pool, 2 proxy, 5 profile, 5 agent; 11 of the worker
    # API v5
    assert len(operations) == 55
    assert len([op for op in operations
                if not OUTWARD.match(op[1]) and not WAITS.match(op[1])]) == 50


def test_schemathesis_finds_no_failure(served, tmp_path):
    _, url, account = served
    env = os.environ | {"BF_TOKEN": account.token, "BF_V5_USER": account.v5_username,
                        "BF_V5_KEY": account.v5_access_key}
    har = tmp_path / "run.har"
    run = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
         "--checks", "all", "--no-color", "--report", "har", "--report-har-path", str(har)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-30000:]
    assert re.search(r"Tested: 50\b", output), output[-3000:]
    # The credentials got through, v5's included: not only 401s.
    answered = {(entry["request"]["method"], entry["request"]["url"].split("?")[0][len(url):],
                 entry["response"]["status"])
                for entry in json.loads(har.read_text())["log"]["entries"]}
    assert {("GET", "/5/status", 200), ("POST", "/browser/list", 200)} <= answered


@pytest.mark.parametrize("low, high", [(0, 9), (1, 65535), (5, 123), (100, 20000),
                                       (1, 2**31 - 1)])
def test_numeric_strings_are_documented_with_their_exact_range(low, high):
    from browserfarm.api.fields import digits_pattern
    pattern = re.compile(f"^{digits_pattern(low, high)}$")
    edges = {0, 1, 9, 10, low - 1, low, high, high + 1, 10 * high}
    for number in sorted(edges | set(range(0, 300)) | set(range(high - 300, high + 300))):
        if number >= 0:
            assert bool(pattern.match(str(number))) == (low <= number <= high), number
            assert bool(pattern.match(f"00{number}")) == (low <= number <= high), number
