"""Ending: workers due (their timeout, a DELETE), browsers that exited, workers queued
too long, the workers of runners gone silent, what a dead run of this runner left
(``kill_marked``), and old workers' files."""
from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from browserfarm.browsers import processes
from browserfarm.browsers.display import stop_display
from browserfarm.browsers.handles import Handle
from browserfarm.db import write_transaction
from browserfarm.models import Runner as RunnerRow
from browserfarm.models import Screenshot, Worker, utcnow
from browserfarm.runner.launch import quietly, release
from browserfarm.runner.state import Active
from browserfarm.services.workers import RUNNER_STALE_AFTER, end_now

if TYPE_CHECKING:
    from browserfarm.runner.loop import WorkerRunner

log = logging.getLogger(__name__)

#: The environment variable every process a runner starts carries (browsers, drivers,
#: ffmpeg), valued with the runner's mark (WorkerRunner.mark): what ``kill_marked`` finds.
MARK_VARIABLE = "BROWSERFARM_RUNNER"


class Reaper:
    def __init__(self, runner: WorkerRunner):
        self.runner = runner
        self.farm = runner.farm
        self.settings = runner.settings
        self.state = runner.state

    # ----- this runner's workers ----------------------------------------------------

    def end_due(self) -> None:
        active = self.state.active()
        if not active:
            return
        # Due now, or terminated already by a DELETE (the browser is still ours to stop).
        due = Worker.select(Worker.id, Worker.end_reason).where(
            Worker.runner == self.runner.name,
            ((Worker.status == "running") & (Worker.ends_at <= utcnow()))
            | ((Worker.status == "terminated") & Worker.id.in_(list(active))))
        for row in due:
            if row.id in active:
                self.end_in_thread(active[row.id], row.end_reason or "timeout")

    def check_alive(self) -> None:
        """Browsers that exited end their workers (in threads: the loop must go on)."""
        for active in self.state.active().values():
            if not active.ending and not quietly(lambda a=active: a.backend.alive(a.handle)):
                self.end_in_thread(active, "the browser exited", failed=True)

    def end_in_thread(self, active: Active, reason: str, failed: bool = False) -> None:
        """Unless a thread ends it already: stop its browser, then end the worker."""
        if not self.state.begin_ending(active):
            return
        active.ender = threading.Thread(target=self._finish_in_thread, daemon=True,
                                        args=(active, reason, failed),
                                        name=f"end-worker-{active.worker_id}")
        active.ender.start()

    def _finish_in_thread(self, active: Active, reason: str, failed: bool) -> None:
        with self.farm.db.connection_context():
            self._finish(active, reason, failed)

    def _finish(self, active: Active, reason: str, failed: bool) -> None:
        """Stop the browser, then mark the worker ended: its time stops at the mark."""
        try:
            release(self.runner, active)
            with write_transaction(self.farm.db):
                worker = Worker.get_or_none(Worker.id == active.worker_id)
                if worker is not None and worker.status != "terminated":
                    end_now(worker, reason, failed=failed)
        finally:  # a failed mark must not keep the slot taken (and ``ending``) for good
            self.state.remove_active(active.worker_id)

    def end_all(self, reason: str) -> None:
        """Every worker this runner holds, at once (a slow browser doesn't hold up the
        others), and wait for them."""
        for active in self.state.active().values():
            self.end_in_thread(active, reason)
        for active in self.state.active().values():
            if active.ender is not None:
                active.ender.join(60)

    def after_restart(self) -> None:
        """No leaked browser, no worker stuck, after a restart (even ``kill -9``):
        workers are ended through their handles; browsers no handle records (warm ones,
        ones still starting) by the mark every process this runner starts carries."""
        left = Worker.select().where(Worker.runner == self.runner.name,
                                     Worker.status << ("starting", "running"))
        for worker in left:
            self.reap(worker, "the runner restarted")
        kill_marked(self.runner.mark)
        shutil.rmtree(self.settings.data.warm_profiles, ignore_errors=True)

    # ----- everyone's workers -------------------------------------------------------

    def expire_queue(self) -> None:
        limit = utcnow() - timedelta(seconds=self.settings.queue_timeout)
        with write_transaction(self.farm.db):
            for worker in Worker.select().where(Worker.status == "queue",
                                                Worker.created_at < limit):
                end_now(worker, "no browser was free within the queue timeout "
                                f"({self.settings.queue_timeout:g} s)", failed=True,
                        only_if=("queue",))  # not one a runner claimed meanwhile

    def reap(self, worker: Worker, reason: str, local: bool = True) -> None:
        """End a worker whose runner is gone, stopping its browser by the handle:
        always for remote browsers (a Grid), for local ones only on their own host."""
        backend = self.farm.plugins.worker_backends.get(worker.backend)
        handle = Handle.from_json(worker.handle) if worker.handle else None
        if handle is not None and backend is not None and (local or handle.remote):
            quietly(lambda: backend.stop(handle))
        shutil.rmtree(self.settings.data.worker_profile(worker.id), ignore_errors=True)
        with write_transaction(self.farm.db):
            end_now(worker, reason, failed=True)

    def reap_stale_runners(self) -> None:
        """Workers of runners silent for RUNNER_STALE_AFTER: ended, browsers stopped where
        the handle reaches them (the same host, or a Grid)."""
        stale = RunnerRow.select().where(
            RunnerRow.seen_at < utcnow() - timedelta(seconds=RUNNER_STALE_AFTER),
            RunnerRow.name != self.runner.name)
        for row in stale:
            for worker in Worker.select().where(Worker.runner == row.name,
                                                Worker.status << ("starting", "running")):
                self.reap(worker, f"its runner {row.name} stopped answering",
                          local=row.host == socket.gethostname())
            row.delete_instance()

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
        data = self.settings.data
        for worker_id in old:
            data.video(worker_id).unlink(missing_ok=True)
            data.worker_log(worker_id).unlink(missing_ok=True)
        return len(old)


def kill_marked(mark: str) -> list[int]:
    """Kill the processes (other than this one) whose environment carries ``mark``:
    SIGTERM, then SIGKILL for those still there after 5 s. Our displays among them are
    stopped as displays: their cookie files and sockets go too."""
    found = [pid for pid in processes.with_env(MARK_VARIABLE, mark) if pid != os.getpid()]
    rest = [pid for pid in found if not stop_display(pid)]
    for pid in rest:
        processes.send(pid, 15)
    for pid in processes.wait_gone(rest, 5):
        processes.send(pid, 9)
    processes.wait_gone(rest, 5)
    return found
