"""Runs INSIDE bench/.venv-feast (Feast 0.67): Feast's own `remote` online store reads, and
writes through, a featurectl server. Prints one JSON object.

  python remote_client.py --url http://127.0.0.1:PORT --work DIR --source PARQUET
"""
from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("FEAST_USAGE", "False")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64, String

    repo = args.work
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: served\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n  type: remote\n  path: {args.url}\n"
        "entity_key_serialization_version: 3\n")
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(name="stats_src", path=args.source, timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    stats = FeatureView(name="stats", entities=[driver], source=source, ttl=timedelta(0), online=True,
                        schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32),
                                Field(name="trips", dtype=Int64), Field(name="label", dtype=String)])
    store = FeatureStore(repo_path=str(repo))
    store.apply([driver, source, stats])

    features = ["stats:conv_rate", "stats:trips", "stats:label"]
    read = store.get_online_features(features=features, entity_rows=[{"driver_id": d} for d in (1, 2, 3, 5)]).to_dict()

    # Feast's write path: write_to_online_store -> remote online_write_batch -> /write-to-online-store
    import pandas as pd
    at = datetime.now(timezone.utc) + timedelta(minutes=30)
    store.write_to_online_store("stats", pd.DataFrame({
        "driver_id": [7], "conv_rate": [0.25], "trips": [77], "label": ["pushed"],
        "event_timestamp": [at], "created": [at]}))
    written = store.get_online_features(features=features, entity_rows=[{"driver_id": 7}]).to_dict()
    print(json.dumps({"read": read, "written": written}, default=str))


if __name__ == "__main__":
    main()
