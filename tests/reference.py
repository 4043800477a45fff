"""Brute-force oracles for the offline store, written to be obviously right, not fast.

Rows are plain dicts; timestamps are datetimes (naive ones are UTC). Every function scans
every source row for every question it answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurectl.core.model import FileSource, QuerySource


def as_utc(value: Any) -> datetime | None:
    """A datetime-like value as an aware UTC datetime; naive values are UTC."""
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


@dataclass
class RefView:
    """What the oracle needs to know of one view: its name, rows and rules."""

    name: str
    rows: list[dict]
    keys: list[str]
    features: list[str]
    timestamp_field: str = "event_timestamp"
    created_field: str | None = None
    ttl_seconds: int = 0


def _order(view: RefView, row: dict) -> tuple:
    """Sort key: event time, then created time, a missing created time losing."""
    created = as_utc(row.get(view.created_field)) if view.created_field else None
    return (as_utc(row[view.timestamp_field]), created is not None, created or datetime.min)


def latest_at_or_before(view: RefView, key: tuple, at: datetime) -> dict | None:
    """The view's row for `key` with the greatest event time <= at (created breaks ties)."""
    best = None
    for row in view.rows:
        ts = as_utc(row[view.timestamp_field])
        if ts is None or tuple(row[k] for k in view.keys) != key or ts > at:
            continue
        if best is None or _order(view, row) > _order(view, best):
            best = row
    return best


def point_in_time(entity_rows: list[dict], views: list[RefView], *,
                  timestamp_column: str = "event_timestamp",
                  full_feature_names: bool = False) -> list[dict]:
    """For each entity row, its feature values named `feature` or `view__feature`."""
    result = []
    for entity in entity_rows:
        at = as_utc(entity[timestamp_column])
        values: dict[str, Any] = {}
        for view in views:
            key = tuple(entity[k] for k in view.keys)
            row = latest_at_or_before(view, key, at) if at is not None else None
            if row is not None and view.ttl_seconds:
                if as_utc(row[view.timestamp_field]) < at - timedelta(seconds=view.ttl_seconds):
                    row = None
            for feature in view.features:
                name = f"{view.name}__{feature}" if full_feature_names else feature
                values[name] = None if row is None else row[feature]
        result.append(values)
    return result


def latest_in_window(view: RefView, start: datetime, end: datetime) -> dict[tuple, dict]:
    """Per key tuple, the latest row with start <= event time < end (created breaks ties)."""
    start, end = as_utc(start), as_utc(end)
    latest: dict[tuple, dict] = {}
    for row in view.rows:
        ts = as_utc(row[view.timestamp_field])
        key = tuple(row[k] for k in view.keys)
        if ts is None or any(k is None for k in key) or not (start <= ts < end):
            continue
        if key not in latest or _order(view, row) > _order(view, latest[key]):
            latest[key] = row
    return latest


# -- writing test sources ---------------------------------------------------------------
# Shared by the offline tests: the same rows written as each kind of source the store reads.

SOURCE_KINDS = ("parquet", "csv", "glob", "query")


def write_source(root: Path, name: str, rows: list[dict], kind: str, *, tz: str | None = "UTC",
                 timestamp_fields: tuple[str, ...] = ("event_timestamp", "created"),
                 created_field: str | None = "created", engine: str = "duckdb") -> FileSource | QuerySource:
    """Write `rows` under root/data as a parquet file, a csv, two parquet parts (glob), or a
    parquet file read by a query in the SQL of `engine` (duckdb, spark); tz=None writes naive
    UTC times, else that zone."""
    frame = pd.DataFrame(rows)
    for column in timestamp_fields:
        if column in frame:
            stamps = pd.to_datetime(frame[column], utc=True)
            frame[column] = stamps.dt.tz_localize(None) if tz is None else stamps.dt.tz_convert(tz)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    common = {"name": name, "timestamp_field": "event_timestamp", "created_timestamp_field": created_field}
    if kind == "csv":
        frame.to_csv(data / f"{name}.csv", index=False)
        return FileSource(path=f"data/{name}.csv", **common)
    if kind == "glob":
        (data / name).mkdir(exist_ok=True)
        half = len(frame) // 2
        for i, part in enumerate((frame.iloc[:half], frame.iloc[half:])):
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), data / name / f"part-{i}.parquet")
        return FileSource(path=f"data/{name}/*.parquet", **common)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data / f"{name}.parquet")
    if kind == "query":
        query = (f"SELECT * FROM parquet.`{(data / name).resolve()}.parquet`" if engine == "spark"
                 else f"SELECT * FROM read_parquet('data/{name}.parquet')")
        return QuerySource(query=query, **common)
    return FileSource(path=f"data/{name}.parquet", **common)
