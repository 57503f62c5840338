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


# The run is three schemathesis processes at once, one account each (accounts share
# nothing the API shows): the phases that test operations one by one (examples, coverage,
# fuzzing) over two halves of the operations, and the stateful phase, which chains
# operations by their links, over all of them. One process, CPU-bound on one core (the
# server's requests wait for it), took 90-140 s of the suite's time; the machine has two.
HALF = r"^/(browser/update$|group/|tag/|proxy/|agent/|5\b)"
ONE_BY_ONE = ("--phases", "examples,coverage,fuzzing")
RUNS = ((*ONE_BY_ONE, "--include-path-regex", HALF),
        (*ONE_BY_ONE, "--exclude-path-regex", HALF),
        ("--phases", "stateful"))


def _account(farm, client, name):
    """An account with something to find: a group, a tag and one window. One window:
    two of id/browserId/uuid naming different windows is a 211 that no document can
    foresee; with one window such a pair names a missing one (404)."""
    new = in_db(farm, lambda: create_account(farm, name))
    auth = {"Authorization": f"Bearer {new.token}"}
    group = client.post("/group/add", json={"groupName": "g"}, headers=auth).get_json()
    client.post("/tag/add", json={"name": "t"}, headers=auth)
    client.post("/browser/update", json={"groupId": group["data"]["id"]}, headers=auth)
    return new


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, on a free loopback port, with an account for each run."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    farm = make_farm(data_dir, f"sqlite:///{data_dir}/farm.db")
    app = create_app(farm=farm)
    client = app.test_client()
    accounts = [_account(farm, client, f"fuzz{n}") for n in range(len(RUNS))]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}", accounts
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
    _, url, accounts = served
    runs = []
    try:
        for n, (options, account) in enumerate(zip(RUNS, accounts)):
            env = os.environ | {"BF_TOKEN": account.token, "BF_V5_USER": account.v5_username,
                                "BF_V5_KEY": account.v5_access_key}
            with open(tmp_path / f"run{n}.log", "w") as log:  # a file: no pipe to fill
                runs.append(subprocess.Popen(
                    [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run",
                     f"{url}/openapi.json", "--checks", "all", "--no-color", *options,
                     "--report", "har", "--report-har-path", str(tmp_path / f"run{n}.har")],
                    cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT))
        for run in runs:
            run.wait(timeout=540)
    finally:
        for run in runs:  # a run still going once another failed to start or hung
            if run.poll() is None:
                run.kill()
                run.wait()
    outputs = [(tmp_path / f"run{n}.log").read_text() for n in range(len(runs))]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-30000:]
    # Every operation but those left out was tested, in one half or the other.
    tested = [int(re.search(r"Tested: (\d+)\b", output)[1]) for output in outputs[:2]]
    assert sum(tested) == 50, [output[-3000:] for output in outputs[:2]]
    assert "Stateful (in" in outputs[2], outputs[2][-3000:]
    # The credentials got through, v5's included: not only 401s.
    answered = {(entry["request"]["method"], entry["request"]["url"].split("?")[0][len(url):],
                 entry["response"]["status"])
                for n in range(len(runs))
                for entry in json.loads((tmp_path / f"run{n}.har").read_text())["log"]["entries"]}
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
