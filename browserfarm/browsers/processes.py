"""Processes, through psutil: what the browser backends and the runner need to tell
whether a browser still runs, find what was started for it, signal it, and wait for
it to go; and the unprivileged user browsers run as when we are root."""
from __future__ import annotations

import os
import pwd
import subprocess
import time
from typing import NamedTuple

import psutil

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class User(NamedTuple):
    name: str
    uid: int
    gid: int


def browser_user(name: str) -> User | None:
    """Who browsers run as: None for ourselves, when we are not root or ``name``
    (BROWSERFARM_BROWSER_USER) is empty or root; else that user, which must exist
    (scripts/ensure-browser-user creates it at set-up)."""
    if os.geteuid() != 0 or name in ("", "root"):
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"the user {name!r} that browsers run as does not exist: run "
                           "`make setup` (scripts/ensure-browser-user creates it) or set "
                           "BROWSERFARM_BROWSER_USER to another unprivileged user") from None
    if entry.pw_uid == 0:
        return None
    return User(name, entry.pw_uid, entry.pw_gid)


# What a browser run as another user inherits of our environment: anything else
# (our settings, DATABASE_URL, AWS_*, PG*, ...) that user could read in /proc.
INHERITED = ("PATH", "LANG", "LANGUAGE", "TZ", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY",
             "HOME", "TMPDIR")


def popen_as(user: User | None, add: dict | None = None) -> dict:
    """Popen's keywords that start a process as ``user`` (None: as ourselves, with
    our whole environment) and ``add`` to its environment. Another user gets only
    INHERITED and LC_* of ours, and ``add``: what we set for it (HOME, TMPDIR, TZ,
    MOZ_*, the runner's mark BROWSERFARM_RUNNER)."""
    env = dict(os.environ)
    if user is not None:
        env = {k: v for k, v in env.items() if k in INHERITED or k.startswith("LC_")}
    env |= add or {}
    if user is None:
        return {"env": env}
    return {"env": env, "user": user.uid, "group": user.gid, "extra_groups": []}


def as_user_command(user: User | None, command: list[str]) -> list[str]:
    """``command`` run as ``user`` by util-linux's setpriv, for a starter that cannot
    change user itself (mozrunner): setpriv changes user, drops every group, then
    execs the command, which keeps its pid."""
    if user is None:
        return command
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--", *command]


def user_namespaces_work(user: User | None) -> bool:
    """Whether ``user`` (None: we) may create a user namespace, which Chromium's
    sandbox needs (Debian's chromium has no setuid sandbox helper)."""
    try:
        return subprocess.run(["unshare", "--user", "true"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10,
                              **popen_as(user)).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def exists(pid: int) -> bool:
    """The process exists, even as a zombie nobody reaped yet."""
    return psutil.pid_exists(pid)


def alive(pid: int) -> bool:
    """Running: it exists and is not a zombie waiting for its parent. A main thread
    that exited while other threads still run shows as a zombie too: that process is
    still running."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE or process.num_threads() > 1
    except psutil.Error:
        return False


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch): with the pid, who it is."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_running(pid: int, started: float) -> bool:
    """Still the process that started at ``started`` (start_time()), and no zombie.
    Handles stored before psutil counted clock ticks since boot: read as such."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - _as_epoch(started)) < 0.05 \
            and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def in_group(pgid: int, since: float) -> list[int]:
    """The running processes of process group ``pgid`` that started at or after
    ``since`` (older ones hold a pgid reused since)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE \
                    and process.create_time() >= _as_epoch(since) - 0.05:
                found.append(process.pid)
        except (psutil.Error, OSError):  # gone meanwhile
            continue
    return found


def cmdline(pid: int) -> list[str] | None:
    """Its command line; None once it is gone (or not ours to read)."""
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return None


def with_env(name: str, value: str) -> list[int]:
    """The running processes whose environment has ``name=value``."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(name) == value and alive(process.pid):
                found.append(process.pid)
        except psutil.Error:  # gone, or not ours to read
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
    reaped, or it would stay a zombie for as long as we run (psutil's wait() would
    reap it too, but blocks; this is one look)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its parent (or init) reaps it
        return not alive(pid)
    return reaped == pid


def _as_epoch(started: float) -> float:
    """Clock ticks since boot (as /proc/<pid>/stat shows them; handles stored before
    psutil) as seconds since the epoch; those pass as they are."""
    return psutil.boot_time() + started / _CLOCK_TICKS if started < 1e9 else started
