"""Pushed rows accepted by Arrow compute alone, before any engine statement runs.

A push is a thousand rows in memory. The engine's one statement over them (checks, counts and
latest row per entity; `duckdb._counted_latest`) costs ~4-5 ms of a push's ~10, nearly all of
it planning and starting the statement, whatever its rows; the same work in Arrow compute
takes ~0.3 ms. The engine stays the one judge of the view's rules: `proven_latest` only
*accepts*, and only rows for which every rule is provably met and every value comes out as the
engine's casts make it (the same types, the same numbers). Whatever it cannot prove — a rule
broken, a coercion other than the few below, a timestamp in another spelling, a row outside
the window, an `allowed` list — returns None and the engine checks the rows as it always did,
writing the report of a refusal. So a refused push is reported by one path, and an accepted
one writes what that path would write (tests/integration/test_pushed_rows.py compares both).

Accepted coercions, each equal to the engine's cast where it succeeds:
- a column already of the declared type (JSON ints as int64, floats as double, text, bools);
- int64 to int32 (range checked), int64 to float64, double to float32 (finite, within range);
- a column of nulls only (JSON nulls) to any type.
Timestamps (the event and created time) are ISO 8601 text of one spelling for the column:
`YYYY-MM-DD[T ]HH:MM:SS[.ffffff]`, naive meaning UTC, or the same with `Z`/`±HH:MM` on every
value; Arrow's parser refuses what is no date (February 30th), which then goes to the engine.
"""
from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurectl.core.dtypes import element_type
from featurectl.core.times import EPOCH, as_utc
from featurectl.offline.base import ViewRequest

UTC_MICROS = pa.timestamp("us", tz="UTC")
_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_ARROW_TYPES = {"bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
                "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(), "timestamp": UTC_MICROS}
_INT32 = (-(2**31), 2**31 - 1)
_FLOAT32_MAX = 3.4028234663852886e38
_NUMERIC = ("int32", "int64", "float32", "float64")
# [True] from a buffer: pa.array() of a Python list imports pandas on its first call (0.4 s).
_TRUE = pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(b"\x01")])


def proven_latest(request: ViewRequest, rows: pa.Table, start: datetime, end: datetime) -> pa.Table | None:
    """The latest row per entity of `rows` (the greatest event time, then created time, a missing
    created time losing), as the engine's latest-row statement returns them (join keys, then
    `event_timestamp`, then the features, cast to their dtypes), when Arrow compute proves that
    every row is in the window [start, end) and meets every rule of the view; None when it
    cannot, and the engine decides."""
    if not rows.num_rows:
        return None
    source = request.source
    names = set(rows.column_names)
    needed = [source.timestamp_field, *(e.join_key for e in request.entities), *request.features]
    if source.created_timestamp_field:
        needed.append(source.created_timestamp_field)
    if any(name not in names for name in needed):
        return None  # the engine names the missing column
    times = _times(rows.column(source.timestamp_field), nullable=False)
    if times is None or not _within(times, start, end):
        return None
    created = None
    if source.created_timestamp_field:
        created = _times(rows.column(source.created_timestamp_field), nullable=True)
        if created is None:
            return None
    columns: dict[str, Any] = {}
    for entity in request.entities:
        key = _typed(rows.column(entity.join_key), entity.dtype)
        if key is None or key.null_count:
            return None
        columns[entity.join_key] = key
    columns["event_timestamp"] = times
    for name in request.features:
        feature = request.feature(name)
        value = _typed(rows.column(name), feature.dtype)
        if value is None or (not feature.nullable and value.null_count) or not _meets(value, feature):
            return None
        columns[name] = value
    return _latest(pa.table(columns), [e.join_key for e in request.entities], created)


def _times(column: pa.ChunkedArray, nullable: bool) -> pa.ChunkedArray | None:
    """ISO 8601 text as timestamp[us, UTC], or None (another type or spelling, a value Arrow's
    parser refuses, a null where none may be)."""
    if column.null_count == len(column) and nullable:
        return pa.chunked_array([pa.nulls(len(column), UTC_MICROS)])
    if column.null_count and not nullable:
        return None
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    try:
        if pc.all(pc.match_substring_regex(column, _NAIVE), min_count=0).as_py():
            return pc.cast(pc.cast(column, pa.timestamp("us")), UTC_MICROS)
        if pc.all(pc.match_substring_regex(column, _ZONED), min_count=0).as_py():
            return pc.cast(column, UTC_MICROS)
    except pa.ArrowInvalid:  # a date that does not exist, an hour 24: the engine says which
        return None
    return None


def _within(times: pa.ChunkedArray, start: datetime, end: datetime) -> bool:
    low, high = pc.min_max(pc.cast(times, pa.int64())).values()
    span = (_micros(start), _micros(end))
    return low.as_py() >= span[0] and high.as_py() < span[1]


def _micros(moment: datetime) -> int:
    return (as_utc(moment) - EPOCH) // timedelta(microseconds=1)


def _typed(column: pa.ChunkedArray, dtype: str) -> pa.ChunkedArray | None:
    """The column as the engine's cast to `dtype` gives it, when that cast provably succeeds on
    every value and this one gives the same values; None otherwise."""
    if element_type(dtype) is not None:
        return None
    target = _ARROW_TYPES[dtype]
    if column.type == target:
        return column
    if pa.types.is_null(column.type):
        return pa.chunked_array([pa.nulls(len(column), target)])
    if column.type == pa.int64() and dtype == "int32":
        low, high = pc.min_max(column).values()
        if low.is_valid and (low.as_py() < _INT32[0] or high.as_py() > _INT32[1]):
            return None
        return pc.cast(column, target)
    if column.type == pa.int64() and dtype == "float64":
        return pc.cast(column, target, safe=False)  # rounded to the nearest double, as the engine does
    if column.type == pa.float64() and dtype == "float32":
        finite = pc.all(pc.is_finite(column), min_count=0).as_py()
        magnitude = pc.max(pc.abs(column)).as_py()
        if not finite or (magnitude is not None and magnitude > _FLOAT32_MAX):
            return None
        return pc.cast(column, target, safe=False)
    return None


def _meets(column: pa.ChunkedArray, feature) -> bool:
    """The feature's constraints provably hold (min and max of a numeric feature, no NaN); an
    `allowed` list, or anything else, is left to the engine."""
    c = feature.constraints
    if c is None or c.is_empty():
        return True
    if c.allowed is not None or feature.dtype not in _NUMERIC:
        return False
    if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column), min_count=0).as_py():
        return False
    low, high = pc.min_max(column).values()
    if not low.is_valid:  # nulls only: no value to compare
        return True
    # Exact comparisons (a Python int against a float): where they hold, the engine's, on the
    # values as doubles, hold too.
    return (c.min is None or low.as_py() >= float(c.min)) and (c.max is None or high.as_py() <= float(c.max))


def _latest(table: pa.Table, keys: list[str], created: pa.ChunkedArray | None) -> pa.Table:
    """One row per key: the greatest event time, then created time (nulls last)."""
    ranked = table.select(keys).append_column("__ts", table.column("event_timestamp"))
    order_by = [(k, "ascending", "at_end") for k in keys] + [("__ts", "descending", "at_end")]
    if created is not None:
        ranked = ranked.append_column("__cr", created)
        order_by.append(("__cr", "descending", "at_end"))
    order = pc.sort_indices(ranked, sort_keys=order_by)
    if len(order) > 1:
        steps = []
        for key in keys:  # where a row's key differs from the row before: the first of its key
            column = table.column(key).take(order)
            steps.append(pc.not_equal(column.slice(1), column.slice(0, len(column) - 1)))
        changed = functools.reduce(pc.or_, steps)
        first = pc.indices_nonzero(pa.chunked_array([_TRUE, *changed.chunks]))
        order = order.take(first)
    return table.take(order).combine_chunks()
