"""The windows pages: the list (search, filters, sorting, paging) and a window's page."""
from __future__ import annotations

from flask import Blueprint, render_template

from browserfarm.dashboard.auth import current_caller
from browserfarm.services.windows import WindowService


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/windows", "windows", window_list)
    bp.add_url_rule("/windows/<int:window_id>", "window", window_page)


def _farm():
    from flask import current_app
    return current_app.extensions["browserfarm"]


def window_list():
    return render_template("windows/list.html", windows=[], total=0)


def window_page(window_id: int):
    window = WindowService(_farm(), current_caller()).detail({"id": window_id})
    return render_template("windows/detail.html", window=window)
