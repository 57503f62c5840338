"""The v5 workers pages: the account's workers (filters, paging) with its usage, and a
worker's page (its screenshots, its video, a stop button, the live view).

A v5 worker's ``browser_url`` is its page here (browserfarm.api.v5_schemas). The pages
act through the same service as the v5 API (WorkerService, scoped to the caller's
account). There is no worker permission: seeing workers takes ``browser:list`` and
stopping one or taking a screenshot ``browser:open`` (what opening and closing a
window takes), so a read-only member sees and cannot change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import (Blueprint, current_app, flash, redirect, render_template, request,
                   send_file, url_for)

from browserfarm import permissions
from browserfarm.dashboard.auth import current_caller
from browserfarm.errors import FarmError, Forbidden, NotFound
from browserfarm.models import Account, Screenshot, Worker, utcnow
from browserfarm.services.workers import WorkerService, public_status

PER_PAGE = 50
# A worker's video is finished by its recorder after the worker ended: its page asks
# again for this long (the recorder gives ffmpeg up to 90 s).
VIDEO_FINISHING = timedelta(seconds=120)
STATUSES = ("queue", "running", "terminated")  # as v5 names them (starting is queue)
# What the list shows: its columns only (a worker's handle and errors stay in the row).
LISTED = (Worker.id, Worker.status, Worker.os, Worker.os_version, Worker.browser,
          Worker.browser_version, Worker.device, Worker.url, Worker.name, Worker.build,
          Worker.project, Worker.created_at, Worker.started_at, Worker.ended_at,
          Worker.failed, Worker.end_reason, Worker.video)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/workers", "workers", worker_list)
    bp.add_url_rule("/workers/<int:worker_id>", "worker", worker_page)
    bp.add_url_rule("/workers/<int:worker_id>/stop", "worker_stop", stop, methods=["POST"])
    bp.add_url_rule("/workers/<int:worker_id>/screenshot", "worker_screenshot",
                    take_screenshot, methods=["POST"])
    bp.add_url_rule("/workers/<int:worker_id>/screenshots/<int:shot_id>.png",
                    "worker_screenshot_file", screenshot_file)
    bp.add_url_rule("/workers/<int:worker_id>/video", "worker_video", video)
    bp.app_template_filter("worker_status")(public_status)


# ----- queries (no Flask) -------------------------------------------------------------

@dataclass
class Filters:
    status: str = ""
    build: str = ""
    project: str = ""
    page: int = 1

    def given(self) -> dict:
        """The filters set, for the pager's links."""
        return {name: value for name, value in (("status", self.status), ("build", self.build),
                                                ("project", self.project)) if value}


@dataclass
class WorkerPage:
    workers: list
    total: int
    page: int
    pages: int


def list_workers(account_id: int, filters: Filters) -> WorkerPage:
    """One page of the account's workers, newest first, the filters applied."""
    query = Worker.select(*LISTED).where(Worker.account == account_id)
    if filters.status == "queue":
        query = query.where(Worker.status << ("queue", "starting"))
    elif filters.status:
        query = query.where(Worker.status == filters.status)
    if filters.build:
        query = query.where(Worker.build == filters.build)
    if filters.project:
        query = query.where(Worker.project == filters.project)
    total = query.count()
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, filters.page), pages)
    return WorkerPage(list(query.order_by(Worker.id.desc()).paginate(page, PER_PAGE)),
                      total, page, pages)


def screenshots_of(worker_id: int) -> list[Screenshot]:
    """The screenshots a worker took and the farm kept, newest first (not their PNGs)."""
    return list(Screenshot.select(Screenshot.id, Screenshot.created_at)
                .where(Screenshot.worker == worker_id).order_by(Screenshot.id.desc()))


# ----- views --------------------------------------------------------------------------

def _service(need: str = permissions.BROWSER_LIST) -> WorkerService:
    caller = current_caller()
    caller.require(need)
    return WorkerService(current_app.extensions["browserfarm"],
                         Account.get_by_id(caller.account_id))


def _worker(service: WorkerService, worker_id: int) -> Worker:
    """The caller's worker; another account's is not found here (v5 answers 403)."""
    try:
        return service.get(worker_id)
    except Forbidden:
        raise NotFound(f"There is no worker {worker_id} in this account.") from None


def worker_list():
    service = _service()
    args = request.args
    filters = Filters(status=args.get("status", "") if args.get("status") in STATUSES else "",
                      build=args.get("build", "").strip(),
                      project=args.get("project", "").strip(),
                      page=args.get("page", 1, type=int) or 1)
    return render_template("workers/list.html", found=list_workers(service.account.id, filters),
                           filters=filters, statuses=STATUSES, usage=service.status())


def worker_page(worker_id: int):
    service = _service()
    worker = _worker(service, worker_id)
    if request.headers.get("HX-Request") and worker.status == "terminated" \
            and request.args.get("part") != "video":
        # The facts' refresh found it ended: the whole page again, with its video.
        return "", 200, {"HX-Refresh": "true"}
    video_error, video_pending = None, False
    if worker.video:
        try:
            service.video(worker.id)
        except NotFound as error:
            video_error = error.msg
            video_pending = worker.status != "terminated" or (
                worker.ended_at is not None and utcnow() - worker.ended_at < VIDEO_FINISHING)
    return render_template("workers/detail.html", worker=worker,
                           screenshots=screenshots_of(worker.id), video_error=video_error,
                           video_pending=video_pending)


def stop(worker_id: int):
    """What DELETE /5/worker/<id> does, its answer or refusal in words."""
    service = _service(permissions.BROWSER_OPEN)
    worker = _worker(service, worker_id)
    try:
        ran = service.terminate(worker.id)["time"]
    except FarmError as error:  # within its first 60 s: it ends at 60 s
        flash(error.msg, "error")
    else:
        flash(f"Worker {worker.id} stopped after {ran:g} seconds of running.", "success")
    return redirect(url_for("dashboard.worker", worker_id=worker.id))


def take_screenshot(worker_id: int):
    service = _service(permissions.BROWSER_OPEN)
    worker = _worker(service, worker_id)
    try:
        service.screenshot(worker.id)
    except FarmError as error:  # not running, or the browser did not answer
        flash(error.msg, "error")
    else:
        flash("Screenshot taken.", "success")
    return redirect(url_for("dashboard.worker", worker_id=worker.id) + "#screenshots")


def screenshot_file(worker_id: int, shot_id: int):
    worker = _worker(_service(), worker_id)
    shot = Screenshot.get_or_none(Screenshot.id == shot_id, Screenshot.worker == worker.id)
    if shot is None:
        raise NotFound("This screenshot is not kept (a worker keeps its latest ones).")
    response = current_app.response_class(bytes(shot.png), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"  # a screenshot never changes
    return response


def video(worker_id: int):
    """The recording, for the page's <video>: ranges answered, so a person can seek."""
    service = _service()
    path = service.video(_worker(service, worker_id).id)
    return send_file(path, mimetype="video/mp4", conditional=True, max_age=0)
