"""What a runner's threads share: the browsers it runs for workers, the workers whose
browsers are starting, and the warm pool. The loop claims and ends, start threads add,
warm threads fill, end threads remove, all at once: every change is a method here,
under one lock, and readers get copies."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from browserfarm.browsers.handles import Handle


@dataclass
class Active:
    """A browser this runner started for a worker, and what it holds for it."""
    worker_id: int
    backend: type
    handle: Handle
    profile_dir: Path | None = None
    relay: object = None
    recorder: object = None  # a Recorder (browserfarm.runner.recorder), for a video
    session: object = None  # the backend's held session, until the keeper has it
    ending: bool = False  # set once (RunnerState.begin_ending): one thread ends it
    ender: threading.Thread | None = None  # that thread


@dataclass
class Warm:
    """A started browser no worker has yet (the warm pool)."""
    backend: type
    handle: Handle
    profile_dir: Path
    resolution: str
    session: object = None  # kept from its start (Launched.session)


class RunnerState:
    def __init__(self, slots: int):
        self.slots = slots  # browsers at once (active and starting)
        self._lock = threading.Lock()
        self._active: dict[int, Active] = {}
        self._starting: set[int] = set()
        self._warm: list[Warm] = []
        self._warming = 0  # warm browsers on their way
        self._closed = False  # the runner is stopping: the pool takes no more

    # ----- workers ------------------------------------------------------------------

    def free_slots(self) -> int:
        with self._lock:
            return self.slots - len(self._active) - len(self._starting)

    def add_starting(self, worker_id: int) -> None:
        """A claimed worker whose browser is being started: it holds a slot."""
        with self._lock:
            self._starting.add(worker_id)

    def remove_starting(self, worker_id: int) -> None:
        """Its start is over (it is active now, or ended)."""
        with self._lock:
            self._starting.discard(worker_id)

    def add_active(self, active: Active) -> None:
        with self._lock:
            self._active[active.worker_id] = active

    def remove_active(self, worker_id: int) -> None:
        with self._lock:
            self._active.pop(worker_id, None)

    def active(self) -> dict[int, Active]:
        """A copy: worker id -> what this runner holds for it."""
        with self._lock:
            return dict(self._active)

    def begin_ending(self, active: Active) -> bool:
        """True for the one caller that is to end ``active``; False if one already is."""
        with self._lock:
            if active.ending:
                return False
            active.ending = True
            return True

    # ----- the warm pool ------------------------------------------------------------

    def warm(self) -> list[Warm]:
        """A copy of the pool."""
        with self._lock:
            return list(self._warm)

    def take_warm(self, backend, resolution: str) -> Warm | None:
        """A warm browser of ``backend`` at ``resolution``, now out of the pool (no
        other worker gets it)."""
        with self._lock:
            for warm in self._warm:
                if warm.backend is backend and warm.resolution == resolution:
                    self._warm.remove(warm)
                    return warm
        return None

    def begin_warming(self, backend, size: int) -> bool:
        """True if a warm browser of ``backend`` is to be started now (counted as on its
        way until ``end_warming``): one at a time, up to ``size`` in the pool."""
        with self._lock:
            if self._closed or self._warming:
                return False
            if sum(1 for w in self._warm if w.backend is backend) >= size:
                return False
            self._warming += 1
            return True

    def end_warming(self, warm: Warm | None) -> bool:
        """A warm browser's start is over: ``warm`` joins the pool (None: it failed).
        False if the pool is closed: the caller discards ``warm``."""
        with self._lock:
            self._warming -= 1
            if warm is None or self._closed:
                return False
            self._warm.append(warm)
            return True

    def close_pool(self) -> list[Warm]:
        """The runner stops: the pool's browsers, for the caller to discard; warm
        browsers still starting are discarded by their threads."""
        with self._lock:
            self._closed = True
            warm, self._warm = self._warm, []
            return warm

    def busy(self) -> bool:
        """Browsers are on their way (for workers or the pool)."""
        with self._lock:
            return bool(self._starting or self._warming)
