"""The SOCKS5 relay (``browserfarm/relay.py``) against microsocks, on 127.0.0.1.

Four figures, each against a baseline measured in the same run (set
``BENCH_RELAY_PROFILE=/path/file.prof`` to cProfile the relay's loop thread):

1. Throughput: 200 MiB from a local source server to a client, (a) through microsocks
   with username/password (the client speaks SOCKS5 itself) and (b) through our relay
   whose upstream is that same microsocks. Ratio: median (b) / median (a) of 3 rounds,
   alternated. Target >= 0.90.
2. Set-up latency: connect() until the first byte of a 1-byte answer, 300 sequential
   connections each way (alternated), p50. Target: the relay adds <= 1 ms; the ratio
   printed is p50 (relay) / p50 (direct).
3. 500 connections opened at once through one relay (upstream: microsocks) and held
   open together, then each fetches a 1-byte answer. The same burst straight to
   microsocks is printed for scale. Target: 0 errors; the ratio is succeeded / 500.
4. Idle memory: in a fresh process, RSS after the hub loop started, then after 50 idle
   relays (Direct type). Target <= 1 MiB per relay; the ratio is KiB per relay / 1024.

Processes: the source server, microsocks and the relay each run in their own process
(the relay as in production: a ``RelayHub`` thread, here in a child started with
``python -m bench.relay relay ...``), so the client in this process never competes with
the relay for a GIL. Every one is stopped in a ``finally``.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import ROOT, Result, clean_env, free_port, start_process, stop_process

SIZE = 200 * 1024 * 1024  # bytes per throughput transfer
SOURCE_BLOCK = 4 * 1024 * 1024  # the source server's preallocated buffer
ROUNDS = 3
LATENCY_CONNECTIONS = 300
LATENCY_WARMUP = 20
CONCURRENT = 500
IDLE_RELAYS = 50
USER, PASSWORD = "bench", "bench-secret"
TIMEOUT = 30.0  # any one socket operation
START_TIMEOUT = 15.0

TARGET_THROUGHPUT = 0.90
TARGET_ADDED_MS = 1.0
TARGET_IDLE_KIB = 1024.0


# ----- child processes (python -m bench.relay <role> ...) -----------------------------

def _source_main(bulk_port: int, tiny_port: int, size: int) -> None:
    """Bulk port: send ``size`` bytes on connect, then close. Tiny port: read one byte,
    answer one byte, close. A thread per connection; blocking sendall releases the GIL."""
    block = memoryview(b"\xa5" * SOURCE_BLOCK)

    def bulk(conn):
        with conn:
            left = size
            while left:
                n = min(left, len(block))
                conn.sendall(block[:n])
                left -= n
            conn.shutdown(socket.SHUT_WR)

    def tiny(conn):
        with conn:
            if conn.recv(1):
                conn.sendall(b"!")

    def serve(port, handler):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4096)
        while True:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            threading.Thread(target=_quiet(handler), args=(conn,), daemon=True).start()

    threading.Thread(target=serve, args=(bulk_port, bulk), daemon=True).start()
    serve(tiny_port, tiny)


def _quiet(handler):
    def run(conn):
        try:
            handler(conn)
        except OSError:
            pass  # a client that went away
    return run


def _proxy_type(upstream: str):
    """``direct`` or ``socks5:PORT``: a proxy-type instance as the farm builds it."""
    from browserfarm.net.proxy import ProxyOptions, ProxySettings
    from browserfarm_plugins.proxy_types import Direct, Socks5

    options = ProxyOptions(connect_timeout=5)
    if upstream == "direct":
        return Direct(ProxySettings("direct"), options)
    port = int(upstream.split(":", 1)[1])
    return Socks5(ProxySettings("socks5", "127.0.0.1", port, USER, PASSWORD), options)


def _relay_main(port: int, upstream: str, profile: str | None = None) -> None:
    """One relay on ``port`` until stdin closes. With ``profile``, cProfile runs on the
    hub's loop thread and its stats are written there at the end."""
    from browserfarm.net.relay import RelayHub, RelayLimits

    hub = RelayHub()
    profiler = None
    try:
        relay = hub.start(_proxy_type(upstream), RelayLimits(), port=port)
        if profile:
            import cProfile
            profiler = cProfile.Profile()

            async def enable():
                profiler.enable()  # profiles the calling thread: the loop's
            hub.call(enable())
        sys.stdin.read()  # the parent closes our stdin to stop us
        stats = relay.stats
        print(json.dumps({"accepted": stats.accepted, "refused": stats.refused,
                          "failed": stats.failed, "bytes_down": stats.bytes_down}),
              file=sys.stderr, flush=True)
    finally:
        if profiler is not None:
            async def disable():
                profiler.disable()
            hub.call(disable())
            profiler.dump_stats(profile)
        hub.close()


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _memory_main(count: int) -> None:
    """Print, as JSON, RSS (KiB) after the hub loop started and after ``count`` idle
    Direct relays."""
    import asyncio
    import gc

    from browserfarm.net.relay import RelayHub, RelayLimits

    hub = RelayHub()
    try:
        hub.call(asyncio.sleep(0))  # starts the loop thread
        _proxy_type("direct")  # imports done before the first figure
        gc.collect()
        time.sleep(0.2)
        before = _rss_kib()
        relays = [hub.start(_proxy_type("direct"), RelayLimits()) for _ in range(count)]
        time.sleep(0.2)  # every sweeper task has reached its first sleep
        gc.collect()
        after = _rss_kib()
        # Each really listens: a client gets the SOCKS5 greeting answered.
        for relay in relays[:: max(1, count // 5)]:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
                sock.sendall(b"\x05\x01\x00")
                if sock.recv(2) != b"\x05\x00":
                    raise RuntimeError("an idle relay did not answer its greeting")
        print(json.dumps({"before": before, "after": after, "count": len(relays)}))
    finally:
        hub.close()


# ----- helpers in the benchmark process -----------------------------------------------

def _raise_nofile(want: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))  # children inherit it


def _wait_port(proc: subprocess.Popen, log: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited ({proc.returncode}):\n"
                               f"{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {START_TIMEOUT}s")


class _Children:
    """The processes this benchmark started; all stopped by ``stop_all``."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], port: int, stdin: bool = False
              ) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        if stdin:  # the relay: it stops when its stdin closes
            with open(log, "wb") as out:
                proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(), stdin=subprocess.PIPE,
                                        stdout=out, stderr=subprocess.STDOUT)
        else:
            proc = start_process(cmd, log)
        self.procs.append(proc)
        _wait_port(proc, log, port)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_process(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.procs[:]):
            self.stop(proc)


def _module_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "bench.relay", *map(str, args)]


def _connect(proxy_port: int, auth: bool, port: int) -> socket.socket:
    from python_socks.sync import Proxy

    url = (f"socks5://{USER}:{PASSWORD}@127.0.0.1:{proxy_port}" if auth
           else f"socks5://127.0.0.1:{proxy_port}")
    sock = Proxy.from_url(url).connect("127.0.0.1", port, timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def _transfer(proxy_port: int, auth: bool, bulk_port: int, view: memoryview) -> float:
    """Seconds from connect() to the last of SIZE bytes."""
    started = time.perf_counter()
    sock = _connect(proxy_port, auth, bulk_port)
    received = 0
    with sock:
        while True:
            n = sock.recv_into(view)
            if not n:
                break
            received += n
    elapsed = time.perf_counter() - started
    if received != SIZE:
        raise RuntimeError(f"received {received} of {SIZE} bytes")
    return elapsed


def _first_byte(proxy_port: int, auth: bool, tiny_port: int) -> float:
    """Seconds from connect() to the first byte of the answer."""
    started = time.perf_counter()
    sock = _connect(proxy_port, auth, tiny_port)
    with sock:
        sock.sendall(b"?")
        answer = sock.recv(1)
        elapsed = time.perf_counter() - started
    if answer != b"!":
        raise RuntimeError(f"unexpected answer {answer!r}")
    return elapsed


def _burst(proxy_port: int, auth: bool, tiny_port: int, count: int
           ) -> tuple[Counter, list[float], float]:
    """``count`` threads connect at once through the proxy; once every connection is
    open (so ``count`` are open together), each sends its request and reads the answer.
    Errors by kind, per-connection connect seconds of the ones that worked, wall time."""
    errors: Counter = Counter()
    connect_times: list[float] = []
    lock = threading.Lock()
    gate = threading.Barrier(count + 1)
    all_open = threading.Event()
    settled = [0]  # connected or failed

    def settle():
        with lock:
            settled[0] += 1
            if settled[0] == count:
                all_open.set()

    def one():
        sock = None
        try:
            gate.wait(TIMEOUT)
            started = time.perf_counter()
            sock = _connect(proxy_port, auth, tiny_port)
            connected = time.perf_counter() - started
            settle()
            if not all_open.wait(TIMEOUT * 2):
                raise TimeoutError("not every connection opened in time")
            sock.sendall(b"?")
            answer = sock.recv(1)
            if answer != b"!":
                raise RuntimeError(f"unexpected answer {answer!r}")
        except Exception as exc:  # noqa: BLE001 - each failure is counted, by kind
            with lock:
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            if sock is None:
                settle()
            return
        finally:
            if sock is not None:
                sock.close()
        with lock:
            connect_times.append(connected)

    old_stack = threading.stack_size(256 * 1024)
    try:
        threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
        for t in threads:
            t.start()
    finally:
        threading.stack_size(old_stack)
    gate.wait(TIMEOUT)
    started = time.perf_counter()
    for t in threads:
        t.join(TIMEOUT * 4)
    wall = time.perf_counter() - started
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        errors["still running after the time limit"] += stuck
    return errors, connect_times, wall


def _listen_overflows() -> int | None:
    """TcpExt ListenOverflows of this network namespace (SYNs dropped for a full
    accept queue); None when unreadable."""
    try:
        names, values = [line.split() for line in
                         Path("/proc/net/netstat").read_text().splitlines()
                         if line.startswith("TcpExt:")][:2]
        return int(values[names.index("ListenOverflows")])
    except (OSError, ValueError, IndexError):
        return None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----- the benchmark ------------------------------------------------------------------

def run() -> list[Result]:
    microsocks = shutil.which("microsocks")
    if microsocks is None:
        return [Result("relay (microsocks not installed)", float("nan"),
                       "apt-get install microsocks", "-", False)]
    _raise_nofile()
    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-relay-") as tmp:
        children = _Children(Path(tmp))
        try:
            return _measure(children, microsocks)
        finally:
            children.stop_all()


def _measure(children: _Children, microsocks: str) -> list[Result]:
    bulk_port, tiny_port, socks_port, relay_port = (free_port() for _ in range(4))
    children.start("source", _module_cmd("source", bulk_port, tiny_port, SIZE), tiny_port)
    _wait_port(children.procs[-1], children.tmp / "source.log", bulk_port)
    children.start("microsocks", [microsocks, "-i", "127.0.0.1", "-p", str(socks_port),
                                  "-u", USER, "-P", PASSWORD], socks_port)
    profile = os.environ.get("BENCH_RELAY_PROFILE")  # a path: cProfile the relay loop
    relay = children.start("relay", _module_cmd("relay", relay_port, f"socks5:{socks_port}",
                                                *([profile] if profile else [])),
                           relay_port, stdin=True)
    paths = {"direct": (socks_port, True), "relay": (relay_port, False)}
    results = []

    # 1. Throughput.
    view = memoryview(bytearray(SOURCE_BLOCK))
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(ROUNDS):
        for name, (port, auth) in paths.items():
            seconds = _transfer(port, auth, bulk_port, view)
            rates[name].append(SIZE / seconds / 2**20)
    for name in paths:
        print(f"  throughput {name}: " + ", ".join(f"{r:.0f}" for r in rates[name])
              + f" MiB/s (best {max(rates[name]):.0f})")
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["relay"] / median["direct"]
    results.append(Result(
        "relay throughput 200 MiB, relay/direct", ratio,
        f"relay {median['relay']:.0f} MiB/s, microsocks direct {median['direct']:.0f} MiB/s "
        f"(median of {ROUNDS})", f">= {TARGET_THROUGHPUT:.2f}", ratio >= TARGET_THROUGHPUT))

    # 2. Set-up latency.
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(LATENCY_WARMUP + LATENCY_CONNECTIONS):
        for name, (port, auth) in paths.items():
            seconds = _first_byte(port, auth, tiny_port)
            if i >= LATENCY_WARMUP:
                latencies[name].append(seconds * 1000)
    p50 = {name: statistics.median(v) for name, v in latencies.items()}
    p90 = {name: _pct(v, 0.9) for name, v in latencies.items()}
    added = p50["relay"] - p50["direct"]
    print(f"  first byte, ms: direct p50 {p50['direct']:.3f} p90 {p90['direct']:.3f}; "
          f"relay p50 {p50['relay']:.3f} p90 {p90['relay']:.3f}")
    results.append(Result(
        "relay set-up latency p50, relay/direct", p50["relay"] / p50["direct"],
        f"added {added:.3f} ms: relay {p50['relay']:.3f} ms, direct {p50['direct']:.3f} ms "
        f"(p50 of {LATENCY_CONNECTIONS})", f"added <= {TARGET_ADDED_MS:.0f} ms",
        added <= TARGET_ADDED_MS))

    # 3. 500 at once through the relay (upstream microsocks); the same burst straight to
    # microsocks first, for scale.
    bursts = {}
    for name, (port, auth) in paths.items():
        overflows = _listen_overflows()
        bursts[name] = _burst(port, auth, tiny_port, CONCURRENT)
        after = _listen_overflows()
        errs, times, wall = bursts[name]
        spread = (f"connect p50 {_pct(times, 0.5) * 1000:.0f} ms, max "
                  f"{max(times) * 1000:.0f} ms" if times else "none connected")
        dropped = (f", accept-queue overflows {after - overflows}"
                   if None not in (overflows, after) else "")
        print(f"  {CONCURRENT} open at once, {name}: {sum(errs.values())} errors, "
              f"{wall * 1000:.0f} ms wall, {spread}{dropped}")
        for kind, n in errs.most_common(5):
            print(f"    {n} x {kind}")
    errors, times, wall = bursts["relay"]
    base_errors, _, base_wall = bursts["direct"]
    failed = sum(errors.values())
    results.append(Result(
        f"relay {CONCURRENT} concurrent connections", len(times) / CONCURRENT,
        f"{failed} errors, {wall * 1000:.0f} ms wall (slowest connect "
        f"{max(times, default=float('nan')) * 1000:.0f} ms); microsocks direct "
        f"{sum(base_errors.values())} errors, {base_wall * 1000:.0f} ms",
        "0 errors", failed == 0))

    children.stop(relay)
    print("  relay stats: " + (children.tmp / "relay.log").read_text().strip()[-300:])
    if profile:
        print(f"  relay profile written to {profile}")

    # 4. Idle memory, in a fresh process.
    done = subprocess.run(_module_cmd("memory", IDLE_RELAYS), cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr[-2000:]}")
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    per_relay = (rss["after"] - rss["before"]) / rss["count"]
    print(f"  RSS: {rss['before']} KiB with the hub loop, {rss['after']} KiB with "
          f"{rss['count']} idle relays")
    results.append(Result(
        f"relay idle memory ({IDLE_RELAYS} relays)", per_relay / 1024,
        f"{per_relay:.1f} KiB per idle relay (RSS {rss['before']} -> {rss['after']} KiB)",
        f"<= {TARGET_IDLE_KIB / 1024:.0f} MiB/relay", per_relay <= TARGET_IDLE_KIB))
    return results


def _main(argv: list[str]) -> None:
    role, args = argv[0], argv[1:]
    if role == "source":
        _source_main(int(args[0]), int(args[1]), int(args[2]))
    elif role == "relay":
        _relay_main(int(args[0]), args[1], args[2] if len(args) > 2 else None)
    elif role == "memory":
        _memory_main(int(args[0]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
