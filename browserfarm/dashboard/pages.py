"""What every page shares: the home page, what templates see (the caller and what it
may do), and errors shown in words, as a page, not as the API's JSON."""
from __future__ import annotations

import logging

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from browserfarm import permissions
from browserfarm.errors import BadRequest, FarmError

log = logging.getLogger(__name__)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "home", lambda: redirect(url_for("dashboard.windows")))
    bp.context_processor(_template_context)
    bp.register_error_handler(FarmError, _farm_error)
    bp.register_error_handler(HTTPException, _http_error)
    bp.after_request(_page_headers)


def field_errors(error: FarmError) -> dict[str, str]:
    """A service's error by the form field it names (``InvalidInput.field``, or the
    field a request schema's 211 names in its data), for the form to show next to that
    field; ``""`` for the form as a whole."""
    field = error.data.get("field", "") if isinstance(error, BadRequest) else ""
    return {field: error.msg}


def _page_headers(response):
    """No other site's page may frame the dashboard (to trick a click on its buttons or
    into its live view), and no page (some show secrets) stays in the browser's cache
    after sign-out; assets and screenshots say their own caching."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _template_context() -> dict:
    caller = g.get("dashboard_caller")
    return {"caller": caller, "perm": permissions,
            "can": lambda permission: caller is not None and caller.can(permission)}


def _farm_error(error: FarmError):
    if error.status >= 500:
        log.error("dashboard %s %s failed: %s", request.method, request.path, error.msg)
    return render_template("error.html", status=error.status, message=error.msg), error.status


def _http_error(error: HTTPException):
    return render_template("error.html", status=error.code,
                           message=error.description), error.code or 500
