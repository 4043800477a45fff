"""Registry micro-benchmark: read() of a 1,000-view registry, and 50 sequential commits.

Run: .venv/bin/python bench/registry_micro.py [--views 1000] [--reads 30] [--commits 50]
SQLite uses a temporary file; PostgreSQL a throwaway database on the local server (the one the
tests use: 127.0.0.1:5432 or PG* variables), dropped at the end. Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures, run from anywhere

from featurectl.core.definitions import Definitions  # noqa: E402
from featurectl.registry.config import PostgresRegistryConfig, SqliteRegistryConfig  # noqa: E402
from featurectl.registry import create_registry  # noqa: E402
from featurectl.registry.base import Commit, Registry  # noqa: E402
from tests.fixtures.postgres import server_available, throwaway_database  # noqa: E402

DTYPES = ("int64", "float64", "string", "int32", "list<float32>")


def build_definitions(views: int, features: int) -> dict[str, list[dict[str, Any]]]:
    """Deterministic definitions, validated and canonicalised by the real model."""
    raw = {
        "entities": [{"name": "driver", "join_key": "driver_id"}],
        "sources": [{"name": "trips", "timestamp_field": "ts", "path": "data/trips.parquet"}],
        "feature_views": [
            {
                "name": f"view_{v:04d}", "version": "1.0.0", "entities": ["driver"], "source": "trips",
                "owner": "team@example.com", "ttl": "7d", "tags": {"team": f"t{v % 7}"},
                "description": f"view number {v}",
                "features": [
                    {"name": f"f_{f:02d}", "dtype": DTYPES[f % len(DTYPES)], "description": f"feature {f}"}
                    for f in range(features)
                ],
            }
            for v in range(views)
        ],
    }
    return Definitions.from_dict(raw).to_dict()


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench(registry: Registry, defs: dict, reads: int, commits: int) -> dict[str, list[float]]:
    now = datetime.now(timezone.utc)
    registry.commit(Commit(0, defs, [], "bench", now))
    snapshot = registry.read()
    assert snapshot.definitions["feature_views"] == defs["feature_views"]
    read_ms = timed(registry.read, reads)

    commit_ms = []
    views = defs["feature_views"]
    for i in range(commits):  # each apply changes one view and resends the full state, as apply does
        changed = {**views[i % len(views)], "version": f"1.0.{i + 1}"}
        desired = {**defs, "feature_views": [*views[: i % len(views)], changed, *views[i % len(views) + 1:]]}
        start = time.perf_counter()
        registry.commit(Commit(i + 1, desired, [{"kind": "feature_view", "name": changed["name"]}], "bench", now))
        commit_ms.append((time.perf_counter() - start) * 1000)
    return {"read": read_ms, "commit": commit_ms}


def report(backend: str, figures: dict[str, list[float]]) -> None:
    for what, samples in figures.items():
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"{backend:<11} {what:<7} n={len(samples):<3} median={statistics.median(samples):8.1f} ms"
              f"  min={ordered[0]:8.1f} ms  p95={p95:8.1f} ms  total={sum(samples):9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--commits", type=int, default=50)
    args = parser.parse_args()
    defs = build_definitions(args.views, args.features)
    print(f"registry of {args.views} views x {args.features} features; {args.reads} reads, {args.commits} commits")

    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        registries = {"sqlite": lambda: create_registry(SqliteRegistryConfig(path="registry.db"), root)}
        if server_available():
            dsn = stack.enter_context(throwaway_database("featurectl_bench"))
            registries["postgres"] = lambda: create_registry(PostgresRegistryConfig(type="postgres", dsn=dsn), root)
        else:
            print("postgres    skipped: no server on the local PostgreSQL address")
        for backend, open_registry in registries.items():
            registry = open_registry()
            try:
                report(backend, bench(registry, defs, args.reads, args.commits))
            finally:
                registry.close()


if __name__ == "__main__":
    main()
