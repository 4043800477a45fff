"""Feast 0.67 side of the benchmark. Runs INSIDE bench/.venv-feast, one task per process.

  .venv-feast/bin/python bench/feast_peer.py --data DIR --work DIR --task TASK
        [--redis-url redis://127.0.0.1:PORT/0] [--iters N] [--save-output FILE]

Builds a Feast repository in --work/<store> (feature_store.yaml + bench_defs.py), applies
it, runs the task and prints one JSON object (seconds, entities/s, latencies in ms).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry calls while timing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (FEATURES, VIEW, materialize_figures, online_figures, run_peer,  # noqa: E402
                     pit_figures, time_command, window)

DEFS = '''\
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_source = FileSource(
    name="driver_source", path={path!r},
    timestamp_field="event_timestamp", created_timestamp_column="created",
)
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days={ttl}), online=True,
    source=driver_source,
    schema=[Field(name="driver_id", dtype=Int64)]
    + [Field(name=f"f{{i}}", dtype=Float64) for i in range(6)]
    + [Field(name=f"f{{i}}", dtype=Int64) for i in range(6, 9)]
    + [Field(name="f9", dtype=String)],
)
'''


def redis_connection_string(url: str) -> str:
    u = urlparse(url)
    db = (u.path or "/0").lstrip("/") or "0"
    return f"{u.hostname}:{u.port},db={db}"


def write_repo(work: Path, data: Path, store: str, redis_url: str | None, ttl_days: int) -> Path:
    repo = work / f"feast-{store}"
    (repo / "state").mkdir(parents=True, exist_ok=True)
    if store == "redis":
        online = f"  type: redis\n  connection_string: \"{redis_connection_string(redis_url)}\"\n"
    else:
        online = f"  type: sqlite\n  path: {repo / 'state' / 'online.db'}\n"
    (repo / "feature_store.yaml").write_text(
        "project: bench\n"
        f"registry: {repo / 'state' / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n{online}"
        "offline_store:\n  type: duckdb\n"
        "entity_key_serialization_version: 3\n"
    )
    path = str((data / "features.parquet").resolve())
    (repo / "bench_defs.py").write_text(DEFS.format(path=path, ttl=ttl_days))  # ttl 0: none
    return repo


def open_store(repo: Path):
    import importlib.util

    from feast import FeatureStore

    spec = importlib.util.spec_from_file_location("bench_defs", repo / "bench_defs.py")
    defs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(defs)
    store = FeatureStore(repo_path=str(repo))
    store.apply([defs.driver, defs.driver_source, defs.driver_stats])
    return store


def online_count(store_kind: str, repo: Path, redis_url: str | None) -> int:
    if store_kind == "redis":
        import redis

        return redis.Redis.from_url(redis_url).dbsize()
    import sqlite3

    con = sqlite3.connect(repo / "state" / "online.db")
    try:
        return con.execute(f"SELECT COUNT(DISTINCT entity_key) FROM bench_{VIEW}").fetchone()[0]
    finally:
        con.close()


def task_materialize(store, meta, kind, repo, args) -> dict:
    start, end = window(meta)
    figures = materialize_figures(lambda: store.materialize(start, end), meta["distinct_feature_ids"])
    return {**figures, "feature_rows": meta["feature_rows"],
            "online_keys": online_count(kind, repo, args.redis_url)}


def task_pit(store, meta, data: Path, save: str | None) -> dict:
    import pandas as pd

    entity_df = pd.read_parquet(data / "entity_df.parquet")
    refs = [f"{VIEW}:{f}" for f in FEATURES]
    return pit_figures(lambda: store.get_historical_features(entity_df=entity_df, features=refs).to_arrow(),
                       lambda: store.get_historical_features(entity_df=entity_df, features=refs).to_df(),
                       len(entity_df), meta, save)


def task_online(store, meta, args) -> dict:
    refs = [f"{VIEW}:{f}" for f in FEATURES]

    def call(ids):
        return store.get_online_features(
            features=refs, entity_rows=[{"driver_id": i} for i in ids]).to_dict()

    return online_figures(call, lambda: store.materialize(*window(meta)), meta, args.iters)


def task_plan(repo: Path, args) -> dict:
    feast = Path(sys.executable).with_name("feast")
    env = dict(os.environ, FEAST_USAGE="False")
    return time_command([str(feast), "plan"], cwd=repo, runs=args.plan_runs, env=env)


def main() -> None:
    run_peer(__doc__, "feast", lambda: __import__("feast").__version__, write_repo, lambda repo, meta: open_store(repo), {
        "materialize": lambda store, meta, repo, args: task_materialize(store, meta, args.store, repo, args),
        "pit": lambda store, meta, repo, args: task_pit(store, meta, args.data, args.save_output),
        "online": lambda store, meta, repo, args: task_online(store, meta, args),
        "plan": lambda store, meta, repo, args: task_plan(repo, args),
    })


if __name__ == "__main__":
    main()
