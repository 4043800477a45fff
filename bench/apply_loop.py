"""50 sequential applies through the SDK, on SQLite and on PostgreSQL registries.

Each apply is a real one: the view's description changes and its version takes the patch bump
the rules require, then `FeatureStore.apply()` plans against the head and commits.

Run: .venv/bin/python bench/apply_loop.py [--applies 50]
PostgreSQL uses a throwaway database on the local server, dropped at the end.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures, run from anywhere

import yaml  # noqa: E402

from featurectl import FeatureStore  # noqa: E402
from tests.fixtures.postgres import server_available, throwaway_database  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "example_repo"


def bump(repo: Path, n: int) -> None:
    path = repo / "features" / "drivers.yaml"
    data = yaml.safe_load(path.read_text())
    view = data["feature_views"][0]
    view["description"] = f"Hourly driver statistics, revision {n}"
    view["version"] = f"1.0.{n}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def run(repo: Path, applies: int) -> tuple[list[float], int]:
    times, revision = [], 0
    store = FeatureStore(repo, actor="bench")
    store.apply()
    for n in range(1, applies + 1):
        bump(repo, n)
        t0 = time.perf_counter()
        result = store.apply()
        times.append(time.perf_counter() - t0)
        if result.revision is None or not result.plan.valid:
            raise SystemExit(f"apply {n} did not apply: {result}")
        revision = result.revision
    store.close()
    return times, revision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("sqlite", None)]
        if server_available():
            backends.append(("postgres", throwaway_database))
        for name, database in backends:
            repo = Path(tmp) / name
            shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".featurectl"))
            config = repo / "featurectl.yaml"
            if database is None:
                times, revision = run(repo, args.applies)
            else:
                with database() as dsn:
                    config.write_text(config.read_text().replace(
                        "registry: {type: sqlite, path: .featurectl/registry.db}",
                        f'registry: {{type: postgres, dsn: "{dsn}"}}'))
                    times, revision = run(repo, args.applies)
            print(f"{name:9s} {len(times)} applies, no error; final revision {revision}; "
                  f"median {statistics.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms, "
                  f"total {sum(times):.2f} s")


if __name__ == "__main__":
    main()
