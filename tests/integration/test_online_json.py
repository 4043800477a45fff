"""`get-online --format json` end to end, for a view holding every dtype: values as the one
JSON encoding of render.values (NaN as a string, bytes as base64, timestamps ISO 8601 UTC
with Z, float32 shortest, lists), and the SDK's result carrying each column's dtype."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from featurectl.sdk import FeatureStore
from tests.fixtures.repos import run_featurectl

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
FEATURES = {"b": ("bool", pa.bool_()), "i": ("int32", pa.int32()), "f": ("float32", pa.float32()),
            "d": ("float64", pa.float64()), "s": ("string", pa.string()), "raw": ("bytes", pa.binary()),
            "at": ("timestamp", pa.timestamp("us", tz="UTC")), "fl": ("list<float32>", pa.list_(pa.float32()))}


def make_repo(root: Path) -> Path:
    (root / "features").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "featurectl.yaml").write_text(yaml.safe_dump({"project": "types"}))
    (root / "features" / "defs.yaml").write_text(yaml.safe_dump({
        "entities": [{"name": "thing", "join_key": "thing_id", "dtype": "int64"}],
        "sources": [{"name": "things", "path": "data/things.parquet", "timestamp_field": "event_timestamp"}],
        "feature_views": [{"name": "all_types", "version": "1.0.0", "entities": ["thing"], "source": "things",
                           "ttl": "0", "owner": "t@example.com",
                           "features": [{"name": n, "dtype": d} for n, (d, _) in FEATURES.items()]}],
    }))
    columns = {
        "thing_id": pa.array([1, 2], pa.int64()),
        "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
        "b": [True, None], "i": [7, None], "f": [0.42, math.nan], "d": [math.inf, -math.inf],
        "s": ["jörg", None], "raw": [b"\x00\xffhi", None],
        "at": [T0 + timedelta(microseconds=250), None], "fl": [[0.1, None, math.inf], None],
    }
    schema = pa.schema([("thing_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        *((n, t) for n, (_, t) in FEATURES.items())])
    pq.write_table(pa.table(columns, schema), root / "data" / "things.parquet")
    return root


def test_get_online_json_encodes_every_dtype(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    for args in (["apply"], ["materialize", "2026-01-01", "2026-04-01"]):
        assert run_featurectl(*args, cwd=repo).code == 0
    result = run_featurectl("get-online", "--features", "all_types:*", "-e", "thing_id=1", "-e", "thing_id=2",
                            "-e", "thing_id=3", cwd=repo)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"thing_id": 1, "b": True, "i": 7, "f": 0.42, "d": "Infinity", "s": "jörg", "raw": "AP9oaQ==",
         "at": "2026-03-01T12:00:00.000250Z", "fl": [0.1, None, "Infinity"]},
        {"thing_id": 2, "b": None, "i": None, "f": "NaN", "d": "-Infinity", "s": None, "raw": None,
         "at": None, "fl": None},
        {"thing_id": 3, **{name: None for name in FEATURES}},
    ]
    with FeatureStore(repo) as fs:
        online = fs.get_online_result(["all_types:f", "all_types:at"], [{"thing_id": 1, "note": "x"}])
    assert online.dtypes == {"thing_id": "int64", "note": None, "f": "float32", "at": "timestamp"}
    assert online.columns["f"] == [0.42]
