"""The warm pool: browsers started ahead at about:blank (``BROWSERFARM_WARM_POOL``), so
an unbound worker only waits for its page. Its contents are in RunnerState; starts
(``Launcher``) take from it."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import TYPE_CHECKING

from browserfarm.browsers.backends import WorkerSpec, start_worker
from browserfarm.runner.launch import quietly
from browserfarm.runner.state import Warm

if TYPE_CHECKING:
    from browserfarm.runner.loop import WorkerRunner

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds before the pool tries again after a failed start


class WarmPool:
    def __init__(self, runner: WorkerRunner):
        self.runner = runner
        self.state = runner.state

    def fill(self) -> None:
        """Start one more warm browser (in a thread) if a backend's pool is short."""
        for name, size in self.runner.settings.warm_pool.items():
            backend = self.runner.farm.plugins.worker_backends.get(name)
            if backend is None or not backend.local:
                continue  # a Grid keeps its own browsers
            if self.state.begin_warming(backend, size):
                threading.Thread(target=self._warm_one, args=(backend,), daemon=True,
                                 name=f"warm-{name}").start()
                return

    def _warm_one(self, backend) -> None:
        data = self.runner.settings.data
        warm = None
        try:
            profile_dir = data.make_folder(
                data.warm_profile(f"{backend.name}-{time.monotonic_ns()}"))
            spec = WorkerSpec(browser=backend.name, url="about:blank", profile_dir=profile_dir,
                              relay_port=self.runner.launcher.direct_relay().port,
                              log_path=data.prepare(data.warm_log), env=self.runner.mark_env,
                              keep_session=self.runner.keeper is not None)
            launched = start_worker(backend, spec, self.runner.settings)
            warm = Warm(backend, launched.handle, profile_dir, f"{spec.width}x{spec.height}",
                        launched.session)
        except Exception:  # noqa: BLE001 - a pool that can't fill only costs speed
            log.exception("warm %s browser did not start", backend.name)
            time.sleep(RETRY_AFTER)  # still counted as warming: no other start meanwhile
        finally:
            if not self.state.end_warming(warm) and warm is not None:
                # Started while the runner stopped: shutdown() has already ended the pool.
                self.discard(warm)

    def close(self) -> None:
        """The runner stops: its warm browsers go."""
        for warm in self.state.close_pool():
            self.discard(warm)

    @staticmethod
    def discard(warm: Warm) -> None:
        """A browser no worker has: its session, itself, its profile."""
        if warm.session is not None:
            quietly(warm.session.close)
        quietly(lambda: warm.backend.stop(warm.handle))
        shutil.rmtree(warm.profile_dir, ignore_errors=True)
