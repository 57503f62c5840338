"""Opening and closing Firefox windows through the Local API agent, against a bare
mozrunner + Marionette start of a fresh profile, in the same run.

- Open until the page is loaded through the relay ÷ bare start + navigation.
  Target ≤ 1.15.
- Close (archive included) after one page visit: p50, target ≤ 1.5 s; archive size ÷
  raw profile size, target ≤ 0.25.
"""
from __future__ import annotations

import http.server
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import Result, bare_firefox, prepare_farm

ROUNDS = 3
MANY = 20


def bare_open(profile_dir: Path, url: str) -> float:
    """Seconds from nothing to ``url`` loaded in a bare Firefox."""
    started = time.perf_counter()
    with bare_firefox(profile_dir) as client:
        client.navigate(url)
        return time.perf_counter() - started


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _many_windows(agent, url: str) -> tuple[int, float]:
    """Open MANY windows, hold them all, then close them: (opened, agent KiB each)."""
    uuids = [agent.cloud.call("/browser/update", {"name": f"many {i}", "url": url})["uuid"]
             for i in range(MANY)]
    # Headless like the bare start, even on a desktop with a display.
    agent.open_window({"uuid": uuids[0], "headless": True})  # loads code: not counted
    before = _rss_kib()
    opened = 1
    for uuid in uuids[1:]:
        agent.open_window({"uuid": uuid, "headless": True})
        opened += 1
    per_window = (_rss_kib() - before) / (MANY - 1)
    print(f"  {opened} windows open, agent RSS +{per_window:.0f} KiB per window")
    agent.close_all()
    return opened, per_window


def run() -> list[Result]:
    import logging

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    from browserfarm.agent import Agent, Login
    from browserfarm.app import create_app
    from browserfarm.plugins import load_plugins

    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-") as tmp:
        tmp = Path(tmp)
        fixture = prepare_farm(tmp / "cloud", 0)
        cloud = make_server("127.0.0.1", 0, create_app(farm=fixture.farm), threaded=True)
        origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 http.server.SimpleHTTPRequestHandler)
        threads = [threading.Thread(target=s.serve_forever, daemon=True)
                   for s in (cloud, origin)]
        for thread in threads:
            thread.start()
        agent = Agent(tmp / "agent", load_plugins(), login=Login(
            server=f"http://127.0.0.1:{cloud.server_port}", token=fixture.token,
            local_token="bench"))
        url = f"http://127.0.0.1:{origin.server_port}/"
        try:
            ours, bare, closes, ratios = [], [], [], []
            for index in range(ROUNDS):
                bare.append(bare_open(tmp / f"bare-{index}", url))
                window = agent.cloud.call("/browser/update", {"name": f"bench {index}",
                                                              "url": url})
                started = time.perf_counter()
                agent.open_window({"uuid": window["uuid"], "headless": True})
                ours.append(time.perf_counter() - started)
                profile_dir = agent.data.window_profile(window["uuid"])
                started = time.perf_counter()
                closed = agent.close_window({"uuid": window["uuid"]})
                closes.append(time.perf_counter() - started)
                raw = sum(p.stat().st_size for p in profile_dir.rglob("*") if p.is_file())
                ratios.append(closed["close"]["profileZipSize"] / raw)
                print(f"  round {index}: bare {bare[-1]:.2f}s, ours {ours[-1]:.2f}s, "
                      f"close {closes[-1]:.2f}s, archive {ratios[-1]:.3f} of {raw} B")
            many = _many_windows(agent, url)
        finally:
            agent.shutdown()
            cloud.shutdown()
            origin.shutdown()
            fixture.farm.close()
    open_ratio = statistics.median(ours) / statistics.median(bare)
    close_p50 = statistics.median(closes)
    archive = statistics.median(ratios)
    opened, per_window_kib = many
    return [
        Result(f"{MANY} windows open at once", opened / MANY, f"{opened} of {MANY} opened",
               f"all {MANY}", opened == MANY),
        Result("agent memory per open window", per_window_kib / 5120,
               f"{per_window_kib:.0f} KiB of the agent's RSS per window (Firefox's own "
               "processes not counted)", "<= 5 MiB", per_window_kib <= 5120),
        Result("window open until loaded, ours/bare", open_ratio,
               f"ours {statistics.median(ours):.2f}s, bare mozrunner+Marionette "
               f"{statistics.median(bare):.2f}s (median of {ROUNDS})", "<= 1.15",
               open_ratio <= 1.15),
        Result("window close p50 (archive included)", close_p50 / 1.5,
               f"{close_p50:.2f}s", "<= 1.5 s", close_p50 <= 1.5),
        Result("profile archive / raw profile", archive, f"{archive:.3f}", "<= 0.25",
               archive <= 0.25),
    ]
