"""Whole-process `featurectl plan` time: on example_repo, and on a generated repository of
1,000 feature views x 20 features (YAML), against an empty registry and against a registry
that already holds those views.

    .venv/bin/python bench/plan_speed.py [--views 1000] [--features 20] [--runs 7]

Every figure is the median wall time of a fresh `featurectl plan` process (hyperfine when it
is on the PATH, else subprocess timing), so Python start-up and imports are included: that is
what a user and a CI job wait for. Targets: example_repo < 0.5 s, 1,000 x 20 < 2 s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FEATURECTL = [sys.executable, "-m", "featurectl"]
DTYPES = ["float32", "float64", "int32", "int64", "string", "bool", "list<float32>", "timestamp"]
VIEWS_PER_FILE = 50
ENTITIES = 100
TARGETS_S = {"example_repo": 0.5, "generated": 2.0}


def feature(index: int, dtype: str) -> dict:
    data = {"name": f"f{index}", "dtype": dtype}
    if index % 5 == 0 and dtype in ("float32", "float64", "int32", "int64"):
        data["constraints"] = {"min": 0}
    return data


def generate_repo(root: Path, views: int, features: int) -> Path:
    """A deterministic repository: ENTITIES entities, one source per view, VIEWS_PER_FILE views a file."""
    (root / "features").mkdir(parents=True)
    (root / "featurectl.yaml").write_text("project: plan_bench\n")
    entities = [{"name": f"entity_{e}", "join_key": f"entity_{e}_id", "dtype": "int64"} for e in range(ENTITIES)]
    (root / "features" / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}, sort_keys=False))
    for start in range(0, views, VIEWS_PER_FILE):
        sources, feature_views = [], []
        for v in range(start, min(start + VIEWS_PER_FILE, views)):
            sources.append({"name": f"source_{v}", "path": f"data/source_{v}.parquet",
                            "timestamp_field": "event_timestamp"})
            feature_views.append({
                "name": f"view_{v}", "version": "1.0.0", "entities": [f"entity_{v % ENTITIES}"],
                "source": f"source_{v}", "ttl": f"{1 + v % 30}d", "owner": "team@example.com",
                "description": f"Generated view {v}", "tags": {"team": f"t{v % 7}"},
                "features": [feature(f, DTYPES[(v + f) % len(DTYPES)]) for f in range(features)],
            })
        text = yaml.safe_dump({"sources": sources, "feature_views": feature_views}, sort_keys=False)
        (root / "features" / f"views_{start // VIEWS_PER_FILE:03d}.yaml").write_text(text)
    return root


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FEATURECTL, *args], cwd=cwd, capture_output=True, text=True, check=False)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_plan(cwd: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `featurectl plan` runs (after a warm-up run that fills OS caches).
    CPU time is reported too because wall time on a shared machine mostly measures the neighbours."""
    warm = run(["plan"], cwd)
    if warm.returncode != 0:
        raise SystemExit(f"featurectl plan failed in {cwd}:\n{warm.stderr}")
    if shutil.which("hyperfine"):
        export = cwd / ".hyperfine.json"
        command = " ".join([*map(str, FEATURECTL), "plan"])
        subprocess.run(["hyperfine", "--warmup", "1", "--runs", str(runs), "--export-json", str(export),
                        "--style", "none", "--", command], cwd=cwd, check=True, capture_output=True)
        result = json.loads(export.read_text())["results"][0]
        return result["times"], [u + s for u, s in zip(result["user"], result["system"])]
    walls, cpus = [], []
    for _ in range(runs):
        cpu, began = children_cpu(), time.perf_counter()
        run(["plan"], cwd)
        walls.append(time.perf_counter() - began)
        cpus.append(children_cpu() - cpu)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="plan_bench_") as tmp:
        example = Path(tmp) / "example_repo"
        shutil.copytree(ROOT / "example_repo", example, ignore=shutil.ignore_patterns(".featurectl", "__pycache__"))
        rows.append(("example_repo", "empty registry", "example_repo", time_plan(example, args.runs)))

        began = time.perf_counter()
        generated = generate_repo(Path(tmp) / "generated", args.views, args.features)
        print(f"generated {args.views:,} views x {args.features} features in {time.perf_counter() - began:.1f} s")
        label = f"{args.views:,} x {args.features}"
        rows.append((label, "empty registry", "generated", time_plan(generated, args.runs)))

        began = time.perf_counter()
        applied = run(["apply"], generated)
        if applied.returncode != 0:
            raise SystemExit(f"featurectl apply failed:\n{applied.stderr}")
        print(f"applied them in {time.perf_counter() - began:.1f} s")
        rows.append((label, f"registry holding {args.views:,} views", "generated", time_plan(generated, args.runs)))

    print(f"\nfeaturectl plan, whole process, {args.runs} runs each "
          f"({'hyperfine' if shutil.which('hyperfine') else 'subprocess timing'}; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print(f"| {'repository':<14} | {'against':<30} | {'median s':>8} | {'min s':>6} | {'cpu s':>6} | "
          f"{'target s':>8} | met |")
    print(f"|{'-' * 16}|{'-' * 32}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 10}|-----|")
    for repo, against, kind, (walls, cpus) in rows:
        median, target = statistics.median(walls), TARGETS_S[kind]
        print(f"| {repo:<14} | {against:<30} | {median:>8.3f} | {min(walls):>6.3f} | {statistics.median(cpus):>6.3f} | "
              f"{target:>8.1f} | {'yes' if median < target else 'NO':<3} |")


if __name__ == "__main__":
    main()
