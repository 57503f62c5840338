"""Batch endpoints over 1,000 ids, in-process (Flask test client), SQLite.

Per endpoint: SQL statements for 1,000 ids against the same endpoint with 10 ids
(peewee logs each statement at DEBUG on logger "peewee"; target ratio 1.0, i.e. a fixed
number of statements), and the median time of a 1,000-id call (target <= 50 ms), with
its ratio to the 10-id call for scale.
"""
from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench import Result, prepare_farm

WINDOWS = 1000
RUNS = 9
TARGET_MS = 50.0


class _Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        self.count += 1


def run() -> list[Result]:
    from browserfarm.app import create_app

    with tempfile.TemporaryDirectory(prefix="browserfarm-bench-") as tmp:
        fixture = prepare_farm(Path(tmp) / "data", WINDOWS)
        try:
            return _measure(fixture, create_app(farm=fixture.farm).test_client())
        finally:
            fixture.farm.db.close()


def _measure(fixture, client) -> list[Result]:
    ids = fixture.ids

    def call(path, body):
        started = time.perf_counter()
        response = client.post(path, json=body, headers=fixture.headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or response.get_json()["code"] != 0:
            raise RuntimeError(f"{path} with {len(body['ids'])} ids answered "
                               f"{response.status_code}: {response.get_data(as_text=True)[:300]}")
        if path == "/browser/delete/ids":  # put them back for the next run (not timed)
            client.post("/browser/recycle/restore", json={"ids": body["ids"]},
                        headers=fixture.headers)
        return elapsed

    def statements(path, body):
        call(path, body)  # warm: the token's last_used_at write happens here, not below
        logger, counter = logging.getLogger("peewee"), _Counter()
        level, propagate = logger.level, logger.propagate
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(counter)
        try:
            client.post(path, json=body, headers=fixture.headers)
        finally:
            logger.removeHandler(counter)
            logger.setLevel(level)
            logger.propagate = propagate
        if path == "/browser/delete/ids":
            client.post("/browser/recycle/restore", json={"ids": body["ids"]},
                        headers=fixture.headers)
        return counter.count

    def median_ms(path, body):
        return statistics.median(call(path, body) for _ in range(RUNS)) * 1000

    endpoints = [
        ("/browser/update/partial", {"remark": "x", "tagIds": fixture.tag_ids[:2],
                                     "browserFingerPrint": {"canvas": "1"}}),
        ("/browser/group/update", {"groupId": fixture.group_ids[0]}),
        ("/browser/remark/update", {"remark": "checked"}),
        ("/browser/proxy/update", {"proxyMethod": 2, "proxyType": "http", "host": "10.0.0.1",
                                   "port": 3128, "proxyUserName": "u", "proxyPassword": "p"}),
        ("/browser/delete/ids", {}),
    ]
    results = []
    for path, extra in endpoints:
        small, large = {"ids": ids[:10], **extra}, {"ids": ids[:1000], **extra}
        try:
            n_small, n_large = statements(path, small), statements(path, large)
            ms_small, ms_large = median_ms(path, small), median_ms(path, large)
        except RuntimeError as exc:  # one broken endpoint should not hide the others
            print(f"  {path}: {exc}")
            results.append(Result(f"{path} (error)", float("nan"), str(exc)[:120], "-", False))
            continue
        print(f"  {path}: {n_small} / {n_large} statements, "
              f"{ms_small:.1f} / {ms_large:.1f} ms (10 / 1,000 ids)")
        results.append(Result(f"{path} statements 1000/10", n_large / n_small,
                              f"{n_large} vs {n_small} statements", "== 1.0",
                              n_large == n_small))
        results.append(Result(f"{path} time 1000/10", ms_large / ms_small,
                              f"{ms_large:.1f} ms vs {ms_small:.1f} ms (median of {RUNS})",
                              f"1000 ids <= {TARGET_MS:.0f} ms", ms_large <= TARGET_MS))
    return results
