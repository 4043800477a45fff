"""Whole-process start-up of the read commands on the bench data: `featurectl get-online`
(SQLite, and Redis on a private redis-server), `materialize-incremental` with nothing new, and
`get-historical` of the 100k entity rows × 10 features into a Parquet file beside its floor.

    .venv/bin/python bench/cli_start.py [--runs 15] [--nice 10]

Builds the bench repositories (bench/featurectl_peer.py's, 1M rows / 100k entities) under
bench/data/_work/cli-start, materializes them once, byte-compiles the featurectl package the
children import (as bench/run.py does), then runs each command `--runs` times as a fresh
`python -m featurectl` process from the repository, interleaved, and prints CPU seconds (user
+ sys of the child, the steadier figure on a shared machine) and wall seconds, min and median,
with the load average. Targets (issue 12): get-online ≤ 0.3 s, materialize-incremental with
nothing new ≤ 0.4 s, get-historical ≤ 1.5× the floor plus writing: the floor is floor-pit's
DuckDB query (bench/floors.py, repeat calls, median) and writing is the ParquetWriter of its
result, both measured in a child process before and after the runs; the ratio printed is
get-historical's median wall / (1.5 × floor + writing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from featurectl_peer import open_store, write_repo  # noqa: E402
from harness import BENCH_DIR, FEATURES, VIEW, ensure_data, load_meta, redis_server, window  # noqa: E402
from run import SIZES, compile_featurectl  # noqa: E402


HISTORICAL = "get-historical (100k entity rows)"


def commands(meta: dict, data: Path, work: Path) -> dict[str, list[str]]:
    some_id = str(meta.get("first_id", 1_000_000))
    end = window(meta)[1].isoformat()
    return {"get-online": ["get-online", "--features", "driver_stats:f0", "-e", f"driver_id={some_id}"],
            "materialize-incremental (nothing new)": ["materialize-incremental", end],
            HISTORICAL: ["get-historical", "--entities", str(data / "entity_df.parquet"), "--features",
                         ",".join(f"{VIEW}:{f}" for f in FEATURES), "--output", str(work / "training.parquet")]}


def pit_floor(data: Path, work: Path, nice: int) -> dict:
    """floor-pit's query and the write of its result, in a fresh child (bench/floors.py)."""
    done = subprocess.run(["nice", "-n", str(nice), sys.executable, str(BENCH_DIR / "floors.py"), "--pit-write",
                           str(data), str(work / "floor-training.parquet")], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the PIT floor failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def timed_run(argv: list[str], cwd: Path, nice: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(["nice", "-n", str(nice), sys.executable, "-m", "featurectl", *argv], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"featurectl {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--nice", type=int, default=10)
    args = ap.parse_args()
    data = ensure_data(*SIZES["default"], python=sys.executable)
    meta = load_meta(data)
    work = BENCH_DIR / "data" / "_work" / "cli-start"
    print(compile_featurectl(), file=sys.stderr)
    with ExitStack() as stack:
        url = stack.enter_context(redis_server())
        repos = {}
        for store in ("sqlite", "redis"):
            repo = write_repo(work, data, store, url, 0)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{repo}/.featurectl/online.db{suffix}").unlink(missing_ok=True)
            (repo / ".featurectl" / "registry.db").unlink(missing_ok=True)
            with open_store(repo, meta) as fs:
                fs.materialize(*window(meta))
            repos[store] = repo
        import pyarrow.parquet as pq

        meta["first_id"] = pq.read_table(data / "features.parquet", columns=["driver_id"]).column(0)[0].as_py()
        cases = [(name, store, argv) for name, argv in commands(meta, data, work).items()
                 for store in ("sqlite", "redis") if store == "sqlite" or name == "get-online"]
        figures: dict[tuple[str, str], tuple[list[float], list[float]]] = {(n, s): ([], []) for n, s, _ in cases}
        load_before = os.getloadavg()[0]
        floors = [pit_floor(data, work, args.nice)]
        for i in range(args.runs):
            for name, store, argv in (cases if i % 2 == 0 else cases[::-1]):
                cpu, wall = timed_run(argv, repos[store], args.nice)
                figures[(name, store)][0].append(cpu)
                figures[(name, store)][1].append(wall)
        floors.append(pit_floor(data, work, args.nice))
        load_after = os.getloadavg()[0]
    print(f"{args.runs} runs each, interleaved, nice {args.nice}; load average {load_before:.1f} before, "
          f"{load_after:.1f} after\n")
    print("| command | store | CPU s min | CPU s median | wall s min | wall s median |")
    print("|---|---|---:|---:|---:|---:|")
    for (name, store), (cpu, wall) in figures.items():
        print(f"| {name} | {store} | {min(cpu):.3f} | {statistics.median(cpu):.3f} | {min(wall):.3f} | "
              f"{statistics.median(wall):.3f} |")
    pit = statistics.median(f["pit_seconds"] for f in floors)
    write = statistics.median(f["write_seconds"] for f in floors)
    historical = statistics.median(figures[(HISTORICAL, "sqlite")][1])
    print(f"\nfloor-pit {pit:.3f} s + writing {write:.3f} s (child process, medians of "
          f"{[f['pit_seconds'] for f in floors]} / {[f['write_seconds'] for f in floors]}); "
          f"get-historical whole process {historical:.3f} s = {historical / (1.5 * pit + write):.2f} of "
          f"1.5 × floor + writing (target ≤ 1), {historical / (pit + write):.2f}× floor + writing")


if __name__ == "__main__":
    main()
