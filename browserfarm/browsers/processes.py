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
    """Running: it exists and is not a zombie waiting for its parent. A main thread
    that exited while other threads still run shows as a zombie too: that process is
    still running."""
    fields = stat(pid)
    return fields is not None and (fields[0] != "Z" or int(fields[17]) > 1)  # num_threads


def with_env(name: str, value: str) -> list[int]:
    """The running processes whose environment has ``name=value``."""
    entry = f"{name}={value}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if entry in handle.read().split(b"\0") and alive(int(pid)):
                    found.append(int(pid))
        except OSError:  # gone, or not ours to read
            continue
    return found


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
        pids = [pid for pid in pids if not _gone(pid)]
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited, and reaped if it was our child: a child counts as gone only once
    reaped, or it would stay a zombie for as long as we run."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its parent (or init) reaps it
        return not alive(pid)
    return reaped == pid
