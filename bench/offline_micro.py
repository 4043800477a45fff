"""Offline store micro-benchmark: point-in-time join and latest rows per entity on gen_data.py data.

Run: .venv/bin/python bench/offline_micro.py [--large] [--threads 2] [--memory-limit 1GB] [--repeat 3]
Default size: 100k entity rows x 1M feature rows; --large adds 1M x 10M. `cpu` is the
process CPU time of the best call (all DuckDB threads): on a shared machine wall time follows
the load, CPU time much less, and wall ~= cpu / threads when the cores are free. Each measurement runs
in its own child process, so the peak RSS printed is that task's alone (os.wait4). Data is
generated once by ../shared/bench/gen_data.py into bench/data/ and reused. Not a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # featurectl and bench, from anywhere

from bench.harness import BENCH_DIR, ensure_data, load_meta, run_task  # noqa: E402

SIZES = {"default": (1_000_000, 100_000, 100_000), "large": (10_000_000, 1_000_000, 1_000_000)}
TASKS = ("pit", "latest")


def request():
    """The bench view: driver_stats over features.parquet, f0..f9, created as tie-break."""
    from featurectl.core.model import Entity, Feature, FeatureView, FileSource
    from featurectl.offline.base import ViewRequest

    features = ([Feature(name=f"f{i}", dtype="float64") for i in range(6)]
                + [Feature(name=f"f{i}", dtype="int64") for i in range(6, 9)]
                + [Feature(name="f9", dtype="string")])
    driver = Entity(name="driver", join_key="driver_id")
    source = FileSource(name="driver_hourly", path="features.parquet",
                        timestamp_field="event_timestamp", created_timestamp_field="created")
    view = FeatureView(name="driver_stats", version="1.0.0", entities=["driver"], source=source.name,
                       owner="bench@example.com", features=features, ttl="30d")
    return ViewRequest(view, source, (driver,), tuple(f.name for f in features))


def child(args: argparse.Namespace) -> None:
    """One task in this process; prints one JSON line (run_task adds wall time and RSS)."""
    import pyarrow.parquet as pq

    from bench.harness import emit, window
    from featurectl.offline.config import DuckdbOfflineConfig
    from featurectl.offline import create_offline_store

    store = create_offline_store(DuckdbOfflineConfig(threads=args.threads, memory_limit=args.memory_limit),
                                 args.data)
    meta = load_meta(args.data)
    entity_rows = pq.read_table(args.data / "entity_df.parquet")
    start, end = window(meta)
    times, cpu, rows = [], [], 0
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        if args.task == "pit":
            reader = store.get_historical_features(entity_rows, [request()])
        else:
            reader = store.latest_rows(request(), start, end)
        rows = sum(batch.num_rows for batch in reader)  # consume the stream, hold nothing
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    expected = entity_rows.num_rows if args.task == "pit" else meta["distinct_feature_ids"]
    emit({"task": args.task, "seconds": [round(t, 3) for t in times], "best_s": round(min(times), 3),
          "cpu_s": round(min(cpu), 3),
          "rows": rows, "rows_ok": rows == expected, "feature_rows": meta["feature_rows"],
          "entity_rows": meta["entity_df_rows"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="also run 1M entity rows x 10M feature rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit (offline_store config)")
    ap.add_argument("--repeat", type=int, default=3, help="calls per task process (first one is cold)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of pit,latest")
    ap.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:
        return child(args)
    sizes = ["default", "large"] if args.large else ["default"]
    for size in sizes:
        rows, entities, entity_rows = SIZES[size]
        data = ensure_data(rows, entities, entity_rows, sys.executable)
        for task in args.tasks.split(","):
            argv = [sys.executable, __file__, "--task", task, "--data", str(data), "--threads",
                    str(args.threads), "--memory-limit", args.memory_limit, "--repeat", str(args.repeat)]
            result = run_task(argv, BENCH_DIR / "data" / "_work" / f"offline-{size}-{task}.log")
            print(f"{task:7s} {entity_rows:>9,} x {rows:>10,}  " + (
                f"best {result['best_s']:.3f} s  cpu {result['cpu_s']:.2f} s  runs {result['seconds']}  peak RSS "
                f"{result['peak_rss_mb']:.0f} MB  rows {result['rows']:,} ok={result['rows_ok']}"
                if "error" not in result else json.dumps(result)), flush=True)


if __name__ == "__main__":
    main()
