"""Run every benchmark module in bench/ (or those named on the command line), print
each result and a summary; exit status 1 if any missed its target."""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import bench
from bench import Result


def main(names: list[str]) -> int:
    modules = names or sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                              if not m.name.startswith("_"))
    results: list[Result] = []
    for name in modules:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            found = importlib.import_module(f"bench.{name}").run()
        except Exception:  # a crashed benchmark is a failed one; run the others
            traceback.print_exc()
            found = [Result(name, float("nan"), "crashed (see traceback)", "-", False)]
        for result in found:
            print(result.line(), flush=True)
        print(f"   ({time.perf_counter() - started:.1f}s)\n", flush=True)
        results.extend(found)
    print("== summary")
    for result in results:
        print(result.line())
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
