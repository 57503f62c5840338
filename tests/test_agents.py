"""Agents known to the cloud, and windows opened and closed on a chosen agent through
the cloud: the agent polls over its own outbound connection (no Local API server runs
in these tests: it listens on no port) and answers as the Local API does."""
import os
import re
import threading
from datetime import timedelta

import pytest
import requests
from werkzeug.serving import make_server

from browserfarm.agent import Agent, Login
from browserfarm.agent.commands import local_answer
from browserfarm.api.local import create_local_app
from browserfarm.app import create_app
from browserfarm.browsers import processes
from browserfarm.browsers.handles import LocalHandle
from browserfarm.models import AgentCommand, KnownAgent, utcnow
from browserfarm.plugins import load_plugins
from browserfarm.services.accounts import create_account, revoke_token
from browserfarm_plugins.firefox import Firefox
from tests.conftest import in_db, make_farm, needs_firefox, wait_until


def _agent_seen(farm, name: str, **changes):
    in_db(farm, lambda: KnownAgent.update(**changes).where(KnownAgent.name == name)
          .execute())


# ----- the API, without a browser ---------------------------------------------------

def test_agents_report_themselves_and_take_commands_of_their_account(
        farm, owner, stranger, token_with):
    window = owner("/browser/update", {"name": "shop"}).data
    seen = owner("/agent/poll", {"name": "desk:1", "machine": "desk", "version": "1.2",
                                 "wait": 0})
    assert (seen.code, seen.data) == (0, {"command": None}), seen.body
    [agent] = owner("/agent/list").data["list"]
    assert agent["name"] == "desk:1" and agent["machine"] == "desk"
    assert agent["version"] == "1.2" and agent["online"] is True and agent["windows"] == []

    sent = owner("/agent/command", {"agent": "desk:1", "action": "open", "id": window["id"],
                                    "headless": True})
    assert sent.code == 0 and sent.data["status"] == "queued", sent.body
    poll = {"name": "desk:1", "machine": "desk"}
    taken = owner("/agent/poll", {**poll, "wait": 1}).data["command"]
    assert taken == {"id": sent.data["id"], "action": "open",
                     "body": {"uuid": window["uuid"], "headless": True}}
    assert owner("/agent/command/detail", {"id": taken["id"]}).data["status"] == "running"
    # Nobody else takes it: not another agent, not the same one again.
    assert owner("/agent/poll", {**poll, "wait": 0}).data["command"] is None
    answer = {"code": 211, "msg": "headless: must be true or false",
              "data": {"field": "headless"}}
    done = owner("/agent/result", {"name": "desk:1", "id": taken["id"], "result": answer})
    assert done.data["status"] == "failed" and done.data["result"] == answer, done.body
    again = owner("/agent/result", {"name": "desk:1", "id": taken["id"], "result": answer})
    assert again.status == 422 and "no longer running" in again.msg

    # Another account: neither the window nor the agent are there for it.
    stranger("/agent/poll", {"name": "desk:9", "wait": 0})
    foreign_window = stranger("/agent/command", {"agent": "desk:9", "action": "open",
                                                 "id": window["id"]})
    assert (foreign_window.status, foreign_window.code) == (404, 404), foreign_window.body
    own = stranger("/browser/update", {"name": "theirs"}).data
    foreign_agent = stranger("/agent/command", {"agent": "desk:1", "action": "close",
                                                "id": own["id"]})
    assert foreign_agent.code == 211 and foreign_agent.body["data"]["field"] == "agent"
    assert "no agent named 'desk:1'" in foreign_agent.msg
    assert [a["name"] for a in stranger("/agent/list").data["list"]] == ["desk:9"]
    assert stranger("/agent/command/detail", {"id": taken["id"]}).code == 404
    assert stranger("/agent/result", {"name": "desk:1", "id": taken["id"],
                                      "result": answer}).code == 404

    # An agent not seen lately is offline: a command for it is refused in words.
    _agent_seen(farm, "desk:1", seen_at=utcnow() - timedelta(minutes=5))
    assert owner("/agent/list").data["list"][0]["online"] is False
    offline = owner("/agent/command", {"agent": "desk:1", "action": "open",
                                       "uuid": window["uuid"]})
    assert (offline.status, offline.code) == (422, 211), offline.body
    assert offline.msg.startswith("The agent desk:1 on desk is offline (last seen 5 min "
                                  "ago): start `browserfarm local` there")

    # A command no agent takes in time fails, saying so.
    _agent_seen(farm, "desk:1", seen_at=utcnow())
    queued = owner("/agent/command", {"agent": "desk:1", "action": "close",
                                      "id": window["id"]}).data
    in_db(farm, lambda: AgentCommand.update(expires_at=utcnow() - timedelta(seconds=1))
          .where(AgentCommand.id == queued["id"]).execute())
    expired = owner("/agent/command/detail", {"id": queued["id"]}).data
    assert expired["status"] == "failed"
    assert expired["result"]["msg"].startswith("No agent took the command within 30 s")

    # Who may do what: a read-only member sees agents, sends nothing; no agent polls
    # without browser:open.
    reader = token_with(role="read-only")
    assert reader("/agent/list").code == 0
    refused = reader("/agent/command", {"agent": "desk:1", "action": "open",
                                        "id": window["id"]})
    assert (refused.status, refused.body["data"]) == (403, {"permission": "browser:open"})
    assert reader("/agent/poll", {"name": "desk:2", "wait": 0}).status == 403
    assert owner("/agent/command", {"agent": "desk:1", "action": "reboot",
                                    "id": window["id"]}).code == 211


def test_an_agents_name_is_bound_to_the_token_it_first_polled_with(
        farm, owner, token_with):
    """Any browser:open token of the account could poll under another agent's name
    and take its commands: a name is its first token's until that token is revoked."""
    window = owner("/browser/update", {"name": "shop"}).data
    desk, intruder = token_with(role="agent"), token_with(role="agent")
    assert desk("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 0}).code == 0
    sent = owner("/agent/command", {"agent": "desk:1", "action": "open", "id": window["id"]})
    refused = intruder("/agent/poll", {"name": "desk:1", "machine": "evil", "wait": 0})
    assert (refused.status, refused.code, refused.body["data"]) == (403, 403,
                                                                   {"field": "name"})
    assert refused.msg.startswith("The agent name 'desk:1' belongs to another token of "
                                  "this account")
    assert owner("/agent/command/detail", {"id": sent.data["id"]}).data["status"] == "queued"
    [shown] = owner("/agent/list").data["list"]
    assert shown["machine"] == "desk"  # the refused poll changed nothing
    taken = desk("/agent/poll", {"name": "desk:1", "wait": 0}).data["command"]
    assert taken["id"] == sent.data["id"]
    forged = intruder("/agent/result", {"name": "desk:1", "id": taken["id"], "result": {
        "code": 0, "msg": "Browser opened"}})
    assert (forged.status, forged.body["data"]) == (403, {"field": "name"})
    assert owner("/agent/command/detail", {"id": taken["id"]}).data["status"] == "running"
    answered = desk("/agent/result", {"name": "desk:1", "id": taken["id"], "result": {
        "code": 0, "msg": "Browser opened"}})
    assert answered.data["status"] == "done", answered.body

    # Logged in again with a new token, the old one revoked: the name (and its row)
    # goes to the new token, and the old one may no longer use it.
    in_db(farm, lambda: revoke_token(farm, raw=desk.token))
    again = token_with(role="agent")
    assert again("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 0}).code == 0
    assert intruder("/agent/poll", {"name": "desk:1", "wait": 0}).status == 403
    assert [a["name"] for a in owner("/agent/list").data["list"]] == ["desk:1"]

    # An agent known from before names were bound: bound at its next poll.
    _agent_seen(farm, "desk:1", token=None)
    assert intruder("/agent/poll", {"name": "desk:1", "wait": 0}).code == 0
    assert again("/agent/poll", {"name": "desk:1", "wait": 0}).status == 403


def test_a_restarted_agent_keeps_its_name(tmp_path):
    """Its default name is per machine and data dir, not per process: a restart reuses
    its row in the agents list (it was <host>:<pid>, a new agent at every start)."""
    import subprocess
    import sys
    script = ("import sys; from browserfarm.agent import Agent, Login; "
              "from browserfarm.plugins import load_plugins; "
              "a = Agent(sys.argv[1], load_plugins(), login=Login(local_token='t')); "
              "print(a.name); a.shutdown()")

    def name(data_dir):
        return subprocess.run([sys.executable, "-c", script, str(data_dir)], check=True,
                              capture_output=True, text=True, timeout=60).stdout.strip()
    first, again, other = name(tmp_path / "a"), name(tmp_path / "a"), name(tmp_path / "b")
    assert first == again and first.startswith(os.uname().nodename + ":")
    assert other != first


def test_a_command_answers_what_the_local_api_answers(tmp_path):
    """An error, through the same flow: the command's answer is the Local API's."""
    agent = Agent(tmp_path / "agent", load_plugins(), login=Login(
        server="http://127.0.0.1:9", token="t", local_token="local"))
    try:
        local = create_local_app(agent).test_client()
        for action, path, body in (("open", "/browser/open", {"uuid": "x", "ids": []}),
                                   ("close", "/browser/close", {}),
                                   ("open", "/browser/open",
                                    {"id": 1, "headless": "maybe"})):
            expected = local.post(path, json=body, headers={
                "X-Cos-Local-Token": "local"}).get_json()
            assert expected["code"] == 211
            assert local_answer(agent, action, body) == expected
    finally:
        agent.shutdown()


# ----- the dashboard ------------------------------------------------------------------

def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _signed_in(client, token: str) -> str:
    """Signs the test client in; a CSRF token of its session."""
    page = client.get("/signin").get_data(as_text=True)
    client.post("/signin", data={"csrf_token": _csrf(page), "token": token})
    return _csrf(client.get("/agents").get_data(as_text=True))


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_dashboard_lists_agents_and_opens_a_window_on_one(app, farm, owner, token_with):
    window = owner("/browser/update", {"name": "shop"}).data
    owner("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 0})
    people = app.test_client()
    csrf = _signed_in(people, owner.token)
    shown = _text(people.get("/agents").get_data(as_text=True))
    assert "desk:1 desk online" in shown

    # The window's page offers the buttons, which offer the online agents.
    page = people.get(f"/windows/{window['id']}").get_data(as_text=True)
    assert f'hx-get="/agents/window/{window["id"]}"' in page
    buttons = people.get(f"/agents/window/{window['id']}").get_data(as_text=True)
    assert '<option value="desk:1"' in buttons and 'value="open">Open</button>' in buttons

    htmx = {"HX-Request": "true", "X-CSRFToken": csrf}
    sent = people.post("/agents/command", data={"window": window["id"], "agent": "desk:1",
                                                 "action": "open"}, headers=htmx)
    progress = sent.get_data(as_text=True)
    assert "Waiting for the agent desk:1 to take the command" in _text(progress)
    path = re.search(r'hx-get="(/agents/command/\d+)" hx-trigger="every 1s"', progress)[1]
    taken = owner("/agent/poll", {"name": "desk:1", "machine": "desk", "wait": 1})
    assert "Opening the window on desk:1" in _text(people.get(path, headers=htmx)
                                                    .get_data(as_text=True))
    owner("/agent/result", {"name": "desk:1", "id": taken.data["command"]["id"], "result": {
        "code": 0, "msg": "Browser opened", "data": {"pid": 4321, "marionettePort": 2828}}})
    finished = people.get(path, headers=htmx).get_data(as_text=True)
    assert "Opened on desk:1." in _text(finished) and "Marionette port 2828" in finished
    assert "every 1s" not in finished  # no more asking

    # An agent gone quiet: the answer says so, in words, with an error status.
    _agent_seen(farm, "desk:1", seen_at=utcnow() - timedelta(hours=3))
    refused = people.post("/agents/command", headers=htmx, data={
        "window": window["id"], "agent": "desk:1", "action": "close"})
    assert refused.status_code == 422  # a refusal is an error (htmx: shown as one)
    assert ("Could not close on desk:1: The agent desk:1 on desk is offline (last seen 3 h "
            "ago)") in _text(refused.get_data(as_text=True))
    assert "desk:1 desk offline" in _text(people.get("/agents").get_data(as_text=True))
    # Without the CSRF token, nothing is sent.
    forged = people.post("/agents/command", data={"window": window["id"], "agent": "desk:1",
                                                   "action": "open"})
    assert forged.status_code == 400

    # A read-only member sees the agents, gets no buttons, and sends nothing.
    _agent_seen(farm, "desk:1", seen_at=utcnow())
    reader = app.test_client()
    csrf = _signed_in(reader, token_with(role="read-only").token)
    assert "desk:1" in reader.get("/agents").get_data(as_text=True)
    assert "/agents/window/" not in reader.get(f"/windows/{window['id']}").get_data(
        as_text=True)
    denied = reader.post("/agents/command", data={"window": window["id"], "agent": "desk:1",
                                                   "action": "open"},
                         headers={"HX-Request": "true", "X-CSRFToken": csrf})
    assert denied.status_code == 403
    assert "requires browser:open" in _text(denied.get_data(as_text=True))
    count = in_db(farm, lambda: AgentCommand.select().count())
    assert count == 1  # only the owner's open


# ----- a real agent and a real window -------------------------------------------------

@pytest.fixture
def cloud(tmp_path, sqlite_url):
    """The cloud API on a real HTTP server: its URL, farm and owner's token."""
    farm = make_farm(tmp_path / "cloud", sqlite_url)
    server = make_server("127.0.0.1", 0, create_app(farm=farm), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    owner = in_db(farm, lambda: create_account(farm, "acme"))
    yield f"http://127.0.0.1:{server.server_port}", farm, owner.token
    # A poll the stopped agent left waits out its wait before the database closes.
    wait_until(lambda: not any("process_request" in t.name for t in threading.enumerate()),
               30, "the requests in flight to end")
    server.shutdown()
    thread.join(10)
    farm.close()


def _call(cloud, path, body) -> dict:
    url, _, token = cloud
    return requests.post(url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"}).json()


def _finished(cloud, command_id: int):
    command = _call(cloud, "/agent/command/detail", {"id": command_id})["data"]
    return command if command["status"] in ("done", "failed") else None


@needs_firefox()
def test_a_window_opens_and_closes_on_an_agent_through_the_cloud(tmp_path, cloud):
    url, _, token = cloud
    agent = Agent(tmp_path / "agent", load_plugins(), name="desk:1",
                  login=Login(server=url, token=token, local_token="local"),
                  window_display="headless")
    agent.commands.wait = 2  # s a poll waits in the cloud (a stopped agent's too)
    try:
        agent.commands.start()  # and no Local API server: nothing listens here
        listed = wait_until(lambda: _call(cloud, "/agent/list", {})["data"]["list"], 15,
                            "the agent to report itself")
        assert listed[0]["name"] == "desk:1" and listed[0]["online"] is True
        window = _call(cloud, "/browser/update", {"name": "shop"})["data"]

        sent = _call(cloud, "/agent/command", {"agent": "desk:1", "action": "open",
                                               "uuid": window["uuid"]})
        assert sent["code"] == 0, sent
        opened = wait_until(lambda: _finished(cloud, sent["data"]["id"]), 120,
                            "the open to finish")
        assert opened["status"] == "done", opened
        result = opened["result"]
        assert (result["code"], result["msg"]) == (0, "Browser opened")
        assert result["data"]["uuid"] == window["uuid"] and result["data"]["pid"] > 0
        # Really open: its automation port answers.
        client = Firefox.attach(LocalHandle(
            "firefox", pid=result["data"]["pid"],
            marionette_port=result["data"]["marionettePort"]))
        assert client.execute_script("return 6 * 7") == 42
        client.delete_session()
        [shown] = _call(cloud, "/agent/list", {})["data"]["list"]
        assert [(w["uuid"], w["openStatus"]) for w in shown["windows"]] == [
            (window["uuid"], "opened")]

        # Closed from the dashboard, as a person does: its fragment shows the progress.
        person = requests.Session()
        csrf = _csrf(person.get(url + "/signin", timeout=10).text)
        person.post(url + "/signin", data={"csrf_token": csrf, "token": token}, timeout=10)
        csrf = _csrf(person.get(url + "/agents", timeout=10).text)  # the session's own
        htmx = {"HX-Request": "true", "X-CSRFToken": csrf}
        progress = person.post(url + "/agents/command", timeout=10, headers=htmx, data={
            "window": window["id"], "agent": "desk:1", "action": "close"}).text
        path = re.search(r'hx-get="(/agents/command/\d+)"', progress)[1]
        closed = wait_until(lambda: "every 1s" not in (seen := person.get(
            url + path, headers=htmx, timeout=10).text) and seen, 60, "the close to finish")
        assert "Closed on desk:1." in _text(closed), closed
        assert not processes.exists(result["data"]["pid"])
        assert _call(cloud, "/browser/detail", {"id": window["id"]})["data"][
            "openStatus"] == "closed"
        assert _call(cloud, "/agent/list", {})["data"]["list"][0]["windows"] == []
    finally:
        agent.shutdown()  # stops the poll waiting in the cloud at once
    assert not agent.commands._thread.is_alive()


def test_a_poll_ends_when_its_agent_hangs_up(cloud):
    """An agent stopped in the middle of a poll must not leave the cloud waiting out
    the poll (a server thread held, `browserfarm up` slow to stop): once the agent's
    connection closes, the poll ends and takes no command meant for a live agent."""
    import json
    import socket
    import time

    url, farm, token = cloud
    port = int(url.rsplit(":", 1)[1])
    _call(cloud, "/agent/poll", {"name": "desk:2", "wait": 0})  # known, online
    window = _call(cloud, "/browser/update", {"name": "shop"})["data"]
    body = json.dumps({"name": "desk:2", "wait": 25}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as hanging:
        hanging.sendall(b"POST /agent/poll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Authorization: Bearer " + token.encode() + b"\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        wait_until(lambda: any("process_request" in t.name for t in threading.enumerate()),
                   10, "the poll to be waiting")
        time.sleep(0.5)  # well into its wait
    time.sleep(2)  # ordering, not timing: the hang-up is seen within a look at the queue
    sent = _call(cloud, "/agent/command", {"agent": "desk:2", "action": "open",
                                           "uuid": window["uuid"]})
    assert sent["code"] == 0, sent
    wait_until(lambda: not any("process_request" in t.name for t in threading.enumerate()),
               30, "the hung-up poll to end")
    detail = _call(cloud, "/agent/command/detail", {"id": sent["data"]["id"]})["data"]
    assert detail["status"] == "queued", detail  # the dead poll took nothing


def test_agents_polls_leave_threads_for_the_api(tmp_path, sqlite_url):
    """Each agent's long poll (and each live viewer) holds a server thread while it
    waits: under `browserfarm serve` (gunicorn gthread) with 8 threads a process, 10
    agents made every other call of that process wait up to 25 s. With the default
    threads (BROWSERFARM_THREADS, serve --threads) the API still answers at once."""
    import json
    import socket
    import subprocess
    import sys

    farm = make_farm(tmp_path / "data", sqlite_url)
    token = in_db(farm, lambda: create_account(farm, "acme")).token
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "browserfarm.cli", "--data-dir", str(tmp_path / "data"),
             "serve", "--port", str(port), "--workers", "1"],
            env=os.environ | {"DATABASE_URL": sqlite_url}, stdout=log, stderr=log,
            start_new_session=True)
    headers = {"Authorization": f"Bearer {token}"}
    polls = []
    try:
        wait_until(lambda: _answers(url + "/openapi.json"), 60, "the server to start")
        for number in range(10):  # 10 agents waiting for commands
            body = json.dumps({"name": f"desk:{number}", "wait": 25}).encode()
            poll = socket.create_connection(("127.0.0.1", port), timeout=10)
            poll.sendall(b"POST /agent/poll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nAuthorization: Bearer "
                         + token.encode() + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            polls.append(poll)
        # Each poll holds a thread from its start (the agent is seen) to its end.
        wait_until(lambda: in_db(farm, lambda: KnownAgent.select().count()) == 10, 20,
                   "every agent's poll to be taken")
        answer = requests.post(url + "/browser/list", json={}, headers=headers, timeout=5)
        assert answer.json()["code"] == 0
    finally:
        for poll in polls:  # their polls end (the server sees the hang-up)
            poll.close()
        server.terminate()
        server.wait(30)
        farm.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
