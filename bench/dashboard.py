"""The dashboard's windows page (``GET /windows``, 50 a page) with 10,000 windows, in
process (Flask's test client: server time, no network), SQLite.

Baseline: ``POST /browser/list`` asked for the same page (same size, sort and filters)
in the same run, on an answer cache of its own, alternated request by request, so a
noisy moment hits both alike. Each
request asks another page, sort or filter (search, group, tag, open status), so every
answer is computed, not served from the answer cache. Targets: the page's p95 ≤ 200 ms
(the issue's figure) and ≤ 5x the API's p50: the page adds the HTML of 50 rows by Jinja
(~5 ms; the API's JSON is orjson's) and the group and tag filters' options.
"""
from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import Result, prepare_farm

WINDOWS = 10_000
SIZE = 50
REQUESTS = 150
TARGET_MS = 200.0
TARGET_RATIO = 5.0
SORTS = ["seq", "name", "remark", "createdTime", "updatedTime"]


def queries(fixture) -> list[tuple[dict, dict]]:
    """(dashboard query string, the same as /browser/list's body), none repeated."""
    found = []
    for n in range(REQUESTS):
        args = {"page": n * 7 % (WINDOWS // SIZE) + 1, "size": SIZE,
                "sort": SORTS[n % len(SORTS)], "dir": "asc" if n % 2 else "desc"}
        body = {"page": args["page"] - 1, "pageSize": SIZE, "sortProperties": args["sort"],
                "sortDirection": args["dir"]}
        kind = n % 4
        if kind == 1:  # a search: few pages of matches
            args["q"] = body["keyword"] = f"shop-0{n % 90 + 10:02d}"
            args["page"], body["page"] = 1, 0
        elif kind == 2:
            args["group"] = body["groupId"] = fixture.group_ids[n % 5]
            args["page"] = args["page"] % 40 + 1
            body["page"] = args["page"] - 1
        elif kind == 3:
            args["tag"] = fixture.tag_ids[n % 5]
            body["tagIds"] = [args["tag"]]
            args["page"] = args["page"] % 40 + 1
            body["page"] = args["page"] - 1
        found.append((args, body))
    return found


def run() -> list[Result]:
    from browserfarm.app import create_app
    from browserfarm.services.revisions import AnswerCache

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        fixture = prepare_farm(Path(tmp), WINDOWS)
        try:
            client = create_app(farm=fixture.farm).test_client()
            # The API on an answer cache of its own: it computes what the page computes
            # (a shared cache would hand it the page's answers).
            api_client = create_app(farm=replace(fixture.farm, answers=AnswerCache())
                                    ).test_client()
            page = client.get("/signin").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            client.post("/signin", data={"csrf_token": csrf, "token": fixture.token})
            client.get("/windows")  # warm: templates compiled, statements prepared
            ours, api = [], []
            for args, body in queries(fixture):
                started = time.perf_counter()
                answer = client.get("/windows", query_string=args)
                ours.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.status_code
                started = time.perf_counter()
                answer = api_client.post("/browser/list", data=json.dumps(body),
                                     headers=fixture.headers)
                api.append(time.perf_counter() - started)
                assert answer.get_json()["code"] == 0, answer.get_json()
        finally:
            fixture.farm.close()
    p50, p95 = statistics.median(ours) * 1000, _p95(ours) * 1000
    api50 = statistics.median(api) * 1000
    ratio = p50 / api50
    return [Result("dashboard /windows p95 (10,000 windows)", p95 / TARGET_MS,
                   f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {REQUESTS} distinct pages",
                   f"<= 1 (p95 <= {TARGET_MS:.0f} ms)", p95 <= TARGET_MS),
            Result("dashboard /windows / /browser/list p50", ratio,
                   f"page {p50:.1f} ms vs API {api50:.1f} ms (same queries, alternated)",
                   f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO)]


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]
