"""Whole-process `featurectl freshness` over a generated repository of 1,000 feature views,
each with a freshness_sla, materialized through the real stores (SQLite, and a private
redis-server when `redis-server` is on the PATH).

    nice .venv/bin/python bench/freshness_speed.py [--views 1000] [--features 20] [--runs 7]

The repository is plan_speed's generator (1,000 views x 20 features, 100 entities) with a
freshness_sla on every view and a small Parquet source per view whose newest event is between
minutes and days old, so every severity occurs. Every view is materialized once by a real
`featurectl materialize` (which writes the newest-event and watermark bookkeeping the check
reads). Then each figure is the median wall time of a fresh `featurectl freshness --format
json` process: Python start-up, imports, the registry read and the online store's
bookkeeping for 1,000 views. Target (issue 13): <= 1 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import redis_server  # noqa: E402
from bench.plan_speed import FEATURECTL, children_cpu, generate_repo  # noqa: E402
from featurectl.server.feature_log import arrow_type  # noqa: E402

TARGET_S = 1.0
ROWS_PER_VIEW = 5
SLA_HOURS = (1, 2, 6, 24)


def add_slas_and_data(root: Path, now: datetime) -> None:
    """A freshness_sla on every view and a Parquet source for it: ROWS_PER_VIEW entities whose
    newest event is `age` old, `age` spread over 0.5x to 3x the SLA (ok .. critical)."""
    (root / "data").mkdir(exist_ok=True)
    entities = {e["name"]: e for e in yaml.safe_load((root / "features" / "entities.yaml").read_text())["entities"]}
    for path in sorted((root / "features").glob("views_*.yaml")):
        data = yaml.safe_load(path.read_text())
        for view in data["feature_views"]:
            index = int(view["name"].split("_")[1])
            sla_hours = SLA_HOURS[index % len(SLA_HOURS)]
            view["freshness_sla"] = f"{sla_hours}h"
            age = timedelta(hours=sla_hours) * (0.5 + 2.5 * (index % 11) / 10)
            join_key = entities[view["entities"][0]]["join_key"]
            columns = {join_key: pa.array(range(ROWS_PER_VIEW), pa.int64()),
                       "event_timestamp": pa.array([now - age - timedelta(minutes=i) for i in range(ROWS_PER_VIEW)],
                                                   pa.timestamp("us", tz="UTC"))}
            for feature in view["features"]:  # nullable features: typed nulls are valid rows
                columns[feature["name"]] = pa.nulls(ROWS_PER_VIEW, arrow_type(feature["dtype"]))
            pq.write_table(pa.table(columns), root / "data" / f"source_{index}.parquet")
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def featurectl(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*FEATURECTL, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode not in (0, 1):
        raise SystemExit(f"featurectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def time_freshness(cwd: Path, runs: int) -> tuple[list[float], list[float], Counter]:
    warm = featurectl(["freshness", "--format", "json"], cwd)  # exit 1: some views are stale, on purpose
    statuses = Counter(row["status"] for row in json.loads(warm.stdout))
    walls, cpus = [], []
    for _ in range(runs):
        cpu, began = children_cpu(), time.perf_counter()
        featurectl(["freshness", "--format", "json"], cwd)
        walls.append(time.perf_counter() - began)
        cpus.append(children_cpu() - cpu)
    return walls, cpus, statuses


def prepare(root: Path, views: int, features: int, online_store: str | None, now: datetime) -> Path:
    generate_repo(root, views, features)
    if online_store:
        config = root / "featurectl.yaml"
        config.write_text(config.read_text() + f"online_store: {online_store}\n")
    add_slas_and_data(root, now)
    featurectl(["apply"], root)
    began = time.perf_counter()
    featurectl(["materialize", "2000-01-01", (now + timedelta(minutes=1)).isoformat()], root)
    print(f"  materialized {views:,} views in {time.perf_counter() - began:.1f} s", flush=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-redis", action="store_true", help="SQLite only")
    args = parser.parse_args()

    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="freshness_bench_") as tmp:
        print(f"SQLite: generating {args.views:,} views x {args.features} features", flush=True)
        repo = prepare(Path(tmp) / "sqlite", args.views, args.features, None, now)
        rows.append(("SQLite", *time_freshness(repo, args.runs)))
        if not args.no_redis:
            with redis_server() as url:
                print(f"Redis ({url}): generating {args.views:,} views x {args.features} features", flush=True)
                repo = prepare(Path(tmp) / "redis", args.views, args.features, f"{{type: redis, url: '{url}'}}", now)
                rows.append(("Redis", *time_freshness(repo, args.runs)))

    print(f"\nfeaturectl freshness --format json, whole process, {args.views:,} views, {args.runs} runs each "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print("| online store | views | median s | min s | cpu s | statuses | target s | met |")
    print("|---|---:|---:|---:|---:|---|---:|---|")
    for store, walls, cpus, statuses in rows:
        median = statistics.median(walls)
        mix = ", ".join(f"{statuses[s]} {s}" for s in ("ok", "minor", "major", "critical"))
        print(f"| {store} | {sum(statuses.values()):,} | {median:.3f} | {min(walls):.3f} | "
              f"{statistics.median(cpus):.3f} | {mix} | {TARGET_S:.1f} | {'yes' if median <= TARGET_S else 'NO'} |")


if __name__ == "__main__":
    main()
