"""The feature logger's hand-off: bounded between two flushes, one table per view and shape,
every handed-over row written by close() (real pyarrow, real files)."""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow.parquet as pq

from featurectl.app.retrieval import FeatureColumn, OnlineResult
from featurectl.server.feature_log import FeatureLogger
from featurectl.server.metrics import Metrics

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def result(drivers: list[int], features: dict[str, list]) -> OnlineResult:
    columns = [FeatureColumn(name, "stats", name, "float64" if name != "n" else "int64", values,
                             ["NOT_FOUND" if v is None else "PRESENT" for v in values], [None] * len(values))
               for name, values in features.items()]
    return OnlineResult({"driver_id": drivers}, columns, {"driver_id": "int64"})


def rows(directory) -> list[dict]:
    return [row for path in sorted(directory.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def test_requests_beyond_the_bound_are_dropped_and_counted_and_the_rest_written_on_close(tmp_path):
    metrics = Metrics()
    logger = FeatureLogger(tmp_path, metrics, queue_size=2, flush_seconds=3600)  # no tick during the test
    logger.log(AT, "a" * 32, result([1, 2], {"rate": [0.5, None]}))
    logger.log(AT, "b" * 32, result([3], {"rate": [1.5]}))
    logger.log(AT, "c" * 32, result([4, 5, 6], {"rate": [1.0, 2.0, 3.0]}))  # the third: over the bound
    logger.close()
    assert metrics.log_dropped._value.get() == 3
    assert metrics.log_written._value.get() == 3
    assert rows(tmp_path / "stats") == [
        {"request_time": AT, "request_id": "a" * 32, "driver_id": 1, "rate": 0.5, "rate__status": "PRESENT"},
        {"request_time": AT, "request_id": "a" * 32, "driver_id": 2, "rate": None, "rate__status": "NOT_FOUND"},
        {"request_time": AT, "request_id": "b" * 32, "driver_id": 3, "rate": 1.5, "rate__status": "PRESENT"}]


def test_two_feature_sets_of_one_view_in_one_flush_are_one_table_with_both_sets_of_columns(tmp_path):
    logger = FeatureLogger(tmp_path, Metrics(), flush_seconds=3600)
    logger.log(AT, "a" * 32, result([1], {"rate": [0.5]}))
    logger.log(AT, "b" * 32, result([2], {"rate": [0.25], "n": [7]}))
    logger.log(AT, "c" * 32, result([3], {"rate": [0.75]}))
    logger.close()
    (path,) = (tmp_path / "stats").glob("*.parquet")
    assert pq.read_schema(path).names == ["request_time", "request_id", "driver_id", "rate", "rate__status",
                                          "n", "n__status"]
    assert sorted((r["driver_id"], r["rate"], r["n"], r["n__status"]) for r in rows(tmp_path / "stats")) == [
        (1, 0.5, None, None), (2, 0.25, 7, "PRESENT"), (3, 0.75, None, None)]
