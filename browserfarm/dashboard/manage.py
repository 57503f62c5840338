"""Managing windows: create and edit (name, group, tags, remark, proxy, fingerprint),
delete into the recycle bin, the recycle bin with restore and permanent delete.

A form becomes the API's request fields, loaded by the API's request schema
(forms.load) and saved by the API's service: a page refuses what the API refuses,
naming the same field. An edit saves the window's fields as ``/browser/update`` does
and its changed fingerprint fields as ``/browser/update/partial`` does (merged, so the
fields drawn for it stay drawn), both in one transaction.
"""
from __future__ import annotations

import json

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   url_for)
from marshmallow import validate

from browserfarm import permissions as perm
from browserfarm.api.fields import FlexibleBool
from browserfarm.api.windows import (FingerprintSchema, IdsArgs, PartialUpdateArgs,
                                      WindowUpdateArgs)
from browserfarm.browsers.backends import WindowBackend
from browserfarm.dashboard.auth import current_caller
from browserfarm.dashboard.forms import load, shown
from browserfarm.dashboard.pages import counted, field_errors
from browserfarm.db import write_transaction
from browserfarm.errors import BadRequest
from browserfarm.services.collections import GroupService, TagService
from browserfarm.services.proxies import ProxyService
from browserfarm.services.windows import WindowService

FINGERPRINT = "browserFingerPrint"
# The fingerprint fields the form offers (the API takes more: /docs), in this order,
# with their labels.
FINGERPRINT_LABELS = {
    "coreProduct": "Browser", "coreVersion": "Browser engine version",
    "ostype": "Device type", "os": "Platform (navigator.platform)",
    "osVersion": "Operating system versions", "version": "Browser version",
    "userAgent": "User agent", "timeZone": "Time zone",
    "isIpCreateTimeZone": "Time zone from the proxy's IP", "languages": "Languages",
    "isIpCreateLanguage": "Languages from the proxy's IP", "resolution": "Screen resolution",
    "openWidth": "Window width", "openHeight": "Window height",
    "devicePixelRatio": "Device pixel ratio", "hardwareConcurrency": "CPU cores",
    "deviceMemory": "Memory (GiB)", "webRTC": "WebRTC", "canvas": "Canvas",
    "webGL": "WebGL image", "audioContext": "Audio", "doNotTrack": "Do Not Track",
    "position": "Geolocation", "isIpCreatePosition": "Location from the proxy's IP",
    "lat": "Latitude", "lng": "Longitude"}
FINGERPRINT_FIELDS = tuple(FINGERPRINT_LABELS)
# Choices the API numbers, in words (the value is still what the API takes).
NOISE = {"0": "noise (random)", "1": "off (the real value)"}
CHOICE_WORDS = {
    "webRTC": {"0": "replace", "1": "allow", "2": "disable", "3": "privacy"},
    "canvas": NOISE, "webGL": NOISE, "audioContext": NOISE,
    "doNotTrack": {"1": "on", "0": "off"},
    "position": {"0": "ask", "1": "allow", "2": "block"}}
# The form's labels of the API's fields, for its errors ("Screen resolution: ...").
LABELS = {
    "name": "Name", "groupId": "Group", "tagIds": "Tags", "remark": "Remark",
    "proxyMethod": "Where the proxy comes from", "proxyId": "Pool proxy",
    "proxyType": "Proxy type", "host": "Proxy host", "port": "Proxy port",
    "proxyUserName": "Proxy user", "proxyPassword": "Proxy password",
    **{f"{FINGERPRINT}.{name}": label for name, label in FINGERPRINT_LABELS.items()}}
# proxyMethod: what the form offers; another method (e.g. 3, set by the API) is kept.
PROXY_METHODS = {2: "Its own proxy (below)", 4: "A proxy from the pool"}
KEEP = "keep"
PAGE_SIZE = 50


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/windows/new", "window_new", window_new, methods=["GET", "POST"])
    bp.add_url_rule("/windows/<int:window_id>/edit", "window_edit", window_edit,
                    methods=["GET", "POST"])
    bp.add_url_rule("/windows/<int:window_id>/delete", "window_delete", window_delete,
                    methods=["POST"])
    bp.add_url_rule("/windows/recycle", "windows_recycle", recycle_bin)
    bp.add_url_rule("/windows/recycle/restore", "windows_restore", restore, methods=["POST"])
    bp.add_url_rule("/windows/recycle/delete", "windows_purge", delete_permanently,
                    methods=["POST"])


def _farm():
    return current_app.extensions["browserfarm"]


def _windows() -> WindowService:
    return WindowService(_farm(), current_caller())


# ----- create and edit ------------------------------------------------------------

def window_new():
    current_caller().require(perm.BROWSER_CREATE)  # no form for what it may not do
    values, errors = {}, {}
    if request.method == "POST":
        data = _window_fields(request.form)
        data[FINGERPRINT] = {name: value for name, value in _fingerprint_form().items()
                             if value != ""}  # blank: drawn for the window
        try:
            window = _windows().save(load(WindowUpdateArgs, data))
        except BadRequest as error:
            values, errors = request.form, field_errors(error)
        else:
            flash(f"Window {window['name']!r} created.", "success")
            return redirect(url_for("dashboard.window", window_id=window["id"]))
    return _form_page(None, values, errors)


def window_edit(window_id: int):
    current_caller().require(perm.BROWSER_UPDATE_SINGLE)  # no form for what it may not do
    service = _windows()
    window = service.detail({"id": window_id})
    values, errors = {}, {}
    if request.method == "POST":
        stored = window[FINGERPRINT] or {}
        changed = {name: value for name, value in _fingerprint_form().items()
                   if value != shown(stored.get(name))}
        try:
            data = load(WindowUpdateArgs, {"id": window_id, **_window_fields(request.form)})
            patch = load(PartialUpdateArgs, {"ids": [window_id], FINGERPRINT: changed}) \
                if changed else None
            with write_transaction(_farm().db):  # both or neither
                saved = service.save(data)
                if patch:
                    service.update_partial(patch)
        except BadRequest as error:
            values, errors = request.form, field_errors(error)
        else:
            flash(f"Window {saved['name']!r} saved.", "success")
            return redirect(url_for("dashboard.window", window_id=window_id))
    return _form_page(window, values, errors)


def _window_fields(form) -> dict:
    """The window fields of the form, by their API names."""
    data = {name: form.get(name, "") for name in ("name", "remark", "groupId")}
    data["tagIds"] = form.getlist("tagIds")
    method = form.get("proxyMethod", "2")
    if method != KEEP:
        data["proxyMethod"] = method
        for name in ("proxyType", "host", "port", "proxyUserName", "proxyId"):
            data[name] = form.get(name, "")
        if "proxyPassword" in form:  # shown only to who may reveal it; else kept
            data["proxyPassword"] = form["proxyPassword"]
    return data


def _fingerprint_form() -> dict:
    """The fingerprint fields the form sent (a field it did not send is not changed)."""
    return {name: request.form[f"{FINGERPRINT}.{name}"].strip()
            for name in FINGERPRINT_FIELDS if f"{FINGERPRINT}.{name}" in request.form}


def _form_page(window, values, errors):
    caller = current_caller()
    farm = _farm()
    if window is None:
        stored = {"proxyMethod": 2, "proxyType": "direct", FINGERPRINT: {}}
    else:
        stored = window
    status = 400 if errors else 200
    return render_template(
        "windows/form.html", window=window, stored=stored, values=values,
        errors=errors, labels=LABELS, shown=shown, fingerprint=_fingerprint_widgets(farm),
        fingerprint_error=any(key.startswith(FINGERPRINT) for key in errors),
        groups=GroupService(farm, caller).list(0, 500)["list"]
        if caller.can(perm.GROUP_LIST) else [],
        tags=TagService(farm, caller).list(0, 500)["list"]
        if caller.can(perm.TAG_LIST) else [],
        pool=ProxyService(farm, caller).pool_list(0, 500)["list"]
        if caller.can(perm.PROXY_LIST) else [],
        proxy_types=farm.plugins.proxy_types.names(), proxy_methods=PROXY_METHODS,
        keep=KEEP, reveal=caller.can(perm.BROWSER_PROXY_REVEAL)), status


def _fingerprint_widgets(farm) -> list[dict]:
    """Each offered fingerprint field as the form shows it, from the API's schema: its
    choices (an enumeration, a boolean, the browser backends) and its description."""
    declared = FingerprintSchema._declared_fields
    widgets = []
    for name in FINGERPRINT_FIELDS:
        field = declared[name]
        choices = next((v.choices for v in field.validators
                        if isinstance(v, validate.OneOf)), None)
        if name == "coreProduct":
            choices = list(farm.plugins.browser_backends.offering(WindowBackend,
                                                                  available=False))
        elif isinstance(field, FlexibleBool):
            choices = ["true", "false"]
        widgets.append({"name": name, "key": f"{FINGERPRINT}.{name}",
                        "label": FINGERPRINT_LABELS[name], "words": CHOICE_WORDS.get(name, {}),
                        "choices": [shown(c) for c in choices if c != ""]
                        if choices is not None else None,
                        "description": field.metadata.get("description", "")})
    return widgets


# ----- delete, the recycle bin, restore -------------------------------------------

def window_delete(window_id: int):
    service = _windows()
    window = service.detail({"id": window_id})
    service.delete({"id": window_id})
    flash(f"Window {window['name'] or window['seq']!r} moved to the recycle bin: restore it from there.", "success")
    return redirect(url_for("dashboard.windows"))


def recycle_bin():
    page = max(request.args.get("page", 0, type=int), 0)
    answer = _windows().recycle_list({"page": page, "pageSize": PAGE_SIZE,
                                      "sortProperties": "seq", "sortDirection": "desc"})
    return render_template("windows/recycle.html", page=json.loads(answer),
                           page_size=PAGE_SIZE)


def restore():
    return _recycle_action(
        lambda ids: f"{counted(_windows().restore(ids)['restored'], 'window')} restored.")


def delete_permanently():
    return _recycle_action(
        lambda ids: f"{counted(_windows().delete_permanently(ids)['deleted'], 'window')} "
                    "deleted for good.")


def _recycle_action(act):
    """``act(ids)`` on the windows ticked in the recycle bin, its result in words."""
    try:
        flash(act(load(IdsArgs, {"ids": request.form.getlist("ids")})["ids"]), "success")
    except BadRequest as error:
        flash("Tick the windows first." if not request.form.getlist("ids") else error.msg,
              "error")
    return redirect(url_for("dashboard.windows_recycle"))
