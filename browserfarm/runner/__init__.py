"""``browserfarm runner``: owns the lifecycles of v5 workers. It claims queued workers
(services.workers.claim_next), starts their browsers through the backends, ends each
at its time, records videos, keeps a warm pool, and after its own restart reaps what
it left behind. API processes reach the browsers through the stored handles.

- ``loop``: WorkerRunner, the claim loop, its schedule, heartbeat and shutdown;
- ``launch``: starting a claimed worker's browser, and releasing what it holds;
- ``warm``: the warm pool;
- ``recorder``: videos;
- ``reaper``: ending due workers and dead browsers, queue expiry, stale runners,
  a dead run's processes (``kill_marked``), old workers' files;
- ``state``: what the runner's threads share, under one lock.
"""
from browserfarm.runner.loop import WorkerRunner, default_name
from browserfarm.runner.reaper import MARK_VARIABLE, kill_marked

__all__ = ["MARK_VARIABLE", "WorkerRunner", "default_name", "kill_marked"]
