"""The agents page, and opening or closing a window on a chosen agent.

Reads and sends through ``AgentService`` as the signed-in caller, as ``/agent/*``
does: the agent takes the command over its own connection to the cloud and answers
what its Local API would. While a command runs, its fragment asks for itself again
every second (htmx) and shows how far it got; then the answer, in words.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from browserfarm.dashboard.auth import current_caller
from browserfarm.dashboard.windows import open_since
from browserfarm.errors import FarmError
from browserfarm.services.agents import AgentService
from browserfarm.services.windows import WindowService

FINISHED = ("done", "failed")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/agents", "agents", agents_page)
    bp.add_url_rule("/agents/window/<int:window_id>", "agent_window_actions",
                    window_actions)
    bp.add_url_rule("/agents/command", "agent_command_send", send, methods=["POST"])
    bp.add_url_rule("/agents/command/<int:command_id>", "agent_command", command)


def agents_page():
    agents = _service().agents()
    if request.headers.get("HX-Request"):  # the table, refreshed in place
        return render_template("agents/_table.html", agents=agents)
    return render_template("agents/list.html", agents=agents)


def window_actions(window_id: int):
    """Open and close buttons for one window, with the agents to choose from."""
    caller = current_caller()
    window = WindowService(_farm(), caller).detail({"id": window_id})
    agents = AgentService(_farm(), caller).agents()
    return render_template("agents/_window_actions.html", window=window, agents=agents)


def send():
    form = request.form
    try:
        sent = _service().send(form.get("agent", ""), form.get("action", ""),
                               {"id": form.get("window", "")}, {})
    except FarmError as error:  # in words, with its error status (htmx: dashboard.js
        # shows the page's alert in the message area)
        return render_template("agents/command.html", command={
            "status": "refused", "action": form.get("action", ""),
            "agent": form.get("agent", ""),
            "result": {"code": error.code, "msg": error.msg}}), error.status
    return _command_view(sent)


def command(command_id: int):
    return _command_view(_service().command(command_id))


def _command_view(shown: dict):
    if request.headers.get("HX-Request"):
        # With the window's status as it is now, swapped into the page in place.
        window = _window(shown.get("windowId"))
        since = open_since(current_caller().account_id, [window]) if window else {}
        return render_template("agents/_command.html", command=shown, window=window,
                               since=since.get(window["id"]) if window else None)
    return render_template("agents/command.html", command=shown)  # without JavaScript


def _window(window_id) -> dict | None:
    if not window_id:
        return None
    try:
        return WindowService(_farm(), current_caller()).detail({"id": window_id})
    except FarmError:  # deleted meanwhile, or the caller may not see it
        return None


def _service() -> AgentService:
    return AgentService(_farm(), current_caller())


def _farm():
    return current_app.extensions["browserfarm"]
