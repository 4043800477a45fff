"""Whole-process `featurectl docs` time on a generated repository of 1,000 feature views x
20 features whose registry holds 50 revisions (target: <= 10 s).

    .venv/bin/python bench/docs_speed.py [--views 1000] [--features 20] [--revisions 50] [--runs 3]

The repository is bench/plan_speed.py's generator. Its history is made by real applies
(plan, rules, version policy, commit) of in-memory definitions: revision 1 adds everything;
each later one changes 40 views: descriptions (patch), an added nullable feature (minor) on
every third, a removed feature (major) on every tenth. Each figure is the wall time of a
fresh `featurectl docs` process after a warm-up run, so start-up, the registry read, every
page and both Graphviz runs are included; CPU time (the process and its `dot` children) is
shown too, because wall time on a shared machine also measures the neighbours.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plan_speed import children_cpu, generate_repo, run  # noqa: E402
from featurectl import FeatureStore  # noqa: E402
from featurectl.app import planning  # noqa: E402
from featurectl.core.definitions import Definitions  # noqa: E402
from featurectl.core.model import Feature  # noqa: E402

CHANGED_PER_REVISION = 40
TARGET_S = 10.0


def _bumped(version: str, level: str) -> str:
    major, minor, patch = map(int, version.split("."))
    return {"major": f"{major + 1}.0.0", "minor": f"{major}.{minor + 1}.0", "patch": f"{major}.{minor}.{patch + 1}"}[level]


def _revise(defs: Definitions, n: int) -> Definitions:
    views = dict(defs.feature_views)
    for i in range(CHANGED_PER_REVISION):
        name = f"view_{(n * CHANGED_PER_REVISION + i) % len(views)}"
        view = views[name]
        if i % 10 == 0 and len(view.features) > 1:
            change = {"features": view.features[1:], "version": _bumped(view.version, "major")}
        elif i % 3 == 0:
            added = Feature(name=f"added_r{n}", dtype="float64", description=f"added at revision {n}")
            change = {"features": [*view.features, added], "version": _bumped(view.version, "minor")}
        else:
            change = {"description": f"{view.description}, revised {n}", "version": _bumped(view.version, "patch")}
        views[name] = view.model_copy(update=change)
    return Definitions(defs.entities, defs.sources, views, defs.feature_services)


def make_history(repo: Path, revisions: int) -> None:
    store = FeatureStore(repo)
    defs = store.definitions
    clock = lambda: datetime.now(timezone.utc)  # noqa: E731
    for n in range(1, revisions + 1):
        if n > 1:
            defs = _revise(defs, n)
        result = planning.apply(store.project, store.registry, defs, actor=f"user{n % 5}", clock=clock)
        if result.revision != n:
            raise SystemExit(f"apply {n} did not make revision {n}: {result.plan.violations}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docs_bench_") as tmp:
        repo = generate_repo(Path(tmp) / "generated", args.views, args.features)
        began = time.perf_counter()
        make_history(repo, args.revisions)
        print(f"{args.revisions} revisions of {args.views:,} views x {args.features} features applied in "
              f"{time.perf_counter() - began:.1f} s")
        warm = run(["docs"], repo)
        if warm.returncode != 0:
            raise SystemExit(f"featurectl docs failed:\n{warm.stderr}")
        walls, cpus = [], []
        for _ in range(args.runs):
            cpu, began = children_cpu(), time.perf_counter()
            run(["docs"], repo)
            walls.append(time.perf_counter() - began)
            cpus.append(children_cpu() - cpu)
        pages = sum(1 for _ in (repo / ".featurectl" / "docs").rglob("*.html"))
        size = sum(p.stat().st_size for p in (repo / ".featurectl" / "docs").rglob("*")) / 1e6
    median = statistics.median(walls)
    print(f"\nfeaturectl docs, whole process, {args.runs} runs (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}): {pages:,} pages, {size:.0f} MB\n")
    print("| repository | revisions | pages | median s | min s | cpu s | target s | met |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print(f"| generated {args.views:,} views × {args.features} features | {args.revisions} | {pages:,} | "
          f"{median:.2f} | {min(walls):.2f} | {statistics.median(cpus):.2f} | {TARGET_S:g} | "
          f"{'yes' if median <= TARGET_S else 'NO'} |")


if __name__ == "__main__":
    main()
