"""Starting a claimed worker's browser: from the warm pool or anew (with its bound
window's relay), marking the worker running, and releasing all it holds when it
can't run or has ended."""
from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from browserfarm.browsers.backends import WorkerSpec, start_worker
from browserfarm.browsers.display import parse_size
from browserfarm.db import write_transaction
from browserfarm.models import Window, Worker, utcnow
from browserfarm.net.policy import FarmPorts, farm_root
from browserfarm.net.proxy import ProxyFailure, ProxySettings
from browserfarm.net.relay import Guard, Relay, RelayLimits
from browserfarm.runner.recorder import Recorder, display_env
from browserfarm.runner.state import Active
from browserfarm.services.proxies import proxy_options, window_proxy
from browserfarm.services.windows import REVEAL_ALL, windows_to_api
from browserfarm.services.workers import end_now, forget_lock, short_reason, worker_lock

if TYPE_CHECKING:
    from browserfarm.runner.loop import WorkerRunner

log = logging.getLogger(__name__)

DIRECT = "direct"


def farm_ports(runner: WorkerRunner, root_pid: int | None) -> FarmPorts:
    """The farm's own service ports a runner knows: the API and Local API ports, this
    process's relays and session keeper, and what processes under ``root_pid`` listen
    on (net.policy.FarmPorts)."""
    def own() -> set[int]:
        settings, keeper = runner.settings, runner.keeper
        ports = {settings.port, settings.local_port, *runner.farm.relays.ports()}
        if keeper is not None:
            ports.add(urlsplit(keeper.url).port)
        return ports
    return FarmPorts(own, root_pid)


class Launcher:
    """A runner's starts: ``start(worker)`` in a thread of its own per worker."""

    def __init__(self, runner: WorkerRunner):
        self.runner = runner
        self.farm = runner.farm
        self.settings = runner.settings
        # What its direct relay may not reach: every process under the farm's root,
        # or (without `browserfarm up`) under this one: its browsers and drivers.
        self.guard = Guard(self.settings.network_policy,
                           farm_ports(runner, farm_root() or os.getpid()))
        # A proxy's own address: the farm's services, and this runner's relays (a
        # window's paid proxy, another account's).
        self._proxy_ports = farm_ports(runner, farm_root())
        self._direct: Relay | None = None  # see direct_relay
        self._direct_lock = threading.Lock()
        self._closed = False

    def direct_relay(self) -> Relay:
        """The relay of local workers bound to no window (and of warm browsers): direct,
        guarded. One per runner, started at its first use, stopped by ``close``."""
        with self._direct_lock:
            if self._closed:  # a late start must not leave a relay behind
                raise RuntimeError("the runner is stopping")
            if self._direct is None:
                self._direct = self._start_relay(ProxySettings(DIRECT), RelayLimits())
            return self._direct

    def _start_relay(self, proxy: ProxySettings, limits: RelayLimits,
                     account_id: int | None = None) -> Relay:
        """A relay for ``proxy``; a direct one is guarded (a proxy decides for itself
        where it connects)."""
        proxy_type = self.farm.plugins.proxy_types.get(proxy.type)
        if proxy_type is None:
            raise RuntimeError(f"proxy type {proxy.type!r} is not available here")
        guard = self.guard if proxy.type == DIRECT else None
        options = (self.farm.proxy_options if account_id is None  # an account's SSH keys
                   else proxy_options(self.farm, account_id))
        options = replace(options, farm_ports=self._proxy_ports)
        return self.farm.relays.start(proxy_type(proxy, options), limits,
                                      guard=guard)

    def close(self) -> None:
        """The runner stops: its direct relay goes."""
        with self._direct_lock:
            self._closed = True
            if self._direct is not None:
                self.farm.relays.stop(self._direct)
                self._direct = None

    def start_in_thread(self, worker: Worker) -> None:
        """The worker holds a slot from now until its start is over."""
        self.runner.state.add_starting(worker.id)
        threading.Thread(target=self._start, args=(worker,), daemon=True,
                         name=f"start-worker-{worker.id}").start()

    def _start(self, worker: Worker) -> None:
        try:
            with self.farm.db.connection_context():
                try:
                    active = self.launch(worker)
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
                    release(self.runner, active)
        finally:  # only now: shutdown() waits for what is starting, then ends the active
            self.runner.state.remove_starting(worker.id)

    def launch(self, worker: Worker) -> Active:
        """The worker's browser, at its URL: a warm one if the pool has one that fits
        (an unbound worker), else a new one."""
        backend = self.farm.plugins.worker_backends.get(worker.backend)
        if backend is None:
            raise RuntimeError(f"no {worker.backend} backend on runner {self.runner.name}")
        if worker.window_id is None:
            active = self._from_pool(worker, backend)
            if active is not None:
                return active
        data = self.settings.data
        profile_dir = data.worker_profile(worker.id)
        shutil.rmtree(profile_dir, ignore_errors=True)  # a dead run's
        data.make_folder(profile_dir)
        relay, fingerprint, window = None, {}, None
        if worker.window_id is not None:
            relay, fingerprint, window = self._window_relay(worker)
        try:  # from here on the relay and the profile are ours to release
            # A Grid's nodes can't reach our relays: what they reach is up to the
            # network the Grid's operator gives them.
            relay_port = relay.port if relay else (
                self.direct_relay().port if backend.local else None)
            width, height = parse_size(worker.resolution)
            spec = WorkerSpec(
                browser=worker.browser or "", browser_version=worker.browser_version or "",
                os=worker.os, os_version=worker.os_version, url=worker.url, width=width,
                height=height, profile_dir=profile_dir, fingerprint=fingerprint,
                relay_port=relay_port,
                extra_prefs=self.farm.plugins.browser_preferences(window, backend.name),
                log_path=data.prepare(data.worker_log(worker.id)), env=self.runner.mark_env,
                keep_session=self.runner.keeper is not None)
            launched = start_worker(backend, spec, self.settings)
        except Exception:
            if relay is not None:
                self.farm.relays.stop(relay)
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise
        return Active(worker.id, backend, launched.handle, profile_dir, relay,
                      session=launched.session)

    def _from_pool(self, worker: Worker, backend) -> Active | None:
        warm = self.runner.state.take_warm(backend, worker.resolution)
        if warm is None:
            return None
        try:
            if warm.session is not None:
                warm.session.navigate(worker.url, WorkerSpec.timeout)
            else:
                backend.navigate(warm.handle, worker.url)
        except Exception:  # noqa: BLE001 - a broken warm browser: start anew
            self.runner.pool.discard(warm)
            return None
        return Active(worker.id, backend, warm.handle, warm.profile_dir, session=warm.session)

    def _window_relay(self, worker: Worker):
        """A bound window's relay (its proxy), fingerprint, and itself as the API
        shows it to its owner (for the browser_preferences hook). The runner acts for
        no user: it reads the window of the worker's own account."""
        window = Window.by_ref(worker.account_id, {"id": worker.window_id}, deleted=None)
        shown = windows_to_api(self.farm, [window.id], REVEAL_ALL)[0]
        try:  # resolving a window's proxy asks no user permission
            proxy = window_proxy(self.farm, window)
        except ProxyFailure as failure:
            raise RuntimeError(f"the window's proxy failed: {failure}") from None
        relay = self._start_relay(proxy, RelayLimits(allow_udp=window.enable_socks5_udp),
                                  worker.account_id)
        return relay, dict(window.fingerprint or {}), shown

    def _mark_running(self, worker: Worker, active: Active) -> None:
        keeper = self.runner.keeper
        held, active.session = active.session, None
        if held is None and keeper is not None:
            held = quietly(lambda: active.backend.hold(active.handle))
        if held is not None:  # commands from any process come through this runner
            active.handle = active.handle.kept_by(keeper.add(worker.id, held))
        seconds = min(worker.timeout, self.settings.worker_max_seconds)
        with write_transaction(self.farm.db):
            now = utcnow()
            marked = Worker.update(
                status="running", handle=active.handle.to_json(), started_at=now,
                ends_at=now + timedelta(seconds=seconds * self.settings.worker_time_scale)
            ).where(Worker.id == worker.id, Worker.status == "starting").execute()
        if not marked:  # deleted (or expired) while its browser started
            release(self.runner, active)
            return
        if worker.video:
            active.recorder = Recorder(self.farm, worker.id, self._shooter(active),
                                       self.runner.mark_env, display_env(active.handle))
            active.recorder.start()
        self.runner.state.add_active(active)

    def _shooter(self, active: Active):
        """How this runner takes a worker's screenshot (for its video)."""
        keeper = self.runner.keeper
        if keeper is not None and active.handle.keeper:
            return lambda: keeper.run(active.worker_id, "screenshot")

        def shoot():
            with worker_lock(self.settings, active.worker_id, active.backend):
                return active.backend.screenshot(active.handle)
        return shoot


def release(runner: WorkerRunner, active: Active) -> None:
    """Everything a runner holds for a worker: recorder, session, browser, relay, dirs."""
    if active.recorder is not None:
        active.recorder.stop()
    if runner.keeper is not None:  # its session goes before the browser; a failure
        # here must not keep the browser from being stopped
        quietly(lambda: runner.keeper.remove(active.worker_id))
    with worker_lock(runner.settings, active.worker_id, active.backend):
        quietly(lambda: active.backend.stop(active.handle))
    if active.relay is not None:
        runner.farm.relays.stop(active.relay)
    if active.profile_dir is not None:
        shutil.rmtree(active.profile_dir, ignore_errors=True)
    forget_lock(runner.settings, active.worker_id)


def quietly(call):
    """``call()``, or None if it failed: best effort on the way out."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - best effort on the way out
        log.debug("ignored", exc_info=True)
        return None
