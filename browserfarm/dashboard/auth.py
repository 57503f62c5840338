"""Signing in to the dashboard with an API token, the session that follows, and CSRF.

The session is Flask's signed cookie, keyed by a key derived from the farm's secret
(``ProxyCipher.derive``): it holds a random session key, never the raw token. The
sign-in is a row on the server (``DashboardSession``: the key's SHA-256, the token,
when it expires), read with the token on each request: signing out deletes the row,
so a copy of the cookie is worth nothing after it; a revoked token ends its sessions
at once; and the caller has exactly the token's permissions. (A row per sign-in, not
a per-token "valid since": signing out in one browser leaves the person's other
browsers signed in.) Every state-changing request
carries a CSRF token (Flask-WTF's, in the form or the ``X-CSRFToken`` header).
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from browserfarm.models import ApiToken, DashboardSession, utcnow
from browserfarm.permissions import Caller
from browserfarm.security import digest
from browserfarm.services.accounts import live_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRFToken"
# Pages a person not signed in may see.
PUBLIC_ENDPOINTS = {"dashboard.signin", "dashboard.static", "dashboard.npm",
                    # a live view's share link: live.py checks the link instead
                    "dashboard.live_shared", "dashboard.live_shared_websocket"}


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie Secure when the request came over
    HTTPS (a farm served on plain http on loopback still signs in)."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure

    def should_set_cookie(self, app, session) -> bool:
        # A refused forgery comes without the cookie (SameSite=Lax): its answer page asks
        # for a CSRF token, which starts a new session whose cookie would replace the
        # person's and sign them out. A refused request changes nothing, nor the cookie.
        if g.get("csrf_refused"):
            return False
        return super().should_set_cookie(app, session)


def current_caller() -> Caller:
    """The caller of the token that signed in (set for every signed-in page)."""
    return g.dashboard_caller


def register(bp: Blueprint) -> None:
    bp.record_once(lambda state: _configure(state.app))
    bp.before_request(_check_request)
    bp.add_url_rule("/signin", "signin", signin, methods=["GET", "POST"])
    bp.add_url_rule("/signout", "signout", signout, methods=["POST"])
    bp.app_context_processor(lambda: {"csrf_token": generate_csrf})


def _configure(app) -> None:
    farm = app.extensions["browserfarm"]
    app.secret_key = farm.cipher.derive("dashboard session")
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="browserfarm_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=farm.settings.dashboard_session_hours),
        # The CSRF token lives as long as the session it belongs to.
        WTF_CSRF_TIME_LIMIT=None,
    )


def _check_request():
    if request.method not in SAFE_METHODS:
        try:
            validate_csrf(request.form.get("csrf_token") or request.headers.get(CSRF_HEADER))
        except ValidationError as error:
            g.csrf_refused = True
            return render_template("auth/refused.html", reason=str(error)), 400
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    caller = _session_caller()
    if caller is None:
        if session.get("key") is not None:
            session.clear()
            flash("Your session ended (it expired, or its token was revoked): "
                  "sign in again.", "error")
        if request.headers.get("HX-Request"):  # htmx: make the browser go there
            return "", 401, {"HX-Redirect": url_for("dashboard.signin")}
        return redirect(url_for("dashboard.signin", next=request.full_path.rstrip("?")))
    g.dashboard_caller = caller
    return None


def _session_caller() -> Caller | None:
    key = session.get("key")
    if not isinstance(key, str):
        return None
    token = (ApiToken.select().join(DashboardSession)
             .where(DashboardSession.key_hash == digest(key),
                    DashboardSession.expires_at > utcnow(),
                    ApiToken.revoked_at.is_null()).first())
    if token is None:
        return None
    return Caller(account_id=token.account_id, permissions=frozenset(token.permissions),
                  token_id=token.id)


def signin():
    next_path = _local(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/signin.html", next=next_path)
    token = live_token(request.form.get("token", "").strip())
    if token is None:
        return render_template(
            "auth/signin.html", next=next_path,
            error="This token is not valid: it is unknown or was revoked. Paste a whole "
                  "API token (it starts with bf_)."), 401
    session.clear()  # nothing of a session from before the sign-in is kept
    session.permanent = True
    session["key"] = _start_session(token)
    flash(f"Signed in with the token {token.name!r}.", "success")
    return redirect(next_path or url_for("dashboard.home"))


def _start_session(token: ApiToken) -> str:
    """A new server-side session of ``token``; its key, for the cookie. Expired ones
    of anyone go (nothing else deletes them)."""
    now, key = utcnow(), secrets.token_urlsafe(32)
    DashboardSession.delete().where(DashboardSession.expires_at <= now).execute()
    DashboardSession.create(key_hash=digest(key), token=token, created_at=now,
                            expires_at=now + current_app.permanent_session_lifetime)
    return key


def signout():
    key = session.get("key")
    if isinstance(key, str):  # ended on the server: a copy of the cookie is no use
        DashboardSession.delete().where(DashboardSession.key_hash == digest(key)).execute()
    session.clear()
    flash("Signed out.", "success")
    return redirect(url_for("dashboard.signin"))


def _local(path: str | None) -> str | None:
    """``path`` if it is a path on this site (no other host to be sent to)."""
    if not path or not path.startswith("/") or path.startswith("//"):
        return None
    parts = urlsplit(path)
    return path if not parts.scheme and not parts.netloc and "\\" not in path else None
