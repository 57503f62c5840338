"""``browserfarm runner``: owns the lifecycles of v5 workers. It claims queued workers
(services.workers.claim_next), starts their browsers through the backends, ends each
at its time, records videos, keeps a warm pool, and after its own restart reaps what
it left behind. API processes reach the browsers through the stored handles."""
from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from browserfarm import permissions as perm
from browserfarm.browsers import processes
from browserfarm.browsers.backends import WorkerSpec
from browserfarm.browsers.handles import Handle
from browserfarm.browsers.keeper import SessionKeeper
from browserfarm.db import Lookup, write_transaction
from browserfarm.models import Runner as RunnerRow
from browserfarm.models import Screenshot, Window, Worker, utcnow
from browserfarm.net.proxy import ProxyFailure
from browserfarm.net.relay import RelayLimits
from browserfarm.services.workers import (RUNNER_STALE_AFTER, claim_next, end_now,
                                          forget_lock, short_reason, video_path,
                                          worker_lock)

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between a runner's "still alive" writes
PURGE_EVERY = 3600.0  # seconds between tidyings of old workers' files
ALIVE_CHECK = 2.0  # seconds between checks that each browser still runs
# Seconds between looks for workers due to end (their timeout, or a DELETE): "within
# a few seconds" needs no more, and the queue's 10 ms polls stay a single cheap read.
END_CHECK = 0.2
VIDEO_FPS = 2


def default_name() -> str:
    return f"{socket.gethostname()}:runner"


@dataclass
class Active:
    """A browser this runner started, and what it holds for it."""
    worker_id: int
    backend: type
    handle: Handle
    profile_dir: Path | None = None
    relay: object = None
    recorder: "Recorder | None" = None
    session: object = None  # the backend's held session, until the keeper has it
    ender: threading.Thread | None = None  # the thread ending it, once due

    @property
    def ending(self) -> bool:
        return self.ender is not None


@dataclass
class Warm:
    backend: type
    handle: Handle
    profile_dir: Path
    resolution: str
    session: object = None  # kept from its start (Launched.session)


@dataclass
class WorkerRunner:
    farm: object
    name: str = field(default_factory=default_name)
    slots: int = 4  # browsers at once on this runner
    poll: float = 0.01  # seconds between looks at the queue (a read, no lock)

    def __post_init__(self):
        self.settings = self.farm.settings
        self.active: dict[int, Active] = {}
        self.starting: set[int] = set()
        self.warm: list[Warm] = []
        self.warming = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # reconciled, serving the queue
        self.keeper: SessionKeeper | None = None  # while run() runs
        self._last = {"heartbeat": 0.0, "end": 0.0, "alive": 0.0, "stale": 0.0, "purge": 0.0}

    # ----- the loop -----------------------------------------------------------------

    def run(self) -> None:
        """Until ``stop()``: reap what a previous run left, then serve the queue."""
        self._hold_name()
        self.keeper = SessionKeeper()
        try:
            with self.farm.db.connection_context():
                self.reconcile()  # its first heartbeat: POST /5/worker now waits for pages
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    with self.farm.db.connection_context():
                        self.tick()
                except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                    log.exception("runner pass failed")
                self.stopping.wait(self.poll)
            self.shutdown()
        finally:
            self.keeper.close()
            self._name_lock.close()

    def stop(self) -> None:
        self.stopping.set()

    def _hold_name(self) -> None:
        """A second runner of this name and data dir would take the first one's live
        browsers for a dead run's: refuse it. The lock goes with the process."""
        safe = re.sub(r"[^\w.-]", "_", self.name)
        path = self._dir("runners") / f"{safe}.lock"
        self._name_lock = open(path, "a")  # noqa: SIM115 - held for the runner's life
        try:
            fcntl.flock(self._name_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._name_lock.close()
            raise RuntimeError(f"a runner named {self.name!r} already runs with this data "
                               "dir; give this one another --name") from None

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last["heartbeat"] > HEARTBEAT:
            self._heartbeat()
            self._expire_queue()
            self._last["heartbeat"] = now
        if now - self._last["end"] > END_CHECK:
            self._end_due()
            self._last["end"] = now
        if now - self._last["alive"] > ALIVE_CHECK:
            self._check_alive()
            self._last["alive"] = now
        if now - self._last["stale"] > RUNNER_STALE_AFTER / 2:
            self._reap_stale_runners()
            self._last["stale"] = now
        if now - self._last["purge"] > PURGE_EVERY:
            self.purge_old()
            self._last["purge"] = now
        self._claim()
        self._fill_warm_pool()

    def reconcile(self) -> None:
        """After a restart (even ``kill -9``): no leaked browser, no worker stuck.
        Workers are ended through their handles; browsers no handle records (warm
        ones, ones still starting) by the mark every process this runner starts
        inherits (see ``mark``)."""
        self._heartbeat()
        left = Worker.select().where(Worker.runner == self.name,
                                     Worker.status << ("starting", "running"))
        for worker in left:
            self._reap(worker, "the runner restarted")
        kill_marked(self.mark)
        shutil.rmtree(self._dir("warm-profiles"), ignore_errors=True)

    @property
    def mark(self) -> str:
        """The environment value every process this runner starts carries (browsers,
        drivers, ffmpeg; see WorkerSpec.env): its name and data dir, so a restart
        finds what a dead run left."""
        return f"{self.name}@{self.settings.data_dir}"  # absolute (load_settings)

    def shutdown(self) -> None:
        """End every worker this runner holds (their time is charged) and the pool."""
        deadline = time.monotonic() + 60
        while (self.starting or self.warming) and time.monotonic() < deadline:
            time.sleep(0.05)  # browsers on their way: they must not outlive the runner
        for active in list(self.active.values()):  # all at once: a slow browser
            if not active.ending:  # doesn't hold up the others
                self._end_in_thread(active, "the runner stopped")
        for active in list(self.active.values()):
            active.ender.join(60)
        with self.lock:
            warm, self.warm = self.warm, []
        for browser in warm:
            _discard(browser.backend, browser.handle, browser.session, browser.profile_dir)

    # ----- starting -----------------------------------------------------------------

    def _claim(self) -> None:
        while len(self.active) + len(self.starting) < self.slots:
            # A read first: most passes find nothing, and take no write lock for it.
            if _ANY_QUEUED.first("queue", 1) is None:  # status, LIMIT
                return
            backends = list(self.farm.plugins.worker_backends)
            worker = claim_next(self.farm, self.name, backends)
            if worker is None:
                return
            self.starting.add(worker.id)
            threading.Thread(target=self._start, args=(worker,), daemon=True,
                             name=f"start-worker-{worker.id}").start()

    def _start(self, worker: Worker) -> None:
        try:
            with self.farm.db.connection_context():
                try:
                    active = self._launch(worker)
                except Exception as exc:  # noqa: BLE001 - any failure ends the worker
                    log.warning("worker %s did not start: %s", worker.id, exc)
                    with write_transaction(self.farm.db):
                        end_now(worker, f"the {worker.backend} browser did not start: "
                                        f"{short_reason(exc)}", failed=True)
                    return
                try:
                    self._mark_running(worker, active)
                except Exception:  # the database failed us: the browser must not stay
                    log.exception("worker %s could not be marked running", worker.id)
                    self._release(active)
        finally:  # only now: shutdown() waits for what is starting, then ends the active
            self.starting.discard(worker.id)

    def _launch(self, worker: Worker) -> Active:
        backend = self.farm.plugins.worker_backends.get(worker.backend)
        if backend is None:
            raise RuntimeError(f"no {worker.backend} backend on runner {self.name}")
        width, height = (int(n) for n in worker.resolution.split("x"))
        if worker.window_id is None:
            warm = self._take_warm(backend, worker.resolution)
            if warm is not None:
                try:
                    if warm.session is not None:
                        warm.session.navigate(worker.url, WorkerSpec.timeout)
                    else:
                        backend.navigate(warm.handle, worker.url)
                    return Active(worker.id, backend, warm.handle, warm.profile_dir,
                                  session=warm.session)
                except Exception:  # noqa: BLE001 - a broken warm browser: start anew
                    _discard(backend, warm.handle, warm.session, warm.profile_dir)
        profile_dir = self._dir("worker-profiles") / str(worker.id)
        shutil.rmtree(profile_dir, ignore_errors=True)
        profile_dir.mkdir(parents=True)
        relay, fingerprint, window = None, {}, None
        if worker.window_id is not None:
            relay, fingerprint, window = self._window_relay(worker)
        spec = WorkerSpec(browser=worker.browser or "", browser_version=worker.browser_version
                          or "", os=worker.os, os_version=worker.os_version, url=worker.url,
                          width=width, height=height, profile_dir=profile_dir,
                          fingerprint=fingerprint, relay_port=relay.port if relay else None,
                          extra_prefs=self.farm.plugins.browser_preferences(window,
                                                                            backend.name),
                          log_path=self._dir("logs") / f"worker-{worker.id}.log",
                          env={MARK_VARIABLE: self.mark}, keep_session=self.keeper is not None)
        try:
            launched = backend.start_worker(spec, self.settings)
        except Exception:
            if relay is not None:
                self.farm.relays.stop(relay)
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise
        return Active(worker.id, backend, launched.handle, profile_dir, relay,
                      session=launched.session)

    def _window_relay(self, worker: Worker):
        """A bound window's relay (its proxy), fingerprint, and itself as the API
        shows it (for the browser_preferences hook)."""
        from browserfarm.services.proxies import ProxyService
        from browserfarm.services.windows import WindowService
        window = Window.get_by_id(worker.window_id)
        caller = perm.Caller(account_id=worker.account_id, permissions=frozenset(perm.ALL))
        shown = WindowService(self.farm, caller).detail({"id": window.id})
        try:
            proxy = ProxyService(self.farm, caller).of_window(window)
        except ProxyFailure as failure:
            raise RuntimeError(f"the window's proxy failed: {failure}") from None
        proxy_type = self.farm.plugins.proxy_types.get(proxy.type)
        if proxy_type is None:
            raise RuntimeError(f"proxy type {proxy.type!r} is not available here")
        relay = self.farm.relays.start(proxy_type(proxy, self.farm.proxy_options),
                                       RelayLimits(allow_udp=window.enable_socks5_udp))
        return relay, dict(window.fingerprint or {}), shown

    def _mark_running(self, worker: Worker, active: Active) -> None:
        held, active.session = active.session, None
        if held is None and self.keeper is not None:
            held = _quietly(lambda: active.backend.hold(active.handle))
        if held is not None:  # commands from any process come through this runner
            active.handle = active.handle.kept_by(self.keeper.add(worker.id, held))
        seconds = min(worker.timeout, self.settings.worker_max_seconds)
        with write_transaction(self.farm.db):
            now = utcnow()
            marked = Worker.update(
                status="running", handle=active.handle.to_json(), started_at=now,
                ends_at=now + timedelta(seconds=seconds * self.settings.worker_time_scale)
            ).where(Worker.id == worker.id, Worker.status == "starting").execute()
        if not marked:  # deleted (or expired) while its browser started
            self._release(active)
            return
        if worker.video:
            active.recorder = Recorder(self.farm, worker.id, self._shooter(active), self.mark)
            active.recorder.start()
        with self.lock:
            self.active[worker.id] = active

    # ----- ending -------------------------------------------------------------------

    def _end_due(self) -> None:
        if not self.active:
            return
        # Due now, or terminated already by a DELETE (the browser is still ours to stop).
        due = Worker.select(Worker.id, Worker.end_reason).where(
            Worker.runner == self.name,
            ((Worker.status == "running") & (Worker.ends_at <= utcnow()))
            | ((Worker.status == "terminated") & Worker.id.in_(list(self.active))))
        for row in due:
            active = self.active.get(row.id)
            if active is not None and not active.ending:
                self._end_in_thread(active, row.end_reason or "timeout")

    def _end_in_thread(self, active: Active, reason: str, failed: bool = False) -> None:
        active.ender = threading.Thread(target=self._finish_in_thread, daemon=True,
                                        args=(active, reason, failed),
                                        name=f"end-worker-{active.worker_id}")
        active.ender.start()

    def _finish_in_thread(self, active: Active, reason: str, failed: bool = False) -> None:
        with self.farm.db.connection_context():
            self._finish(active, reason, failed)

    def _finish(self, active: Active, reason: str, failed: bool = False) -> None:
        """Stop the browser, then mark the worker ended: its time stops at the mark."""
        self._release(active)
        with write_transaction(self.farm.db):
            worker = Worker.get_or_none(Worker.id == active.worker_id)
            if worker is not None and worker.status != "terminated":
                end_now(worker, reason, failed=failed)
        with self.lock:
            self.active.pop(active.worker_id, None)

    def _shooter(self, active: Active):
        """How this runner takes a worker's screenshot (for its video)."""
        if self.keeper is not None and active.handle.keeper:
            return lambda: self.keeper.run(active.worker_id, "screenshot")

        def shoot():
            with worker_lock(self.settings, active.worker_id, active.backend):
                return active.backend.screenshot(active.handle)
        return shoot

    def _release(self, active: Active) -> None:
        """Everything this runner holds for a worker: recorder, session, browser,
        relay, dirs."""
        if active.recorder is not None:
            active.recorder.stop()
        if self.keeper is not None:  # its session goes before the browser; a failure
            # here must not keep the browser from being stopped
            _quietly(lambda: self.keeper.remove(active.worker_id))
        with worker_lock(self.settings, active.worker_id, active.backend):
            _quietly(lambda: active.backend.stop(active.handle))
        if active.relay is not None:
            self.farm.relays.stop(active.relay)
        if active.profile_dir is not None:
            shutil.rmtree(active.profile_dir, ignore_errors=True)
        forget_lock(self.settings, active.worker_id)

    def _check_alive(self) -> None:
        """Browsers that exited end their workers (in threads: the loop must go on)."""
        for active in list(self.active.values()):
            if not active.ending and not _quietly(lambda a=active: a.backend.alive(a.handle)):
                self._end_in_thread(active, "the browser exited", failed=True)

    def _expire_queue(self) -> None:
        limit = utcnow() - timedelta(seconds=self.settings.queue_timeout)
        with write_transaction(self.farm.db):
            for worker in Worker.select().where(Worker.status == "queue",
                                                Worker.created_at < limit):
                end_now(worker, "no browser was free within the queue timeout "
                                f"({self.settings.queue_timeout:g} s)", failed=True,
                        only_if=("queue",))  # not one a runner claimed meanwhile

    def _reap(self, worker: Worker, reason: str, local: bool = True) -> None:
        """End a worker whose runner is gone, stopping its browser by the handle:
        always for remote browsers (a Grid), for local ones only on their own host."""
        backend = self.farm.plugins.worker_backends.get(worker.backend)
        handle = Handle.from_json(worker.handle) if worker.handle else None
        if handle is not None and backend is not None and (local or handle.remote):
            _quietly(lambda: backend.stop(handle))
        shutil.rmtree(self._dir("worker-profiles") / str(worker.id), ignore_errors=True)
        with write_transaction(self.farm.db):
            end_now(worker, reason, failed=True)

    def purge_old(self) -> int:
        """What ended workers leave (screenshots, videos, logs) goes after the
        retention (``BROWSERFARM_WORKER_RETENTION_DAYS``); the worker rows stay, for
        the accounting. Returns how many workers were tidied."""
        limit = utcnow() - timedelta(days=self.settings.worker_retention_days)
        old = [w.id for w in Worker.select(Worker.id).where(
            Worker.status == "terminated", Worker.ended_at < limit,
            Worker.id.in_(Screenshot.select(Screenshot.worker)) | Worker.video)]
        with write_transaction(self.farm.db):
            Screenshot.delete().where(Screenshot.worker << old).execute()
        for worker_id in old:
            video_path(self.settings, worker_id).unlink(missing_ok=True)
            (self._dir("logs") / f"worker-{worker_id}.log").unlink(missing_ok=True)
        return len(old)

    def _heartbeat(self) -> None:
        with write_transaction(self.farm.db):
            updated = (RunnerRow.update(pid=os.getpid(), host=socket.gethostname(),
                                        seen_at=utcnow())
                       .where(RunnerRow.name == self.name).execute())
            if not updated:
                RunnerRow.create(name=self.name, host=socket.gethostname(), pid=os.getpid())

    def _reap_stale_runners(self) -> None:
        """Workers of runners silent for RUNNER_STALE_AFTER: ended, browsers stopped where
        the handle reaches them (the same host, or a Grid)."""
        stale = RunnerRow.select().where(
            RunnerRow.seen_at < utcnow() - timedelta(seconds=RUNNER_STALE_AFTER),
            RunnerRow.name != self.name)
        for row in stale:
            for worker in Worker.select().where(Worker.runner == row.name,
                                                Worker.status << ("starting", "running")):
                self._reap(worker, f"its runner {row.name} stopped answering",
                           local=row.host == socket.gethostname())
            row.delete_instance()

    # ----- the warm pool ------------------------------------------------------------

    def _take_warm(self, backend, resolution: str) -> Warm | None:
        with self.lock:
            for warm in self.warm:
                if warm.backend is backend and warm.resolution == resolution:
                    self.warm.remove(warm)
                    return warm
        return None

    def _fill_warm_pool(self) -> None:
        for name, size in self.settings.warm_pool.items():
            backend = self.farm.plugins.worker_backends.get(name)
            if backend is None or not backend.local or self.warming:
                continue  # a Grid keeps its own browsers
            have = sum(1 for w in self.warm if w.backend is backend)
            if have < size:
                self.warming += 1
                threading.Thread(target=self._warm_one, args=(backend,), daemon=True,
                                 name=f"warm-{name}").start()
                return

    def _warm_one(self, backend) -> None:
        try:
            profile_dir = self._dir("warm-profiles") / f"{backend.name}-{time.monotonic_ns()}"
            profile_dir.mkdir(parents=True)
            spec = WorkerSpec(browser=backend.name, url="about:blank", profile_dir=profile_dir,
                              log_path=self._dir("logs") / "warm.log",
                              env={MARK_VARIABLE: self.mark},
                              keep_session=self.keeper is not None)
            launched = backend.start_worker(spec, self.settings)
            with self.lock:
                if not self.stopping.is_set():
                    self.warm.append(Warm(backend, launched.handle, profile_dir,
                                          f"{spec.width}x{spec.height}", launched.session))
                    return
            # Started while the runner stopped: shutdown() has already ended the pool.
            _discard(backend, launched.handle, launched.session, profile_dir)
        except Exception:  # noqa: BLE001 - a pool that can't fill only costs speed
            log.exception("warm %s browser did not start", backend.name)
            time.sleep(5)
        finally:
            self.warming -= 1

    def _dir(self, name: str) -> Path:
        path = Path(self.settings.data_dir) / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class Recorder:
    """``browserstack.video``: screenshots of the running worker, VIDEO_FPS a second,
    encoded by ffmpeg into ``<data dir>/videos/<id>.mp4``."""

    def __init__(self, farm, worker_id: int, shoot, mark: str):
        self.farm, self.worker_id, self.shoot, self.mark = farm, worker_id, shoot, mark
        self.path = video_path(farm.settings, worker_id)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._record, daemon=True,
                                       name=f"video-{worker_id}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(30)

    def _record(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.mp4")
        encoder = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "image2pipe", "-framerate",
             str(VIDEO_FPS), "-c:v", "png", "-i", "-", "-c:v", "libx264", "-preset",
             "veryfast", "-pix_fmt", "yuv420p", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
             "-movflags", "+faststart", str(partial)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            env=os.environ | {MARK_VARIABLE: self.mark},
            start_new_session=True)  # a Ctrl-C to the runner's group must not cut the video
        frames = 0
        try:
            while not self.done.is_set():
                try:
                    encoder.stdin.write(self.shoot())
                    frames += 1
                except (BrokenPipeError, OSError):
                    break
                except Exception:  # noqa: BLE001 - a missed frame; the browser may be ending
                    pass
                self.done.wait(1 / VIDEO_FPS)
        finally:
            _quietly(encoder.stdin.close)
            try:
                encoder.wait(60)
            except subprocess.TimeoutExpired:
                encoder.kill()
        if frames and encoder.returncode == 0:
            os.replace(partial, self.path)
        else:
            log.warning("video of worker %s failed: %s", self.worker_id,
                        encoder.stderr.read().decode(errors="replace")[-500:])
            partial.unlink(missing_ok=True)


MARK_VARIABLE = "BROWSERFARM_RUNNER"
# Asked every poll (10 ms): its SQL is built once (browserfarm.db.Lookup).
_ANY_QUEUED = Lookup(lambda: Worker.select(Worker.id).where(Worker.status == "").limit(1))


def kill_marked(mark: str) -> list[int]:
    """Kill the processes (other than this one) whose environment carries ``mark``:
    SIGTERM, then SIGKILL for those still there after 5 s."""
    found = [pid for pid in processes.with_env(MARK_VARIABLE, mark) if pid != os.getpid()]
    for pid in found:
        processes.send(pid, 15)
    for pid in processes.wait_gone(found, 5):
        processes.send(pid, 9)
    processes.wait_gone(found, 5)
    return found


def _discard(backend, handle: Handle, session, profile_dir: Path) -> None:
    """A browser no worker has (a warm one): its session, itself, its profile."""
    if session is not None:
        _quietly(session.close)
    _quietly(lambda: backend.stop(handle))
    shutil.rmtree(profile_dir, ignore_errors=True)


def _quietly(call):
    try:
        return call()
    except Exception:  # noqa: BLE001 - best effort on the way out
        log.debug("ignored", exc_info=True)
        return None
