"""CPU of one push in process: the handler's JSON parse plus `app.push.push` (validation,
latest rows, online write), without HTTP, on the benchmark's SQLite repository.

  .venv/bin/python bench/push_micro.py [--pushes 200] [--rounds 5] [--profile] [--fresh]

Bodies are the ones `serve_bench.py --part push` posts (1,000 rows x 10 features, random
drivers of the 100,000, event times after the materialized window). Prints the CPU ms per
push (user+sys of the whole process, DuckDB's threads included) of each round and their
median, and the CPU of the first push (what a worker pays before it is warm). Run it with
PYTHONPATH pointing at each tree to compare two versions.

Without `--fresh` the 20 bodies are pushed again and again: after the first 20 pushes every row
rewrites the same bytes, which SQLite compares and leaves unwritten (no page dirtied, no WAL
frame), so the figure is the push without most of its store writes. `--fresh` pushes a body of
its own each time (new event times and values), on a copy of the repository, so each push
writes all its rows, as a stream does.
"""
from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import FEATURES, ID_BASE, VIEW, ensure_data, load_meta, window  # noqa: E402

ROWS = 1_000


def bodies(meta: dict, entities: int, count: int, seed: int = 11) -> list[bytes]:
    """Push bodies as serve_bench's Lua writes them: 6 float, 3 int and 1 string feature."""
    rng = random.Random(seed)
    start = window(meta)[1]
    out = []
    for b in range(count):
        df: dict[str, list] = {
            "driver_id": [ID_BASE + rng.randrange(entities) for _ in range(ROWS)],
            "event_timestamp": [(start + timedelta(seconds=b * ROWS + i)).strftime("%Y-%m-%dT%H:%M:%S")
                                for i in range(ROWS)]}
        for f in FEATURES[:6]:
            df[f] = [round(rng.random(), 4) for _ in range(ROWS)]
        for f in FEATURES[6:9]:
            df[f] = [rng.randrange(501) for _ in range(ROWS)]
        df[FEATURES[9]] = [f"v{rng.randrange(10)}" for _ in range(ROWS)]
        out.append(json.dumps({"feature_view": VIEW, "to": "online", "df": df}).encode())
    return out


def repository(work: Path, data: Path, meta: dict) -> Path:
    from featurectl import FeatureStore
    from featurectl_peer import write_repo

    repo = write_repo(work, data, "sqlite", None, 0)
    if not (repo / ".featurectl" / "online.db").exists():
        with FeatureStore(repo) as store:
            store.apply()
            store.materialize(*window(meta))
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=200, help="pushes per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one round instead, top 30 by cumulative")
    parser.add_argument("--fresh", action="store_true",
                        help="a new body (times and values) for every push, on a copy of the repository")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "featurectl-push-micro")
    args = parser.parse_args()
    import orjson

    data = ensure_data(1_000_000, 100_000, 100_000, sys.executable)
    meta = load_meta(data)
    repo = repository(args.work, data, meta)
    count = 1 + args.pushes * (1 if args.profile else args.rounds) if args.fresh else 20
    payloads = bodies(meta, meta["distinct_feature_ids"], count)
    if args.fresh:  # the pushes move the store on: each run starts from the materialized one
        copy = args.work / "fresh"
        shutil.rmtree(copy, ignore_errors=True)
        repo = Path(shutil.copytree(repo, copy))

    began_cpu = time.process_time()
    from featurectl.app.push import push
    from featurectl.sdk import FeatureStore

    store = FeatureStore(repo)
    defs = store.applied()
    offline, online = store.offline, store.online
    setup_cpu = time.process_time() - began_cpu

    pushed = itertools.count()

    def one(i: int) -> None:
        if args.fresh:
            i = next(pushed)
        run = push(store.project, defs, offline, online, VIEW, orjson.loads(payloads[i % len(payloads)])["df"])
        if run.status != "ok" or run.rows_read != ROWS:
            raise SystemExit(f"push failed: {run}")

    t0 = time.process_time()
    one(0)
    first = time.process_time() - t0
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.pushes):
            one(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    per_push, wall = [], []
    for _ in range(args.rounds):
        t0, w0 = time.process_time(), time.perf_counter()
        for i in range(args.pushes):
            one(i)
        per_push.append((time.process_time() - t0) / args.pushes * 1000)
        wall.append((time.perf_counter() - w0) / args.pushes * 1000)
    store.close()
    print(json.dumps({"setup_cpu_ms": round(setup_cpu * 1000, 1), "first_push_cpu_ms": round(first * 1000, 1),
                      "cpu_ms_per_push": [round(x, 2) for x in per_push],
                      "median_cpu_ms_per_push": round(statistics.median(per_push), 2),
                      "rows_per_cpu_s": round(ROWS / statistics.median(per_push) * 1000),
                      "median_wall_ms_per_push": round(statistics.median(wall), 2), "fresh": args.fresh}))


if __name__ == "__main__":
    main()
