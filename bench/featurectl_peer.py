"""featurectl side of the benchmark: the same tasks and JSON shape as bench/feast_peer.py.

  .venv/bin/python bench/featurectl_peer.py --data DIR --work DIR --task TASK
        [--redis-url redis://127.0.0.1:PORT/0] [--iters N] [--save-output FILE]

Writes a featurectl repository in --work/featurectl-<store> (featurectl.yaml and
features/bench.yaml), applies it through the SDK, runs one task and prints one JSON object.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floors import run_floor  # noqa: E402
from harness import (FEATURES, VIEW, materialize_figures, online_figures, run_peer,  # noqa: E402
                     pit_figures, time_command, window)

DEFS = """\
entities:
  - name: driver
    join_key: driver_id
    dtype: int64

sources:
  - name: driver_source
    path: {path}
    timestamp_field: event_timestamp
    created_timestamp_field: created

feature_views:
  - name: driver_stats
    version: 1.0.0
    entities: [driver]
    source: driver_source
    ttl: {ttl}
    owner: bench@example.com
    features:
{features}
"""


def write_repo(work: Path, data: Path, store: str, redis_url: str | None, ttl_days: int) -> Path:
    repo = work / f"featurectl-{store}"
    (repo / "features").mkdir(parents=True, exist_ok=True)
    online = (f"{{type: redis, url: \"{redis_url}\"}}" if store == "redis"
              else "{type: sqlite, path: .featurectl/online.db}")
    (repo / "featurectl.yaml").write_text(f"project: bench\nonline_store: {online}\n")
    dtypes = ["float64"] * 6 + ["int64"] * 3 + ["string"]
    feats = "\n".join(f"      - {{name: {f}, dtype: {t}}}" for f, t in zip(FEATURES, dtypes))
    (repo / "features" / "bench.yaml").write_text(
        DEFS.format(path=(data / "features.parquet").resolve(), features=feats,
                    ttl=f"{ttl_days}d" if ttl_days else "0"))
    return repo


def open_store(repo: Path, meta: dict):
    from featurectl import FeatureStore

    # Online reads null values older than the ttl (SPEC §5) relative to the store's clock;
    # the data ends at window_end, so the benchmark's "now" is the end of its window.
    now = window(meta)[1]
    store = FeatureStore(repo, clock=lambda: now)
    store.apply()
    return store


def task_materialize(store, meta, redis_url: str | None) -> dict:
    start, end = window(meta)
    written = []

    def run() -> None:
        runs = store.materialize(start, end)
        bad = [f"{r.view}: {r.status} {r.error or ''}" for r in runs if r.status != "ok"]
        if bad:
            raise SystemExit(f"materialize failed: {bad}")
        written.append(sum(r.entities_written for r in runs))

    figures = materialize_figures(run, meta["distinct_feature_ids"])
    keys = online_count(redis_url) if redis_url else written[0]
    return {**figures, "feature_rows": meta["feature_rows"], "online_keys": keys}


def online_count(redis_url: str) -> int:
    """Keys actually in Redis, counted by the server (SQLite: the SDK's own count)."""
    import redis

    return redis.Redis.from_url(redis_url).dbsize()


def task_pit(store, meta, data: Path, save: str | None) -> dict:
    import pandas as pd

    entity_df = pd.read_parquet(data / "entity_df.parquet")
    refs = [f"{VIEW}:{f}" for f in FEATURES]
    return pit_figures(lambda: store.get_historical_features(entity_df=entity_df, features=refs),
                       lambda: store.get_historical_features(entity_df=entity_df, features=refs).to_pandas(),
                       len(entity_df), meta, save)


def task_online(store, meta, args) -> dict:
    refs = [f"{VIEW}:{f}" for f in FEATURES]

    def call(ids):
        return store.get_online_features(features=refs, entity_rows=[{"driver_id": i} for i in ids])

    return online_figures(call, lambda: store.materialize(*window(meta)), meta, args.iters)


def task_plan(repo: Path, args) -> dict:
    cli = Path(sys.executable).with_name("featurectl")
    return time_command([str(cli), "plan", "--repo", str(repo)], cwd=repo, runs=args.plan_runs)


def main() -> None:
    run_peer(__doc__, "featurectl", lambda: __import__("featurectl").__version__, write_repo, open_store, {
        "materialize": lambda store, meta, repo, args: task_materialize(store, meta, args.redis_url if args.store == "redis" else None),
        "pit": lambda store, meta, repo, args: task_pit(store, meta, args.data, args.save_output),
        "online": lambda store, meta, repo, args: task_online(store, meta, args),
        "plan": lambda store, meta, repo, args: task_plan(repo, args),
        "floor": lambda store, meta, repo, args: run_floor(args.task, store, meta, args),
    })


if __name__ == "__main__":
    main()
