"""What every page shares: the home page, what templates see (the caller and what it
may do), and errors shown in words, as a page, not as the API's JSON."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import humanize
from flask import Blueprint, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from browserfarm import permissions
from browserfarm.api import errors as api_errors
from browserfarm.errors import BadRequest, FarmError

log = logging.getLogger(__name__)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "home", lambda: redirect(url_for("dashboard.windows")))
    bp.context_processor(_template_context)
    bp.register_error_handler(FarmError, _farm_error)
    bp.register_error_handler(HTTPException, _http_error)
    # An unknown address is no blueprint's: a browser gets a page, API clients the
    # API's JSON (what flask-smorest's handler answers, api.errors.render).
    bp.app_errorhandler(404)(_not_found)
    bp.after_request(_page_headers)
    bp.app_template_filter("when")(when)
    bp.app_template_filter("counted")(counted)


# What a permission lets a person do, in words, for a refusal: "You can't <words>".
P = permissions
PERMISSION_WORDS = {
    P.BROWSER_LIST: "see windows", P.BROWSER_CREATE: "create windows",
    P.BROWSER_UPDATE_SINGLE: "change a window",
    P.BROWSER_UPDATE_BATCH: "change several windows at once",
    P.BROWSER_DELETE_RECYCLE: "move windows to the recycle bin",
    P.BROWSER_RESTORE: "restore windows from the recycle bin",
    P.BROWSER_DELETE_PERMANENT: "delete windows for good",
    P.BROWSER_PROXY_REVEAL: "see proxy passwords", P.BROWSER_COOKIE_REVEAL: "see cookies",
    P.BROWSER_OPEN: "open, close, watch or stop browsers",
    P.GROUP_LIST: "see groups", P.GROUP_MANAGE: "change groups",
    P.TAG_LIST: "see tags", P.TAG_MANAGE: "change tags",
    P.PROXY_LIST: "see the proxy pool", P.PROXY_MANAGE: "change the proxy pool",
    P.PROXY_CHECK: "check proxies", P.ACCOUNT_MANAGE: "manage the account",
}

# The API's terms in its messages, as a form's reader knows them.
API_TERMS = {"proxyMethod 4 (proxy pool binding)": "a proxy from the pool",
             "proxyMethod 3 (API-extracted proxy)": "a proxy extracted through the API",
             "for proxyType ": "for the proxy type "}


def field_errors(error: FarmError) -> dict[str, str]:
    """A 211's errors by the form field each names (a request schema's 211 lists them
    all in ``data["errors"]``; a service's ``InvalidInput`` names one), for the form to
    show each next to its field, without the API's field name (the form's label says
    it); ``""`` for the form as a whole."""
    if not isinstance(error, BadRequest):
        return {"": error.msg}
    named = error.data.get("errors") or {error.data.get("field", ""): error.msg}
    return {field: _in_words(_unprefixed(field, text)) for field, text in named.items()}


def _in_words(text: str) -> str:
    for term, words in API_TERMS.items():
        text = text.replace(term, words)
    return text


def _unprefixed(field: str, text: str) -> str:
    """"port: Not a valid integer." -> "Not a valid integer." (the message names the
    field the API's way)."""
    return text[len(field) + 2:] if field and text.startswith(f"{field}: ") else text


WORDS_FOR = 7 * 24 * 3600  # seconds: closer times read "3 minutes ago", older as a date


def when(value, now: datetime | None = None) -> Markup:
    """A time (the API's ISO text, or a stored naive-UTC datetime) as people read it:
    "3 minutes ago" with the exact UTC time on hover, or the UTC date and minute when
    it is more than a week away; "—" for none."""
    if not value:
        return Markup('<span class="muted">—</span>')
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # stored times are UTC
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc).replace(microsecond=0)
    delta = (now or datetime.now(timezone.utc)) - moment
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if 0 <= delta.total_seconds() < 60:
        words = "just now"
    elif abs(delta.total_seconds()) < WORDS_FOR:
        words = humanize.naturaltime(delta)
    else:
        words = moment.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat().replace("+00:00", "Z"), exact, words)


def counted(number: int, one: str, many: str | None = None) -> str:
    """"1 proxy", "2 proxies", "1,024 windows"."""
    return f"{number:,} {one if number == 1 else (many or one + 's')}"


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
    # A refusal says in words what the person can't do (the API's message, with the
    # permission's name, stays in small print).
    refused = PERMISSION_WORDS.get(error.data.get("permission")) if error.status == 403 else None
    return render_template("error.html", status=error.status, message=error.msg,
                           refused=refused), error.status


def _not_found(error: HTTPException):
    if request.accept_mimetypes.best_match(("application/json", "text/html")) != "text/html":
        return api_errors.render(error)
    return render_template("error.html", status=404,
                           message="There is no page at this address."), 404


def _http_error(error: HTTPException):
    return render_template("error.html", status=error.code,
                           message=error.description), error.code or 500
