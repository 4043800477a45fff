#!/usr/bin/env python3
"""Drift benchmark: `featurectl drift` vs Evidently 0.7.23 on the same files, in the same run.

    .venv/bin/python bench/drift.py [--rows 1000000] [--rounds 3] [--no-evidently]

Data (written once under bench/data/drift-r<rows>/): reference and current Parquet files of
--rows rows × 10 features shaped like ../shared/bench/gen_data.py's (f0–f5 float64 normal with
growing scale, f6–f8 int64 uniform, f9 a string) — except f9 holds 50 categories instead of
random 8-character ids, so that it is a categorical feature for both tools. The current file
shifts f0–f2 slightly and f3 strongly. Each task runs in a fresh child process (wall time and
that child's peak RSS, bench/harness.py); Evidently runs in bench/.venv-evidently
(bench/setup_evidently.sh). Results go to bench/results/drift.json.

Standard library only at import time: the Evidently child runs this file in its own venv.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FEATURES = [f"f{i}" for i in range(10)]
EVIDENTLY_PY = BENCH / ".venv-evidently" / "bin" / "python"


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    ref, cur = folder / "reference.parquet", folder / "current.parquet"
    if ref.exists() and cur.exists():
        return ref, cur
    shifts = {0: 0.02, 1: 0.05, 2: 0.1, 3: 1.0}
    for path, seed, moved in ((ref, 0, False), (cur, 1, True)):
        rng = np.random.default_rng(seed)
        cols = {}
        for i in range(6):
            cols[f"f{i}"] = rng.standard_normal(rows) * (i + 1) + i + (shifts.get(i, 0) * (i + 1) if moved else 0)
        for i in range(6, 9):
            cols[f"f{i}"] = rng.integers(0, 1000 * (i - 5), size=rows, dtype=np.int64)
        categories = np.array([f"c{k:02d}" for k in range(50)])
        weights = np.linspace(2, 1, 50) if not moved else np.linspace(1.8, 1.2, 50)
        cols["f9"] = pa.array(categories[rng.choice(50, rows, p=weights / weights.sum())])
        pq.write_table(pa.table(cols), path)
    return ref, cur


# --- children -----------------------------------------------------------------------------

def child_featurectl(ref: str, cur: str) -> dict:
    """The whole `featurectl drift` command in this process (no repository: kinds from types)."""
    import contextlib
    import io

    from featurectl.cli.main import main

    began = time.perf_counter()
    sys.argv = ["featurectl", "drift", "--reference", ref, "--current", cur, "--format", "json"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            main()
        except SystemExit as exc:
            if exc.code not in (0, 1, None):
                raise
    rows = json.loads(buffer.getvalue())
    return {"seconds": round(time.perf_counter() - began, 3),
            "psi": {r["feature"]: round(r["psi"], 5) for r in rows},
            "ks": {r["feature"]: r["ks_statistic"] for r in rows}}


def child_evidently(ref: str, cur: str, mode: str) -> dict:
    import pandas as pd
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    loaded = time.perf_counter()
    reference, current = pd.read_parquet(ref), pd.read_parquet(cur)
    load_s = time.perf_counter() - loaded
    metrics = [DataDriftPreset()] if mode == "default" else [ValueDrift(column=c, method="psi") for c in FEATURES]
    began = time.perf_counter()
    snapshot = Report(metrics).run(current_data=current, reference_data=reference)
    seconds = time.perf_counter() - began
    result = {"seconds": round(seconds, 3), "load_seconds": round(load_s, 3)}
    if mode == "psi":
        values = {}
        for metric in snapshot.dict()["metrics"]:
            name = str(metric.get("metric_name", metric.get("metric_id", "")))
            feature = next((f for f in FEATURES if f"column={f}" in name or f"column='{f}'" in name), name)
            value = metric.get("value")
            values[feature] = round(float(value), 5) if isinstance(value, (int, float)) else value
        result["psi"] = values
    return result


# --- the run ------------------------------------------------------------------------------

def measure(argv: list[str], label: str) -> dict:
    sys.path.insert(0, str(BENCH))
    from harness import run_task

    return run_task(argv, BENCH / "results" / "logs" / f"drift-{label}.log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--child", choices=["featurectl", "evidently-default", "evidently-psi"])
    parser.add_argument("--ref")
    parser.add_argument("--cur")
    args = parser.parse_args()
    if args.child:
        result = (child_featurectl(args.ref, args.cur) if args.child == "featurectl"
                  else child_evidently(args.ref, args.cur, args.child.split("-")[1]))
        print(json.dumps(result))
        return 0

    ref, cur = generate(BENCH / "data" / f"drift-r{args.rows}", args.rows)
    tasks = {"featurectl": [str(ROOT / ".venv" / "bin" / "python"), __file__, "--child", "featurectl"]}
    if not args.no_evidently:
        subprocess.run(["bash", str(BENCH / "setup_evidently.sh")], check=True)
        tasks["evidently-default"] = [str(EVIDENTLY_PY), __file__, "--child", "evidently-default"]
        tasks["evidently-psi"] = [str(EVIDENTLY_PY), __file__, "--child", "evidently-psi"]
    runs: dict[str, list[dict]] = {name: [] for name in tasks}
    for _ in range(args.rounds):  # peers alternate task by task within a round
        for name, argv in tasks.items():
            runs[name].append(measure([*argv, "--ref", str(ref), "--cur", str(cur)], name))
    summary = {}
    for name, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            summary[name] = results[-1]
            continue
        summary[name] = {
            "rounds": len(good),
            "process_wall_s": statistics.median(r["process_wall_s"] for r in good),
            "seconds": statistics.median(r["seconds"] for r in good),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in good),
            "last": good[-1],
        }
    out = {"rows_per_side": args.rows, "features": len(FEATURES),
           "command": f".venv/bin/python bench/drift.py --rows {args.rows} --rounds {args.rounds}"
                      + (" --no-evidently" if args.no_evidently else ""),
           "load_average": open("/proc/loadavg").read().split()[:3], "results": summary}
    target = BENCH / "results" / "drift.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: {m: v.get(m) for m in ("process_wall_s", "seconds", "peak_rss_mb", "error")}
                      for k, v in summary.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
