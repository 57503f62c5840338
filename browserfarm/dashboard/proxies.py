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
from browserfarm.dashboard.pages import counted, field_errors
from browserfarm.errors import BadRequest
from browserfarm.models import Window
from browserfarm.services.proxies import ProxyService

PAGE_SIZE = 50
# The form's fields: the API's names and the form's labels (for its errors).
LABELS = {"proxyType": "Type", "host": "Host", "port": "Port", "proxyUserName": "User",
          "proxyPassword": "Password", "remark": "Remark"}
FIELDS = tuple(LABELS)


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
                           labels=LABELS,
                           proxy_types=_proxy_types()), 400 if errors else 200


def add():
    try:
        item = _proxies().pool_add(load(api.AddArgs, _form_data()))
    except BadRequest as error:
        return pool_page(request.form, field_errors(error))
    flash(f"Proxy {_address(item)} added.", "success")
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
            flash(f"Proxy {_address(item)} saved.", "success")
            return redirect(url_for("dashboard.proxies"))
    return render_template("proxies/form.html", item=item, values=values, errors=errors,
                           labels=LABELS,
                           proxy_types=_proxy_types(),
                           reveal=current_caller().can(perm.BROWSER_PROXY_REVEAL)), \
        400 if errors else 200


def delete(proxy_id: int):
    data = load(api.DeleteArgs, {"id": proxy_id, "unbind": request.form.get("unbind", "")
                                 or "false"})
    service = _proxies()
    shown = _address(service.pool_detail(data["id"]))
    using = _windows_using(data["id"])  # before: deleting it unbinds them
    try:
        service.pool_delete(data["id"], data["unbind"])
    except BadRequest:  # bound to windows, and "also if windows use it" not ticked
        flash(f"Not deleted: proxy {shown} is used by {using}. Tick \"also if windows use it\" "
              "to delete it and leave them without a proxy.", "error")
    else:
        flash(f"Proxy {shown} deleted" + (f"; {using} left without a proxy."
                                          if using else "."), "success")
    return redirect(url_for("dashboard.proxies"))


def _address(item: dict) -> str:
    return f"{item['proxyType']}://{item['host']}:{item['port']}"


def _windows_using(proxy_id: int, named: int = 5) -> str:
    """The caller's windows bound to a pool proxy (those in the recycle bin too, as the
    service counts them), in words: "2 windows ('shop 1', 'shop 2')"; "" for none."""
    query = Window.select(Window.name, Window.seq).where(
        Window.account == current_caller().account_id, Window.proxy_method == 4,
        Window.proxy_id == proxy_id)
    total = query.count()
    if not total:
        return ""
    names = [repr(name or f"#{seq}") for name, seq in query.order_by(Window.seq)
             .limit(named).tuples()]
    more = f" and {total - named} more" if total > named else ""
    return f"{counted(total, 'window')} ({', '.join(names)}{more})"


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
