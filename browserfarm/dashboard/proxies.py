"""The proxy pool page: list, add, edit, delete, and check (the exit IP and its country).

Each form is loaded by the API's own request schema (``/proxy/*``) and done by the
API's service. A check is the API's ``/proxy/check`` of a pool proxy; the page asks it
with htmx, showing "Checking…" meanwhile, and puts the result in words in the row.
"""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   url_for)

from browserfarm import permissions as perm
from browserfarm.api import proxies as api
from browserfarm.dashboard.auth import current_caller
from browserfarm.dashboard.forms import load
from browserfarm.dashboard.pages import field_errors
from browserfarm.errors import BadRequest
from browserfarm.services.proxies import ProxyService

PAGE_SIZE = 50
FIELDS = ("proxyType", "host", "port", "proxyUserName", "proxyPassword", "remark")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/proxies", "proxies", pool_page)
    bp.add_url_rule("/proxies/add", "proxy_add", add, methods=["POST"])
    bp.add_url_rule("/proxies/<int:proxy_id>/edit", "proxy_edit", edit,
                    methods=["GET", "POST"])
    bp.add_url_rule("/proxies/<int:proxy_id>/delete", "proxy_delete", delete,
                    methods=["POST"])
    bp.add_url_rule("/proxies/<int:proxy_id>/check", "proxy_check", check, methods=["POST"])


def _proxies() -> ProxyService:
    return ProxyService(current_app.extensions["browserfarm"], current_caller())


def _proxy_types() -> list[str]:
    names = current_app.extensions["browserfarm"].plugins.proxy_types.names()
    return [name for name in names if name != "direct"]  # a pool holds proxies


def _form_data() -> dict:
    """The form's fields by their API names. The password is sent only when typed: a
    blank one keeps the stored password (and is not shown to who may not see it)."""
    data = {name: request.form[name] for name in FIELDS if name in request.form}
    if not data.get("proxyPassword"):
        data.pop("proxyPassword", None)
    return data


def pool_page(values=None, errors=None):
    keyword = request.args.get("keyword", "").strip()
    page = max(request.args.get("page", 0, type=int), 0)
    listed = _proxies().pool_list(page, PAGE_SIZE, keyword)
    return render_template("proxies/list.html", page=listed, page_size=PAGE_SIZE,
                           keyword=keyword, values=values or {}, errors=errors or {},
                           proxy_types=_proxy_types()), 400 if errors else 200


def add():
    try:
        item = _proxies().pool_add(load(api.AddArgs, _form_data()))
    except BadRequest as error:
        return pool_page(request.form, field_errors(error))
    flash(f"Proxy {item['proxyType']}://{item['host']}:{item['port']} added.", "success")
    return redirect(url_for("dashboard.proxies"))


def edit(proxy_id: int):
    service = _proxies()
    item = service.pool_detail(proxy_id)
    values, errors = {}, {}
    if request.method == "POST":
        try:
            item = service.pool_update(load(api.UpdateArgs, {"id": proxy_id, **_form_data()}))
        except BadRequest as error:
            values, errors = request.form, field_errors(error)
        else:
            flash(f"Proxy {item['proxyType']}://{item['host']}:{item['port']} saved.",
                  "success")
            return redirect(url_for("dashboard.proxies"))
    return render_template("proxies/form.html", item=item, values=values, errors=errors,
                           proxy_types=_proxy_types(),
                           reveal=current_caller().can(perm.BROWSER_PROXY_REVEAL)), \
        400 if errors else 200


def delete(proxy_id: int):
    data = load(api.DeleteArgs, {"id": proxy_id, "unbind": request.form.get("unbind", "")
                                 or "false"})
    try:
        answer = _proxies().pool_delete(data["id"], data["unbind"])
    except BadRequest as error:  # bound to windows
        flash(f"Not deleted: {error.msg}", "error")
    else:
        unbound = answer["unbound"]
        flash(f"Proxy {proxy_id} deleted" + (f"; window(s) {', '.join(map(str, unbound))} "
                                             "left without a proxy." if unbound else "."),
              "success")
    return redirect(url_for("dashboard.proxies"))


def check(proxy_id: int):
    """The check's result in words: a fragment for htmx (the row's result cell), else
    a message on the pool page."""
    data = load(api.CheckArgs, {"id": proxy_id})
    result = _proxies().pool_check(data["id"], data["ipCheckService"])
    words = check_words(result)
    if request.headers.get("HX-Request"):
        return render_template("proxies/check.html", result=result, words=words)
    flash(words, "success" if result["reachable"] else "error")
    return redirect(url_for("dashboard.proxies"))


def check_words(result: dict) -> str:
    """A check's result (services.proxies.CheckResult) as a sentence."""
    if not result["reachable"]:
        return f"Not reachable ({result['kind']}): {result['message']}"
    place = ", ".join(part for part in (result["city"], result["country"]) if part)
    where = f" in {place} ({result['countryCode']})" if place else ""
    return (f"Exit IP {result['ip']}{where}; answered in {result['latencyMs']} ms "
            f"({result['service']}).")
