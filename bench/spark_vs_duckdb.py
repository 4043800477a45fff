"""Spark local[N] against DuckDB on the same generated data: point-in-time join and latest
rows (materialization's read), same rows checked, wall time of each.

  nice .venv/bin/python bench/spark_vs_duckdb.py [--rows 1000000] [--entities 100000]
                                                 [--entity-rows 100000] [--master local[2]]

Data: `rows` feature rows over `entities` int64 keys, one parquet file, three features, a
created timestamp; `entity-rows` entity rows at random times. Spark's first query pays for
the JVM start, which is timed on its own. The lead's scale curve (issue 10) builds on this.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from featurectl.core.model import Entity, Feature, FeatureView, FileSource  # noqa: E402
from featurectl.offline import create_offline_store  # noqa: E402
from featurectl.offline.base import ViewRequest  # noqa: E402
from featurectl.offline.config import DuckdbOfflineConfig, SparkOfflineConfig  # noqa: E402

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAYS = 30


def make_data(root: Path, rows: int, entities: int, entity_rows: int, seed: int = 7) -> tuple[ViewRequest, pa.Table]:
    rng = np.random.default_rng(seed)
    micros = int(DAYS * 86400 * 1e6)
    ts = rng.integers(0, micros, rows)
    base_us = int(BASE.timestamp() * 1e6)
    table = pa.table({
        "driver_id": pa.array(rng.integers(1, entities + 1, rows), pa.int64()),
        "event_timestamp": pa.array(base_us + ts, pa.timestamp("us", tz="UTC")),
        "created": pa.array(base_us + ts + rng.integers(0, 10**6, rows), pa.timestamp("us", tz="UTC")),
        "conv": pa.array(rng.random(rows), pa.float64()),
        "trips": pa.array(rng.integers(0, 1000, rows), pa.int64()),
        "label": pa.array(rng.choice(np.array(["a", "b", "c"]), rows)),
    })
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data" / "stats.parquet")
    source = FileSource(name="stats", path="data/stats.parquet", timestamp_field="event_timestamp",
                        created_timestamp_field="created")
    features = [Feature(name="conv", dtype="float32"), Feature(name="trips", dtype="int64"),
                Feature(name="label", dtype="string")]
    view = FeatureView(name="stats", version="1.0.0", entities=["driver"], source="stats", owner="b@example.com",
                       features=features, ttl="7d")
    request = ViewRequest(view, source, (Entity(name="driver", join_key="driver_id"),), ("conv", "trips", "label"))
    entity = pa.table({
        "driver_id": pa.array(rng.integers(1, int(entities * 1.1) + 1, entity_rows), pa.int64()),
        "event_timestamp": pa.array(base_us + rng.integers(0, micros, entity_rows), pa.timestamp("us", tz="UTC")),
    })
    return request, entity


def timed(call):
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="featurectl-spark-bench-"))
    request, entity = make_data(root, args.rows, args.entities, args.entity_rows)
    duck = create_offline_store(DuckdbOfflineConfig(threads=2), root)
    spark = create_offline_store(SparkOfflineConfig(master=args.master, conf={
        "spark.ui.enabled": False, "spark.driver.memory": "2g", "spark.sql.shuffle.partitions": 8}), root)
    start_s, _ = timed(lambda: spark.spark)  # type: ignore[attr-defined]
    print(f"{args.rows:,} feature rows, {args.entities:,} entities, {args.entity_rows:,} entity rows; "
          f"Spark {args.master} session start {start_s:.1f} s")
    end = BASE + timedelta(days=DAYS + 1)
    for name, call, key in [
        ("pit", lambda s: s.get_historical_features(entity, [request]).read_all(), None),
        ("latest_rows", lambda s: s.latest_rows(request, BASE, end).read_all(), "driver_id"),
    ]:
        spark_warm, _ = timed(lambda c=call: c(spark))  # the first run compiles Spark's code
        d_s, d = timed(lambda c=call: c(duck))
        s_s, s = timed(lambda c=call: c(spark))
        if key:
            d, s = d.sort_by(key), s.sort_by(key)
        same = d.equals(s)
        print(f"{name:12} duckdb {d_s:7.2f} s   spark {s_s:7.2f} s (first run {spark_warm:.2f} s)   "
              f"ratio {s_s / d_s:5.1f}x   rows {d.num_rows:,}   same rows: {same}")


if __name__ == "__main__":
    main()
