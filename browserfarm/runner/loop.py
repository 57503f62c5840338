"""The runner's loop: claim queued workers while it has free slots, keep the warm pool
filled, beat its heartbeat, and on its schedule end, check and reap (``Reaper``)."""
from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from browserfarm.browsers.keeper import SessionKeeper
from browserfarm.db import Lookup, write_transaction
from browserfarm.models import Runner as RunnerRow
from browserfarm.models import Worker, utcnow
from browserfarm.runner.launch import Launcher
from browserfarm.runner.reaper import MARK_VARIABLE, Reaper
from browserfarm.runner.state import Active, RunnerState, Warm
from browserfarm.runner.warm import WarmPool
from browserfarm.services.workers import RUNNER_STALE_AFTER, claim_next

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between a runner's "still alive" writes
PURGE_EVERY = 3600.0  # seconds between tidyings of old workers' files
ALIVE_CHECK = 2.0  # seconds between checks that each browser still runs
# Seconds between looks for workers due to end (their timeout, or a DELETE): "within
# a few seconds" needs no more, and the queue's 10 ms polls stay a single cheap read.
END_CHECK = 0.2
SHUTDOWN_WAIT = 60.0  # seconds a stopping runner waits for browsers on their way

# Asked every poll (10 ms): its SQL is built once (browserfarm.db.Lookup).
_ANY_QUEUED = Lookup(lambda: Worker.select(Worker.id).where(Worker.status == "").limit(1))


def default_name() -> str:
    return f"{socket.gethostname()}:runner"


@dataclass
class WorkerRunner:
    farm: object
    name: str = field(default_factory=default_name)
    slots: int = 4  # browsers at once on this runner
    poll: float = 0.01  # seconds between looks at the queue (a read, no lock)

    def __post_init__(self):
        self.settings = self.farm.settings
        self.state = RunnerState(self.slots)
        self.stopping = threading.Event()
        self.ready = threading.Event()  # reconciled, serving the queue
        self.keeper: SessionKeeper | None = None  # while run() runs
        self.launcher = Launcher(self)
        self.pool = WarmPool(self)
        self.reaper = Reaper(self)
        self._last = {"heartbeat": 0.0, "end": 0.0, "alive": 0.0, "stale": 0.0, "purge": 0.0}

    @property
    def mark(self) -> str:
        """The environment value every process this runner starts carries (browsers,
        drivers, ffmpeg; see WorkerSpec.env): its name and data dir, so a restart
        finds what a dead run left."""
        return f"{self.name}@{self.settings.data_dir}"  # absolute (load_settings)

    @property
    def mark_env(self) -> dict:
        """What the environment of each process this runner starts gains."""
        return {MARK_VARIABLE: self.mark}

    @property
    def active(self) -> dict[int, Active]:
        """A copy: worker id -> the browser this runner runs for it."""
        return self.state.active()

    @property
    def warm(self) -> list[Warm]:
        """A copy of the warm pool."""
        return self.state.warm()

    # ----- the loop -----------------------------------------------------------------

    def run(self) -> None:
        """Until ``stop()``: reap what a previous run left, then serve the queue."""
        name_lock = self._hold_name()
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
            name_lock.close()

    def stop(self) -> None:
        self.stopping.set()

    def _hold_name(self):
        """A second runner of this name and data dir would take the first one's live
        browsers for a dead run's: refuse it. The lock goes with the process."""
        data = self.settings.data
        name_lock = open(data.prepare(data.runner_lock(self.name)), "a")  # noqa: SIM115
        try:
            fcntl.flock(name_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            name_lock.close()
            raise RuntimeError(f"a runner named {self.name!r} already runs with this data "
                               "dir; give this one another --name") from None
        return name_lock  # held for the runner's life

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last["heartbeat"] > HEARTBEAT:
            self.heartbeat()
            self.reaper.expire_queue()
            self._last["heartbeat"] = now
        if now - self._last["end"] > END_CHECK:
            self.reaper.end_due()
            self._last["end"] = now
        if now - self._last["alive"] > ALIVE_CHECK:
            self.reaper.check_alive()
            self._last["alive"] = now
        if now - self._last["stale"] > RUNNER_STALE_AFTER / 2:
            self.reaper.reap_stale_runners()
            self._last["stale"] = now
        if now - self._last["purge"] > PURGE_EVERY:
            self.reaper.purge_old()
            self._last["purge"] = now
        self._claim()
        self.pool.fill()

    def _claim(self) -> None:
        while self.state.free_slots() > 0:
            # A read first: most passes find nothing, and take no write lock for it.
            if _ANY_QUEUED.first("queue", 1) is None:  # status, LIMIT
                return
            worker = claim_next(self.farm, self.name, list(self.farm.plugins.worker_backends))
            if worker is None:
                return
            self.launcher.start_in_thread(worker)

    def reconcile(self) -> None:
        """After a restart: its first heartbeat, then what a dead run left goes."""
        self.heartbeat()
        self.reaper.after_restart()

    def shutdown(self) -> None:
        """End every worker this runner holds (their time is charged) and the pool."""
        deadline = time.monotonic() + SHUTDOWN_WAIT
        while self.state.busy() and time.monotonic() < deadline:
            time.sleep(0.05)  # browsers on their way: they must not outlive the runner
        self.reaper.end_all("the runner stopped")
        self.pool.close()
        self.launcher.close()  # no browser of ours uses its direct relay any more

    def heartbeat(self) -> None:
        with write_transaction(self.farm.db):
            updated = (RunnerRow.update(pid=os.getpid(), host=socket.gethostname(),
                                        seen_at=utcnow())
                       .where(RunnerRow.name == self.name).execute())
            if not updated:
                RunnerRow.create(name=self.name, host=socket.gethostname(), pid=os.getpid())
