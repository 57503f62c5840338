"""The dashboard: server-rendered pages for people at ``/``, signed in with an API token
(see auth). Its views call the same services as the API, as the token's caller, so a
page shows and does exactly what that token may.

Each page area is a module with ``register(bp)`` adding its routes to the blueprint,
and its templates in a folder of its own under templates/.
"""
from __future__ import annotations

from flask import Blueprint


def create_blueprint() -> Blueprint:
    from browserfarm.dashboard import (agents, assets, auth, collections, live, manage, pages,
                                       proxies, windows, workers)

    bp = Blueprint("dashboard", __name__, template_folder="templates",
                   static_folder="static", static_url_path="/assets/dashboard")
    for area in (auth, pages, assets, windows, manage, collections, proxies, agents, workers,
                 live):
        area.register(bp)
    return bp
