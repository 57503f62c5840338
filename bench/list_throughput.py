"""``/browser/list`` (pageSize 20, 10,000 windows) under gunicorn, 2 gthread workers, SQLite.

Baseline: a bare Flask app under gunicorn with the same settings, answering the same
JSON (a real /browser/list answer fetched first), so the ratio is what our app costs
on top of gunicorn + Flask + JSON. Two figures, each ours / bare >= 0.50: the same
page asked again and again (answered from the revision cache), and a stream where no
query repeats (every answer computed: the cold path a dashboard's varied queries take).
The rounds alternate cached, bare and cold, so a noisy moment hits all three alike.
"""
from __future__ import annotations

import http.client
import itertools
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import (Result, dumps, free_port, prepare_farm, start_process, stop_process,
                   wait_ready)

WINDOWS = 10_000
WORKERS = 2
THREADS = 4  # a few more than workers, so a worker never waits for the client
WARMUP_S = 2.0
ROUND_S = 4.0
ROUNDS = 3  # alternated ours/bare, so a noisy moment hits both alike
TARGET = 0.50
PATH = "/browser/list"
BODY = dumps({"page": 0, "pageSize": 20})


SORTS = ["seq", "id", "name", "remark", "createdTime", "updatedTime"]
PAGES = WINDOWS // 20 - 1  # pages 1..499 (page 0 is what the cached load asks)


def distinct_body(n: int) -> bytes:
    """Request n of a stream where no query repeats within 11,976 requests: more than
    the answer caches of both workers hold, so every answer is computed. Each is a full
    page of real windows; an empty keyword filters nothing but is another query."""
    body = {"page": n % PAGES + 1, "pageSize": 20,
            "sortProperties": SORTS[n // PAGES % 6],
            "sortDirection": "asc" if n // (PAGES * 6) % 2 else "desc"}
    if n // (PAGES * 12) % 2:
        body["keyword"] = ""
    return dumps(body)


def load(port: int, headers: dict, seconds: float, body=lambda n: BODY
         ) -> tuple[int, int, float]:
    """Requests answered 200, failures, elapsed seconds, from THREADS client threads."""
    stop_at = time.perf_counter() + seconds
    done, failed = [0] * THREADS, [0] * THREADS

    def client(i):
        # Keep-alive where the server allows it (gthread workers do; sync ones would
        # close each connection, and http.client would reconnect on the next request).
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while time.perf_counter() < stop_at and failed[i] < 100:
                try:
                    conn.request("POST", PATH, body(done[i] * THREADS + i), headers)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        done[i] += 1
                    else:
                        failed[i] += 1
                except (OSError, http.client.HTTPException):
                    failed[i] += 1
                    conn.close()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), sum(failed), time.perf_counter() - started


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-") as tmp:
        tmp = Path(tmp)
        data_dir = tmp / "data"
        t0 = time.perf_counter()
        fixture = prepare_farm(data_dir, WINDOWS)
        fixture.farm.db.close()  # the server's workers open their own connections
        print(f"  prepared {WINDOWS} windows in {time.perf_counter() - t0:.1f}s")
        headers = fixture.headers
        bin_dir = Path(sys.executable).parent
        ours_port, bare_port = free_port(), free_port()
        servers = []
        try:
            # As a user starts it: the CLI's `serve` (migrations, then gunicorn).
            ours_log = tmp / "ours.log"
            ours = start_process([str(bin_dir / "browserfarm"), "--data-dir", str(data_dir),
                                  "serve", "--host", "127.0.0.1", "--port", str(ours_port),
                                  "--workers", str(WORKERS)], ours_log)
            servers.append(ours)
            answer = wait_ready(ours, ours_log, ours_port, PATH, BODY, headers)
            page = json.loads(answer)["data"]
            if (len(page["list"]), page["totalNum"]) != (20, WINDOWS):  # measure real work
                raise RuntimeError(f"unexpected page: {len(page['list'])} of {page['totalNum']}")
            envelope = tmp / "envelope.json"
            envelope.write_bytes(answer)
            bare_log = tmp / "bare.log"
            bare = start_process([sys.executable, "-m", "bench._bare_server", str(bare_port),
                                  str(WORKERS), str(envelope)], bare_log)
            servers.append(bare)
            bare_answer = wait_ready(bare, bare_log, bare_port, PATH, BODY, headers)
            print(f"  answer size: ours {len(answer)} B, bare {len(bare_answer)} B")

            stream = itertools.count()  # one cold stream across threads and rounds
            loads = {"ours": (ours_port, lambda n: BODY), "bare": (bare_port, lambda n: BODY),
                     "cold": (ours_port, lambda n: distinct_body(next(stream)))}
            for port, _ in loads.values():
                load(port, headers, WARMUP_S)
            totals = {name: [0, 0, 0.0] for name in loads}
            for _ in range(ROUNDS):
                for name, (port, body) in loads.items():
                    done, failed, elapsed = load(port, headers, ROUND_S, body)
                    print(f"  round {name}: {done / elapsed:7.1f} req/s"
                          + (f", {failed} failed" if failed else ""))
                    for k, v in enumerate((done, failed, elapsed)):
                        totals[name][k] += v
        finally:
            for proc in servers:
                stop_process(proc)

    rate = {name: done / elapsed for name, (done, _, elapsed) in totals.items()}
    results = []
    for name, title in (("ours", "list_throughput /browser/list pageSize 20"),
                        ("cold", "list_throughput, no repeated query")):
        failed = totals[name][1] + totals["bare"][1]
        ratio = rate[name] / rate["bare"]
        results.append(Result(
            title, ratio, f"ours {rate[name]:.1f} req/s, bare {rate['bare']:.1f} req/s"
            + (f", {failed} failed requests" if failed else ""),
            f">= {TARGET:.2f}", ratio >= TARGET and not failed))
    return results
