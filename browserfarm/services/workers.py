"""v5 workers: the catalogue of browsers, new workers (validated by
``browserfarm.api.v5_schemas``), the queue in the database, and per-account
accounting. The runner (``browserfarm.runner``) starts and
ends browsers; API processes only read, enqueue, and send short commands through the
stored handle (``browserfarm.browsers.backends``)."""
from __future__ import annotations

import fcntl
import re
import secrets
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import peewee as pw
import logging

from browserfarm.browsers import keeper
from browserfarm.browsers.backends import DEFAULT_WINDOW_BACKEND
from browserfarm.browsers.display import parse_size
from browserfarm.browsers.handles import Handle
from browserfarm.db import Lookup, write_transaction
from browserfarm.errors import (Forbidden, NotFound, Unauthorized, Unprocessable,
                                ValidationFailed, invalid)
from browserfarm.models import Account, Screenshot, Window, Worker, utcnow
from browserfarm.models import Runner as RunnerRow
from browserfarm.security import digest

log = logging.getLogger(__name__)
MOBILE_OS = {"android", "ios"}
DEFAULT_RESOLUTION = "1024x768"
_WINDOWS_NEW = ["1024x768", "1280x800", "1280x1024", "1366x768", "1440x900", "1680x1050",
                "1600x1200", "1920x1200", "1920x1080", "2048x1536"]
_OS_X = ["1024x768", "1280x960", "1280x1024", "1600x1200", "1920x1080"]
# The spec's table; an OS it doesn't name (Linux here) takes any resolution it lists.
RESOLUTIONS = {("windows", "xp"): ["800x600"] + _WINDOWS_NEW,
               ("windows", "7"): ["800x600"] + _WINDOWS_NEW,
               "windows": _WINDOWS_NEW, "os x": _OS_X,
               None: sorted(set(["800x600"] + _WINDOWS_NEW + _OS_X),
                            key=parse_size)}
ACTIVE = ("starting", "running")  # what counts against sessions_limit
RUNNER_STALE_AFTER = 30.0  # a runner silent this long is dead: its workers are reaped
SCREENSHOTS_KEPT = 50  # per worker; older ones are dropped
OUT_OF_TIME = "You have run out of API time"
TOO_EARLY = ("A worker can't be terminated within its first 60 seconds of running; "
             "it will end at 60 seconds")
START_WAIT = 120.0  # s: POST /5/worker answers once the page loaded, or after this


_ACCOUNT_BY_V5_USERNAME = Lookup(lambda: Account.select().where(Account.v5_username == ""))
_WORKER_OF_ACCOUNT = Lookup(lambda: Worker.select().where(Worker.id == 0, Worker.account == 0))
_WORKER_STATUS = Lookup(lambda: Worker.select(Worker.id, Worker.status).where(Worker.id == 0))
MAX_URL = 2048  # characters; what browsers and servers commonly accept


def authenticate_basic(username: str | None, key: str | None) -> Account:
    if not username or not key or "\x00" in username + key:
        raise Unauthorized("Unauthorized")
    account = _ACCOUNT_BY_V5_USERNAME.first(username)
    # Compare digests (high-entropy keys): no timing signal about the stored key.
    if account is None or not secrets.compare_digest(account.v5_key_hash, digest(key)):
        raise Unauthorized("Unauthorized")
    return account


# ----- the catalogue ----------------------------------------------------------------

class Catalogue:
    """Every enabled backend's browsers, as v5's flat entries plus the backend."""

    TTL = 30.0  # a Grid's catalogue changes as nodes come and go

    def __init__(self, farm):
        self.farm = farm
        self._entries: list[dict] | None = None
        self._at = 0.0

    def entries(self) -> list[dict]:
        if self._entries is None or time.monotonic() - self._at > self.TTL:
            found, seen = [], set()
            for backend in self.farm.plugins.worker_backends.values():
                try:
                    offered = backend.catalogue(self.farm.settings)
                except Exception:  # noqa: BLE001 - one broken backend hides only itself
                    log.exception("the %s backend's catalogue failed", backend.name)
                    continue
                for entry in offered:
                    key = _key(entry)
                    if key not in seen:  # the first backend offering it serves it
                        seen.add(key)
                        found.append(_flat(entry) | {"backend": backend.name})
            self._entries, self._at = found, time.monotonic()
        return self._entries

    def flat(self) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "backend"} for e in self.entries()]

    def nested(self) -> dict:
        tree: dict = {}
        for e in self.entries():
            tree.setdefault(e["os"], {}).setdefault(e["os_version"], []).append(
                {"browser": e["browser"], "browser_version": e["browser_version"]}
                | ({"device": e["device"]} if e["device"] else {}))
        return tree

    def match(self, request: dict) -> tuple[dict | None, list[dict]]:
        """The entry a request names, or the errors naming the first field that
        matches nothing."""
        entries = [e for e in self.entries() if _same(e["os"], request["os"])]
        if not entries:
            return None, [invalid("os", f"unknown os; GET /5/browsers lists "
                                        f"{sorted({e['os'] for e in self.entries()})}")]
        entries = [e for e in entries if _same(e["os_version"], request["os_version"])]
        if not entries:
            return None, [invalid("os_version", "unknown os_version for this os")]
        if request.get("device"):
            entries = [e for e in entries if _same(e["device"], request["device"])]
            if not entries:
                return None, [invalid("device", "unknown device for this os_version")]
        if request.get("browser"):
            entries = [e for e in entries if _same(e["browser"], request["browser"])]
            if not entries:
                return None, [invalid("browser", "unknown browser for this os_version")]
        wanted = request.get("browser_version")
        if wanted:
            entries = _versions(entries, str(wanted))
            if not entries:
                return None, [invalid("browser_version", "unknown browser_version")]
        return entries[0], []


def _versions(entries, wanted: str) -> list[dict]:
    """"latest" is the highest; "128" or "128.0" also match "128.0.1"; else exact."""
    if wanted.lower() == "latest":
        return sorted(entries, key=lambda e: _version_key(e["browser_version"]), reverse=True)
    exact = [e for e in entries if _same(e["browser_version"], wanted)]
    if exact or not re.fullmatch(r"\d+(\.0)*", wanted):
        return exact
    major = wanted.split(".")[0]
    return [e for e in entries if str(e["browser_version"]).split(".")[0] == major]


def _version_key(version) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in str(version).split(" ")[0].split("."))


def _same(a, b) -> bool:
    return str(a or "").strip().lower() == str(b or "").strip().lower()


def _key(entry) -> tuple:
    return tuple(str(entry.get(k) or "").lower()
                 for k in ("os", "os_version", "browser", "browser_version", "device"))


def _flat(entry: dict) -> dict:
    return {"os": entry["os"], "os_version": entry["os_version"],
            "browser": entry.get("browser"), "device": entry.get("device"),
            "browser_version": entry.get("browser_version"),
            "real_mobile": entry.get("real_mobile")}


def is_http_url(value: str) -> bool:
    scheme, sep, rest = value.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest.strip("/"))


def resolutions_for(os_name: str, os_version: str) -> list[str]:
    """The resolutions an OS takes (the spec's table; any of them elsewhere)."""
    os_name, os_version = os_name.strip().lower(), os_version.strip().lower()
    return (RESOLUTIONS.get((os_name, os_version)) or RESOLUTIONS.get(os_name)
            or RESOLUTIONS[None])


SCREENSHOT_FORMATS = {"text/json": "json", "application/json": "json", "text/xml": "xml",
                      "application/xml": "xml", "image/png": "png"}


def screenshot_format(extension: str | None, best_match) -> str:
    """What a screenshot is asked as: its extension, else the best of ``Accept``
    (``best_match(offered, default)``, werkzeug's), JSON when nothing fits."""
    if extension is None:
        return SCREENSHOT_FORMATS[best_match(list(SCREENSHOT_FORMATS), "text/json")]
    if extension not in SCREENSHOT_FORMATS.values():
        raise ValidationFailed([invalid("format", "json, xml or png")])
    return extension


# ----- the account's workers --------------------------------------------------------

@dataclass
class WorkerService:
    """One v5 user's workers. Every query is scoped to ``account``."""
    farm: object
    account: Account

    def create(self, request: dict, wait: float = START_WAIT) -> Worker:
        """A new worker from a request ``browserfarm.api.v5_schemas`` validated. With
        a slot free and a runner alive it is answered once its page has loaded (or
        as it is after ``wait``); else at once, queued."""
        entry, errors = self.farm.catalogue.match(request)
        if errors:  # the catalogue changed since the request was validated
            raise ValidationFailed(errors)
        limit = int(self.farm.settings.worker_max_seconds)
        worker = self._enqueue(
            {key: entry[key] for key in ("os", "os_version", "browser", "browser_version",
                                         "device", "real_mobile", "backend")}
            | {key: request[key] for key in ("url", "name", "build", "project", "video")}
            | {"timeout": min(request["timeout"], limit),
               "resolution": request["resolution"] or DEFAULT_RESOLUTION,
               "window_uuid": request.get("window")})
        if self.has_free_slot_for(worker) and self.runner_alive():
            worker = self.wait_started(worker.id, wait)
        return worker

    def _enqueue(self, request: dict) -> Worker:
        """The worker's row; with a window, its proxy (one of the account's)."""
        window_uuid = request.pop("window_uuid", None)
        window = None
        if window_uuid:
            window = (Window.of_account(self.account.id)
                      .where(Window.uuid == window_uuid).first())
            if window is None:
                raise ValidationFailed([invalid("window", "no window with this uuid")])
            backend = self.farm.plugins.browser_backends.get(request["backend"])
            if backend is not None and not backend.local:
                raise ValidationFailed([invalid(
                    "window", f"a window's proxy can't reach {request['backend']} browsers; "
                              "pick a browser of this machine")])
            # The window's identity (user agent, platform, screen) is its browser's: in
            # another browser it would contradict what that browser shows itself.
            product = (window.fingerprint or {}).get("coreProduct") or DEFAULT_WINDOW_BACKEND
            if request["backend"] != product:
                raise ValidationFailed([invalid(
                    "window", f"this window is a {product} device; ask for browser "
                              f"{product} to work with its identity")])
        with write_transaction(self.farm.db):
            return Worker.create(account=self.account.id, window=window,
                                 session_id=uuid.uuid4().hex, **request)

    def has_free_slot_for(self, worker: Worker) -> bool:
        """True when ``worker`` is within its account's parallel limit (it will run
        as soon as a runner claims it, rather than wait for another worker's end)."""
        # Not counting itself: a runner may have claimed it already.
        ahead = (Worker.select().where(Worker.account == self.account.id,
                                       Worker.id != worker.id,
                                       (Worker.status << ACTIVE) | (
                                           (Worker.status == "queue") & (Worker.id < worker.id)))
                 .count())
        return ahead < self.account.sessions_limit

    def runner_alive(self) -> bool:
        """Some runner wrote its heartbeat lately: a worker with a free slot will start."""
        return RunnerRow.select().where(
            RunnerRow.seen_at > utcnow() - timedelta(seconds=RUNNER_STALE_AFTER)).exists()

    def wait_started(self, worker_id: int, timeout: float, poll: float = 0.01) -> Worker:
        """The worker once it runs or ended, or as it is after ``timeout``."""
        deadline = time.monotonic() + timeout
        # A prepared read of the status alone: a hundred a second while a browser
        # starts would otherwise take CPU from that browser on a small machine.
        while _WORKER_STATUS.first(worker_id).status not in ("running", "terminated") \
                and time.monotonic() < deadline:
            time.sleep(poll)
        return Worker.get_by_id(worker_id)

    def get(self, worker_id) -> Worker:
        """The caller's worker; a foreign or unknown id is the spec's 403."""
        try:
            number = int(str(worker_id))
        except ValueError:
            number = None
        worker = (_WORKER_OF_ACCOUNT.first(number, self.account.id)
                  if number is not None and 0 < number < 2 ** 63 else None)
        if worker is None:
            raise Forbidden("Forbidden: no such worker of yours")
        return worker

    def live(self) -> list[Worker]:
        return list(Worker.select().where(Worker.account == self.account.id,
                                          Worker.status != "terminated").order_by(Worker.id))

    def terminate(self, worker_id) -> dict:
        """DELETE: a queued worker ends now; a running one is ended by its runner, but
        not before 60 s of running (the spec's rule: 422, then ended at 60 s)."""
        scale = self.farm.settings.worker_time_scale
        with write_transaction(self.farm.db):
            worker = self.get(worker_id)
            now = utcnow()
            if worker.status == "terminated":
                return {"time": round(ran_seconds(worker, now), 1)}
            if worker.status in ("queue", "starting"):  # shown as queued: ends now
                end_now(worker, "deleted while queued", now)  # (the runner stops a
                return {"time": 0.0}  # browser on its way when it finds it ended)
            # Running: under 60 s, it ends at 60 s of running (the spec's rule).
            earliest = worker.started_at + timedelta(seconds=60 * scale)
            too_early = now < earliest
            if too_early:
                Worker.update(ends_at=earliest, end_reason="deleted").where(
                    Worker.id == worker.id, Worker.status == "running").execute()
            else:  # terminated now, as the spec says; its runner stops the browser
                end_now(worker, "deleted", now, only_if=("running",))
        if too_early:  # raised after the commit: the deferred end must stand
            raise Unprocessable(TOO_EARLY)
        return {"time": round(ran_seconds(worker, now), 1)}

    def status(self) -> dict:
        running = (Worker.select().where(Worker.account == self.account.id,
                                         Worker.status == "running"))
        now = utcnow()
        live = sum(ran_seconds(w, now) for w in running)
        return {"used_time": round(self.account.used_time + live, 1),
                "total_available_time": (self.account.api_time_limit
                                         if self.account.api_time_limit is not None
                                         else "Unlimited Testing Time"),
                "running_sessions": len(running),
                "sessions_limit": self.account.sessions_limit}

    def out_of_time(self) -> bool:
        limit = self.account.api_time_limit
        return limit is not None and self.status()["used_time"] >= limit

    @staticmethod
    def _require_running(worker: Worker) -> Worker:
        if worker.status != "running" or not worker.handle:
            raise Unprocessable(f"Worker {worker.id} is not running (status: "
                                f"{public_status(worker)})")
        return worker

    def screenshot(self, worker_id, store: bool = True) -> tuple[bytes, str | None]:
        """Take a PNG through the handle; stored (for its URL) when ``store``: the
        PNG and its key."""
        worker = self._require_running(self.get(worker_id))
        png = command(self.farm, worker, "screenshot")
        if not store:
            return png, None
        key = secrets.token_urlsafe(24)
        with write_transaction(self.farm.db):
            Screenshot.create(worker=worker.id, key=key, png=png)
            old = (Screenshot.select(Screenshot.id).where(Screenshot.worker == worker.id)
                   .order_by(Screenshot.id.desc()).offset(SCREENSHOTS_KEPT))
            Screenshot.delete().where(Screenshot.id << [s.id for s in old]).execute()
        return png, key

    def navigate(self, worker_id, url: str) -> dict:
        """Load ``url`` (an http(s) URL, validated as a new worker's)."""
        worker = self._require_running(self.get(worker_id))
        command(self.farm, worker, "navigate", url)
        Worker.update(url=url).where(Worker.id == worker.id).execute()
        return {"message": "Browser updated with new url"}

    def video(self, worker_id) -> Path:
        worker = self.get(worker_id)
        if not worker.video:
            raise NotFound("This worker was not recorded (browserstack.video)")
        path = self.farm.settings.data.video(worker.id)
        if not path.exists():
            if worker.status != "terminated":
                raise NotFound("The video is ready once the worker has ended")
            if self.farm.settings.data.video_partial(worker.id).exists():  # being finished
                raise NotFound("The video is being finished: it is ready in a few seconds")
            raise NotFound("The recording failed")
        return path


def stored_screenshot(key: str) -> bytes:
    """A stored screenshot by its key (the credential of its URL)."""
    shot = Screenshot.get_or_none(Screenshot.key == key)
    if shot is None:
        raise NotFound("Not Found")
    return bytes(shot.png)


def public_status(worker: Worker) -> str:
    return "queue" if worker.status == "starting" else worker.status


def ran_seconds(worker: Worker, now) -> float:
    """Seconds charged: from its start to its end, never past its due end (a worker
    whose runner died is not charged for the time until someone noticed)."""
    if worker.started_at is None:
        return 0.0
    end = min(worker.ended_at or now, worker.ends_at or now)
    return max(0.0, (end - worker.started_at).total_seconds())


def end_now(worker: Worker, reason: str, now=None, failed: bool = False,
            only_if: tuple[str, ...] = ("queue", "starting", "running")) -> bool:
    """Mark a worker terminated and charge its time to the account (in the caller's
    write transaction), once, and only from a status in ``only_if``: False when it
    had moved on meanwhile. The browser is the runner's to stop."""
    now = now or utcnow()
    ended = (Worker.update(status="terminated", ended_at=now, end_reason=reason,
                           failed=failed)
             .where(Worker.id == worker.id, Worker.status << only_if).execute())
    used = ran_seconds(worker, now)
    if ended and used:
        Account.update(used_time=Account.used_time + used).where(
            Account.id == worker.account_id).execute()
    return bool(ended)


def forget_lock(settings, worker_id: int) -> None:
    """A worker's lock file, once its browser is gone."""
    settings.data.worker_lock(worker_id).unlink(missing_ok=True)


@contextmanager
def worker_lock(settings, worker_id: int, backend):
    """Commands to one browser, serialised across the processes of this host, for
    backends that serve one session at a time (Marionette); WebDriver ones take
    concurrent commands on their session."""
    if not backend.one_session:
        yield
        return
    data = settings.data
    with open(data.prepare(data.worker_lock(worker_id)), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def command(farm, worker: Worker, name: str, *args):
    """``screenshot`` or ``navigate`` on a worker's browser: through its runner's
    session keeper when it has one (browserfarm.browsers.keeper), else through the handle. A
    browser that is gone or fails is the 422 a client can act on, not a 500."""
    backend = farm.plugins.worker_backends.get(worker.backend)
    if backend is None:
        raise Unprocessable(f"The {worker.backend} backend is not enabled here")
    handle = Handle.from_json(worker.handle)
    try:
        if handle.keeper:
            try:
                return keeper.ask(handle.keeper_reference, worker.id, name, list(args),
                                  timeout=60)
            except keeper.KeeperGone:
                pass  # its runner is gone, and with it the session: attach anew
        with worker_lock(farm.settings, worker.id, backend):
            call = {"screenshot": backend.screenshot, "navigate": backend.navigate}[name]
            return call(handle, *args)
    except Exception as exc:  # noqa: BLE001 - any driver error is the browser's
        raise Unprocessable(f"The browser did not answer: {short_reason(exc)}") from exc


def short_reason(exc: Exception) -> str:
    """An exception's first line, for a worker's end reason or a 422."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# ----- the queue (the runner's side) ------------------------------------------------

def claim_next(farm, runner: str, backends: list[str] | None = None) -> Worker | None:
    """Take the oldest queued worker whose account has a free slot, atomically: with
    several runners each worker is claimed once (SKIP LOCKED on PostgreSQL; SQLite
    serialises writers)."""
    db = farm.db
    with write_transaction(db):
        active = (Worker.select(Worker.account, pw.fn.COUNT(Worker.id).alias("n"))
                  .where(Worker.status << ACTIVE).group_by(Worker.account))
        full = (Account.select(Account.id).join(active, on=(active.c.account_id == Account.id))
                .where(active.c.n >= Account.sessions_limit))
        out_of_time = Account.select(Account.id).where(
            Account.api_time_limit.is_null(False), Account.used_time >= Account.api_time_limit)
        query = (Worker.select().where(Worker.status == "queue",
                                       Worker.account.not_in(full),
                                       Worker.account.not_in(out_of_time))
                 .order_by(Worker.id).limit(1))
        if backends is not None:
            query = query.where(Worker.backend << backends)
        if isinstance(db, pw.PostgresqlDatabase):
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        worker = query.first()
        if worker is None:
            return None
        if isinstance(db, pw.PostgresqlDatabase):
            # SKIP LOCKED hides another runner's claim not committed yet: the account's
            # row lock makes claims of one account wait for each other, then recount.
            limit = (Account.select(Account.sessions_limit)
                     .where(Account.id == worker.account_id).for_update().scalar())
            running = Worker.select().where(Worker.account == worker.account_id,
                                            Worker.status << ACTIVE).count()
            if running >= limit:
                return None
        claimed = (Worker.update(status="starting", runner=runner)
                   .where(Worker.id == worker.id, Worker.status == "queue").execute())
        if not claimed:
            return None
        worker.status, worker.runner = "starting", runner
        return worker
