"""The scale curve (issue 10): latest rows (materialization's read) and the point-in-time join
at 1M, 10M (and 30M, latest rows only) feature rows, on DuckDB and on Spark local[N], each
call in a fresh process, with wall time, CPU seconds, peak RSS and the load average beside
each figure, and both engines' rows compared.

  nice -n 10 .venv/bin/python bench/scaling.py [--sizes 1M,10M,30M] [--engines duckdb,spark]
                                               [--master local[2]] [--entities table|file]
                                               [--out bench/results/scaling.json]

Data: ../shared/bench/gen_data.py through bench/harness.py (cached in bench/data/): N feature
rows over N/10 entities, 10 features, a created timestamp; the point-in-time join takes N/10
entity rows. Each (size, engine, task) runs in a child process that opens the store, times
the first call (a fresh process's: Spark's code generation, DuckDB's file open) and a
repeat, and reports its CPU seconds and peak RSS (the Python process and, for Spark, its
JVM, each at its peak, added). The first call streams the result into a Parquet file; the
parent then checks that both engines wrote the same rows.

Materialization's write into the online store is left out on purpose: both engines hand the
same Arrow batches to the same writer, so it costs the same for both (docs/benchmarks.md
measures it: ~110,000 entities/s into SQLite).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from harness import FEATURES, ensure_data, load_meta, window  # noqa: E402

SIZES = {"1M": (1_000_000, 100_000, 100_000), "10M": (10_000_000, 1_000_000, 1_000_000),
         "30M": (30_000_000, 3_000_000, 100_000)}
PIT_SIZES = ("1M", "10M")  # 30M: the cheap path (latest rows) only
# featurectl's own settings, as a user gets them (a local master's heap: a quarter of the
# machine's memory, docs/spark.md); until 2026-12-03 the benchmark set 3g itself.
SPARK_CONF: dict[str, str] = {}


# --- the child: one engine, one task, one data set ----------------------------------------

def _request(data: Path):
    from featurectl.core.model import Entity, Feature, FeatureView, FileSource
    from featurectl.offline.base import ViewRequest

    dtypes = ["float64"] * 6 + ["int64"] * 3 + ["string"]
    source = FileSource(name="driver_source", path=str((data / "features.parquet").resolve()),
                        timestamp_field="event_timestamp", created_timestamp_field="created")
    view = FeatureView(name="driver_stats", version="1.0.0", entities=["driver"], source="driver_source",
                       owner="bench@example.com", features=[Feature(name=f, dtype=t) for f, t in zip(FEATURES, dtypes)],
                       ttl="0")
    return ViewRequest(view, source, (Entity(name="driver", join_key="driver_id"),), tuple(FEATURES))


def _jvm_pids() -> list[int]:
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def _proc_cpu_and_peak(pid: int) -> tuple[float, float]:
    """(user + system CPU seconds, peak RSS in MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")) / 1024
    return cpu, peak


def child(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from featurectl.offline import create_offline_store
    from featurectl.offline.config import DuckdbOfflineConfig, SparkOfflineConfig

    if args.results:
        import featurectl.offline.spark as spark_module
        spark_module.RESULTS = args.results
    data = Path(args.data)
    meta = load_meta(data)
    request = _request(data)
    t0 = time.perf_counter()
    if args.engine == "duckdb":
        store = create_offline_store(DuckdbOfflineConfig(threads=args.threads), data)
        session_s = 0.0
    else:
        store = create_offline_store(SparkOfflineConfig(master=args.master, conf=SPARK_CONF), data)
        _ = store.spark  # type: ignore[attr-defined]  # the session starts here, timed on its own
        session_s = time.perf_counter() - t0
    start, end = window(meta)
    if args.task == "pit":
        if args.entities == "file":  # the engine reads the file itself (Spark: the driver never holds it)
            from featurectl.offline.entity_rows import entity_files
            entity_rows = entity_files(data / "entity_df.parquet")
        else:
            entity_rows = pq.read_table(data / "entity_df.parquet")

        def call():
            return store.get_historical_features(entity_rows, [request])
    else:
        def call():
            return store.latest_rows(request, start, end)

    def first() -> int:
        reader = call()
        n = 0
        with pq.ParquetWriter(args.output, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)
                n += batch.num_rows
        return n

    def repeat() -> int:
        return sum(batch.num_rows for batch in call())

    t = time.perf_counter()
    rows = first()
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    repeat()
    repeat_s = time.perf_counter() - t
    own = _proc_cpu_and_peak(os.getpid())
    jvm = [_proc_cpu_and_peak(p) for p in _jvm_pids()]
    print(json.dumps({
        "engine": args.engine, "task": args.task, "rows": rows, "feature_rows": meta["feature_rows"],
        "entity_rows": meta["entity_df_rows"], "session_start_s": round(session_s, 2),
        "first_s": round(first_s, 2), "repeat_s": round(repeat_s, 2),
        "cpu_s": round(own[0] + sum(c for c, _ in jvm), 1),
        "peak_rss_mb": round(own[1] + sum(p for _, p in jvm)),
        "python_peak_rss_mb": round(own[1]), "jvm_peak_rss_mb": round(sum(p for _, p in jvm))}), flush=True)
    os._exit(0)  # skip Spark's shutdown hooks: not part of any figure


# --- the parent -----------------------------------------------------------------------------

def run_one(size: str, engine: str, task: str, data: Path, outdir: Path, args: argparse.Namespace) -> dict:
    output = outdir / f"{size}-{engine}-{task}.parquet"
    argv = [sys.executable, __file__, "child", "--engine", engine, "--task", task, "--data", str(data),
            "--output", str(output), "--master", args.master, "--threads", str(args.threads)]
    if args.results:
        argv += ["--results", args.results]
    if args.entities:
        argv += ["--entities", args.entities]
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"size": size, "engine": engine, "task": task, "error": proc.stderr[-2000:]}
    return {"size": size, **json.loads(lines[-1]), "process_wall_s": round(wall, 1),
            "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1), "output": str(output)}


def same_rows(a: Path, b: Path, task: str) -> bool:
    import pyarrow.parquet as pq

    left, right = pq.read_table(a), pq.read_table(b)
    if task == "latest":  # one row per entity, in no order
        left, right = left.sort_by("driver_id"), right.sort_by("driver_id")
    return left.equals(right)


def table(results: list[dict]) -> str:
    lines = ["| feature rows | task | engine | first call s | repeat s | CPU s | peak RSS MB | load | same rows |",
             "|---:|---|---|---:|---:|---:|---:|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['task']} | {r['engine']} | error | | | | | |")
            continue
        lines.append(f"| {r['size']} | {r['task']} | {r['engine']} | {r['first_s']} | {r['repeat_s']} | {r['cpu_s']} | "
                     f"{r['peak_rss_mb']:,} | {r['load_before']}–{r['load_after']} | {r.get('same_rows', '')} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        ap = argparse.ArgumentParser()
        ap.add_argument("child")
        for flag in ("--engine", "--task", "--data", "--output", "--master", "--results", "--entities"):
            ap.add_argument(flag)
        ap.add_argument("--threads", type=int, default=2)
        child(ap.parse_args())
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1M,10M,30M")
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--tasks", default="latest,pit")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (the same 2 cores as local[2])")
    ap.add_argument("--results", choices=["spill", "collect"], help="Spark results: spill (default) or collect")
    ap.add_argument("--entities", choices=["table", "file"],
                    help="PIT entity rows: an Arrow table read first (default), or the file for the engine to read")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "scaling.json")
    args = ap.parse_args()
    outdir = BENCH / "data" / "_scaling"
    outdir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        data = ensure_data(*SIZES[size], python=sys.executable)
        for task in args.tasks.split(","):
            if task == "pit" and size not in PIT_SIZES:
                continue
            done = [run_one(size, engine, task, data, outdir, args) for engine in args.engines.split(",")]
            ok = [r for r in done if "error" not in r]
            if len(ok) > 1:
                same = all(same_rows(Path(ok[0]["output"]), Path(r["output"]), task) for r in ok[1:])
                for r in ok:
                    r["same_rows"] = same
            for r in done:
                print(json.dumps(r), flush=True)
            results += done
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
