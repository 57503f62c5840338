"""Processes as /proc shows them: what the browser backends and the runner need to
tell whether a browser still runs, signal it, and wait for it to go."""
from __future__ import annotations

import os
import time


def stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields from the state on (field 3 of proc(5) is index 0);
    None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running: it exists and is not a zombie waiting for its parent."""
    fields = stat(pid)
    return fields is not None and fields[0] != "Z"


def send(pid: int, number: int) -> None:
    """A signal to a process that may be gone already."""
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Waits until the processes exit, reaping those that are our children; returns
    those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass  # not our child: its parent (or init) reaps it
        pids = [pid for pid in pids if alive(pid)]
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)
