"""An existing v5 client, unchanged: npm's "browserstack" (fetched at set-up by
scripts/ensure-npm-packages), pointed at a farm with a runner, on real Firefox."""
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from browserfarm.app import create_app
from browserfarm.services.accounts import create_account
from tests.conftest import in_db, make_farm, needs_firefox, started_runner

CLIENT_DIR = Path(__file__).resolve().parent.parent / ".cache" / "v5-client"
pytestmark = needs_firefox()


def test_the_node_client_lists_creates_screenshots_moves_lists_and_ends(tmp_path, sqlite_url,
                                                                        origin):
    if not (CLIENT_DIR / "node_modules" / "browserstack").exists():
        pytest.fail("the node client is missing: run scripts/ensure-npm-packages")
    farm = make_farm(tmp_path / "data", sqlite_url, worker_time_scale=0.05)
    new = in_db(farm, lambda: create_account(farm, "node"))
    server = make_server("127.0.0.1", 0, create_app(farm=farm), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        with started_runner(farm, "node-runner"):
            os_version = farm.catalogue.entries()[0]["os_version"]
            done = subprocess.run(
                ["node", str(Path(__file__).with_name("v5_client.js"))],
                capture_output=True, text=True, timeout=240,
                env={**os.environ, "CLIENT_DIR": str(CLIENT_DIR),
                     "PORT": str(server.server_port), "V5_USERNAME": new.v5_username,
                     "V5_ACCESS_KEY": new.v5_access_key, "OS_VERSION": os_version,
                     "PAGE": origin.url})
    finally:
        server.shutdown()
        serving.join(60)
        farm.close()
    assert done.returncode == 0, done.stderr
    steps = {line["step"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert any(b["browser"] == "firefox" for b in steps["getBrowsers"]["value"])
    worker = steps["createWorker"]["value"]
    assert worker["status"] == "running" and isinstance(worker["id"], int)
    assert steps["getWorker"]["value"]["status"] == "running"
    assert steps["takeScreenshot"]["value"]["url"].endswith(".png")
    assert "error" not in steps["changeUrl"], steps["changeUrl"]
    assert ("GET", "/page/changed") in [(m, p) for m, p, *_ in origin.requests]
    assert [w["id"] for w in steps["getWorkers"]["value"]] == [worker["id"]]
    assert steps["getApiStatus"]["value"]["running_sessions"] == 1
    # Within its first 60 s (scaled): the spec's 422, which the client reports.
    assert "60 seconds" in steps["terminateWorker"]["error"]
    assert steps["createWorkerInvalid"]["error"] == (
        "Validation Failed - `os_version` required, `url` required, `browser` required, "
        "`browser_version` required")
