#!/usr/bin/env python3
"""Paired A/B of the drift engine's reference profiling, in one process: another checkout's
featurectl/stats/engine.py ("old") and this tree's ("new") profile the same reference file
alternately, and each call's CPU seconds are printed (medians at the end). Both must give the
same deciles, grid and counts.

    PYTHONPATH=. .venv/bin/python bench/drift_profile_ab.py --old ../main --rows 1000000 --rounds 5

Paired calls share the machine's load, which separate whole processes do not: on a loaded
machine this resolves a 0.2 s change that `/usr/bin/time` runs cannot. Data: bench/drift.py's
files (bench/data/drift-r<rows>/reference.parquet, written by `bench/drift.py --rows N`).
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_engine(checkout: Path):
    spec = importlib.util.spec_from_file_location("old_engine", checkout / "featurectl" / "stats" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_engine"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def profile(engine, path: Path) -> tuple[float, list]:
    from featurectl.stats.datasets import connect, open_path

    conn = connect()
    try:
        data = open_path(conn, str(path), "reference")
        columns = [(engine.Wanted(view, name, "numeric"), data.locate(view, name)) for view, name in data.candidates()
                   if data.locate(view, name).sql_type != "VARCHAR"]
        began = cpu_seconds()
        profiles = engine.profile_reference(conn, columns)
        return cpu_seconds() - began, [(p.deciles, p.grid, p.side.counts) for p in profiles]
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="the other checkout (its featurectl/stats/engine.py)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from featurectl.stats import engine as new

    old = load_engine(args.old.resolve())
    path = BENCH / "data" / f"drift-r{args.rows}" / "reference.parquet"
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        (old_s, old_out), (new_s, new_out) = profile(old, path), profile(new, path)
        if old_out != new_out:
            raise SystemExit("old and new profiles differ")
        seconds["old"].append(round(old_s, 2))
        seconds["new"].append(round(new_s, 2))
        print(f"old {old_s:.2f} s CPU   new {new_s:.2f} s CPU", flush=True)
    print({k: statistics.median(v) for k, v in seconds.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
