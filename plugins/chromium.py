"""The Chromium browser backend: Debian's chromium, driven over W3C WebDriver by a
chromedriver (Debian's chromium-driver) that we start ourselves, one per worker. No
Selenium Manager and no downloads: only what is installed runs.

A worker's handle is all it takes to reach the browser again, from any process: the
chromedriver's URL and session id, and the pids (with their start times, so that a pid
the kernel gave to another process since is never signalled) to reap what is left when
the session cannot be ended politely.

Run as root, chromedriver and Chromium run as an unprivileged user (settings.browser_user,
made at set-up by scripts/ensure-browser-user) in a temporary directory it owns, with
Chromium's sandbox on: its renderers in a user namespace of their own under seccomp.
``--no-sandbox`` only where the operator allows it (BROWSERFARM_CHROMIUM_NO_SANDBOX=1),
for hosts without unprivileged user namespaces.

Chromium is headed, on a virtual X display of the worker's own (Xvfb) at the worker's
resolution: its screen is real, and nothing says ``HeadlessChrome`` (its user agent,
the User-Agent header, userAgentData's brands). The display goes with the worker.
A Grid's Chromium runs on another machine, headless as its operator set it up."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from selenium.common.exceptions import WebDriverException

from browserfarm.pluginapi import (DriverHandle, Launched, VirtualDisplay, WebDriverBackend,
                                   WorkerSpec, free_port, hookimpl, host_os_version,
                                   parse_size, processes, remote, stop_display)

# Quiet: nothing leaves around the window's proxy. The sandbox stays on.
BASE_ARGS = ("--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run")
DRIVER_START_TRIES = 3  # chromedriver exits when its port was taken meanwhile
TEMP_PREFIX = "browserfarm-chromium-"


def chromium_args(spec: WorkerSpec, local: bool = True, sandbox: bool = True) -> list[str]:
    """Chromium's command line for a worker; ``local`` False for a browser on another
    machine (a Grid node), where our profile directory, relay and display don't exist
    (and whose sandbox is its operator's: a node run as root sets --no-sandbox itself).
    Here it shows on its own display of screen_size(spec); a Grid's is headless."""
    fp = spec.fingerprint or {}
    screen = screen_size(spec)
    if local:
        # Chromium's X11 code shrinks a window exactly the size of its screen to one
        # pixel less each way: a row less keeps the width asked, as over a taskbar.
        height = spec.height - 1 if (spec.width, spec.height) == screen else spec.height
        args = [*BASE_ARGS, "--window-position=0,0", f"--window-size={spec.width},{height}"]
    else:  # the page would otherwise see an 800x600 screen around a larger window
        args = [*BASE_ARGS, "--headless", f"--window-size={spec.width},{spec.height}",
                f"--screen-info={{{screen[0]}x{screen[1]}}}"]
    if not sandbox:
        args.append("--no-sandbox")
    if local and spec.relay_port:
        # socks5://: Chromium resolves names through the proxy. QUIC and WebRTC's UDP
        # would go around it.
        # <-loopback>: localhost and 127.0.0.1 too, which Chromium would reach directly.
        args += [f"--proxy-server=socks5://127.0.0.1:{spec.relay_port}",
                 "--proxy-bypass-list=<-loopback>", "--disable-quic",
                 "--force-webrtc-ip-handling-policy=disable_non_proxied_udp"]
    if fp.get("userAgent"):
        args.append(f"--user-agent={fp['userAgent']}")
    if fp.get("languages"):
        args.append(f"--lang={str(fp['languages']).split(',')[0].strip()}")
    return args


def screen_size(spec: WorkerSpec) -> tuple[int, int]:
    """The screen a worker's page sees: a bound window's resolution, else the worker's."""
    return parse_size((spec.fingerprint or {}).get("resolution")) or (spec.width, spec.height)


def chrome_options(spec: WorkerSpec, binary: str | None = None, local: bool = True,
                   sandbox: bool = True) -> dict:
    """``goog:chromeOptions`` for a worker."""
    options: dict = {"args": chromium_args(spec, local, sandbox)}
    if binary:
        options["binary"] = binary
    if spec.fingerprint.get("languages"):  # --lang alone sets only the first language
        options["prefs"] = {"intl.accept_languages": str(spec.fingerprint["languages"])}
    return options


class Chromium(WebDriverBackend):
    name = "chromium"
    executables = ("chromium", "chromium-browser")

    @classmethod
    def driver(cls) -> str | None:
        return shutil.which("chromedriver")

    @classmethod
    def unavailable_reason(cls):
        reason = super().unavailable_reason()
        if reason is None and cls.driver() is None:
            reason = "chromedriver is not installed (Debian package chromium-driver)"
        if reason is None and shutil.which("Xvfb") is None:
            reason = "Xvfb is not installed (Debian package xvfb)"
        return reason

    @classmethod
    def catalogue(cls, settings) -> list[dict]:
        """Chromium, also listed as "chrome": that is the name v5 users and their
        clients ask for, and Chromium is the same engine at the same version."""
        if cls.unavailable_reason():
            return []
        major = cls.version().split(".")[0]
        if not major:
            return []
        entry = {"os": "Linux", "os_version": host_os_version(), "browser_version": f"{major}.0",
                 "device": None, "real_mobile": None}
        return [{"browser": "chromium"} | entry, {"browser": "chrome"} | entry]

    @classmethod
    def start_worker(cls, spec: WorkerSpec, settings) -> Launched:
        reason = cls.unavailable_reason()
        if reason:
            raise RuntimeError(f"chromium: {reason}")
        user = processes.browser_user(settings.browser_user)
        sandbox = not settings.chromium_no_sandbox
        if sandbox and user is None and os.geteuid() == 0:
            raise RuntimeError(
                "chromium: its sandbox does not run as root: set BROWSERFARM_BROWSER_USER "
                "to an unprivileged user (`make setup` creates browserfarm-browser), or "
                "BROWSERFARM_CHROMIUM_NO_SANDBOX=1 to run it without the sandbox")
        deadline = time.monotonic() + spec.timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 1.0)

        # chromedriver makes the browser's profile in TMPDIR: ours, so stop() removes it
        # even after the driver was killed. Short, under /tmp, whatever spec.profile_dir
        # is: Chromium's sockets there must fit a Unix socket path (108 bytes). And its
        # own profile starts ~0.4 s sooner than an empty --user-data-dir (bench/workers).
        # Run as another user, it is that user's (0700) and its HOME.
        temp_dir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        spec = replace(spec, profile_dir=Path(temp_dir))
        handle = DriverHandle(cls.name, temp_dir=temp_dir)
        try:
            if user:
                os.chown(temp_dir, user.uid, user.gid)
            # Its own display, the user's: it carries the runner's mark like the browser.
            display = VirtualDisplay.start(*screen_size(spec), user=user,
                                           log_path=spec.log_path, env=spec.env)
            handle = replace(handle, display=display.name, display_pid=display.pid,
                             xauthority=display.xauthority)
            spec = replace(spec, env=spec.env | display.env())
            driver = _start_driver(cls.driver(), spec, deadline, user)
            handle = replace(handle, executor=driver.executor, pids=[driver.pid],
                             pgid=driver.pid, starts={str(driver.pid): driver.start})
            capabilities = {"browserName": "chrome",
                            "goog:chromeOptions": chrome_options(spec, cls.executable(),
                                                                 sandbox=sandbox),
                            "timeouts": {"pageLoad": int(spec.timeout * 1000)}}
            try:
                session, answered = remote.new_session(driver.executor, capabilities,
                                                       left())
            except WebDriverException as exc:
                if sandbox and not processes.user_namespaces_work(user):
                    raise RuntimeError(
                        "chromium: its sandbox needs unprivileged user namespaces, which "
                        "this host does not allow (e.g. sysctl user.max_user_namespaces, "
                        "kernel.unprivileged_userns_clone); allow them, or set "
                        "BROWSERFARM_CHROMIUM_NO_SANDBOX=1 to run without the sandbox") \
                        from exc
                raise
            handle = replace(handle, session=session)
            browser_pid = answered.get("goog:processID")
            if isinstance(browser_pid, int):
                handle = replace(handle, browser_pid=browser_pid, starts=handle.starts | {
                    str(browser_pid): processes.start_time(browser_pid)})
            # The session's capabilities set its page load timeout already.
            remote.navigate(driver.executor, session, spec.url, left(),
                            set_page_load_timeout=False)
        except BaseException:
            cls.stop(handle, timeout=10)
            raise
        return Launched(pid=handle.browser_pid or driver.pid, handle=handle)

    @classmethod
    def stop(cls, handle: DriverHandle, timeout: float = 20.0) -> bool:
        """Ends the session (chromedriver quits Chromium), then ends chromedriver and
        whatever of Chromium is left: SIGTERM, then SIGKILL; then its display. True
        when Chromium had to be signalled. Works from any process, also after the
        starter died."""
        deadline = time.monotonic() + timeout

        def left(share: float = 1.0) -> float:
            return max((deadline - time.monotonic()) * share, 0.5)

        answered = False
        if handle.session and handle.executor:
            try:
                remote.delete_session(handle.executor, handle.session, left(0.5))
                answered = True
            except WebDriverException:
                pass  # the driver is gone or hung: signals below
        if handle.executor:
            remote.forget(handle.executor)  # its port goes to another driver later
        driver_pids = {int(p) for p in handle.pids}
        browser = [pid for pid in _session_processes(handle) if pid not in driver_pids]
        if answered:  # chromedriver's quit returns as Chromium's helpers still exit
            browser = processes.wait_gone(browser, min(2.0, left()))
        everything = browser + [pid for pid in _session_processes(handle)
                                if pid not in browser]
        killed = bool(browser)
        for sig, wait in ((signal.SIGTERM, left(0.5)), (signal.SIGKILL, 5.0)):
            for pid in everything:
                processes.send(pid, sig)
            everything = processes.wait_gone(everything, wait)
            if not everything:
                break
            killed = True
        if handle.display_pid:
            stop_display(handle.display_pid, handle.xauthority, handle.display)
        if handle.temp_dir and Path(handle.temp_dir).name.startswith(TEMP_PREFIX):
            shutil.rmtree(handle.temp_dir, ignore_errors=True)
        return killed


class _Driver(NamedTuple):
    pid: int
    start: float | None  # see processes.start_time
    executor: str


def _start_driver(path: str, spec: WorkerSpec, deadline: float,
                  user: processes.User | None = None) -> _Driver:
    """A chromedriver on a free port, ready for a session, as ``user`` (None: as
    ourselves). Its own process group (start_new_session): Chromium's processes stay
    in it, so they can be found by any process, and a signal to the starter doesn't
    reach them."""
    env = dict(spec.env)
    if spec.fingerprint.get("timeZone"):
        env["TZ"] = spec.fingerprint["timeZone"]
    if spec.profile_dir:
        env["TMPDIR"] = str(spec.profile_dir)  # see Chromium.start_worker
        if user:  # not root's HOME: Chromium's caches and NSS database go here too
            env["HOME"] = str(spec.profile_dir)
    failures = []
    for _ in range(DRIVER_START_TRIES):
        port = free_port()
        executor = f"http://127.0.0.1:{port}"
        with open(spec.log_path or os.devnull, "ab") as log:
            proc = subprocess.Popen([path, f"--port={port}"], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, **processes.popen_as(user, env))
        while proc.poll() is None:
            try:
                if remote.status(executor, timeout=1).get("ready"):
                    return _Driver(proc.pid, processes.start_time(proc.pid), executor)
            except WebDriverException:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(5)
                raise TimeoutError(f"chromedriver was not ready on port {port} in time")
            time.sleep(0.01)  # it is ready in ~50 ms: don't oversleep it
        failures.append(f"port {port}: exit status {proc.returncode}")
    raise RuntimeError(f"chromedriver exited at start ({'; '.join(failures)})"
                       + (f", see {spec.log_path}" if spec.log_path else ""))


def _session_processes(handle: DriverHandle) -> list[int]:
    """The live processes of a worker: its chromedriver and Chromium, each checked
    against its start time, and every process of chromedriver's group that started
    with or after it (Chromium's helpers, also once orphaned)."""
    starts = {int(pid): start for pid, start in handle.starts.items() if start is not None}
    found = [pid for pid, start in starts.items() if processes.is_running(pid, start)]
    if handle.pgid and handle.pgid in starts:
        found += [pid for pid in processes.in_group(handle.pgid, since=starts[handle.pgid])
                  if pid not in found]
    return found


@hookimpl
def browserfarm_register_browser_backends(register):
    register(Chromium)
