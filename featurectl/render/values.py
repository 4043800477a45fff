"""Feature values as JSON: the one encoding shared by `get-online --format json`, `history
--format json` and the HTTP server.

- NaN and ±Infinity become the strings "NaN", "Infinity", "-Infinity" (protobuf's JSON
  mapping; bare NaN is not JSON, and orjson would write null).
- bytes become standard base64 text (protobuf's JSON mapping; lossless, unlike a text decode).
- timestamps become ISO 8601 in UTC with a `Z` (`2026-01-01T12:00:00Z`, microseconds when
  there are any); a timestamp without a zone is UTC (SPEC §5).
- float32 values are written as the shortest decimal of the same float32 (0.42, not
  0.41999998688697815).
- list<T> applies T's encoding to each element; None stays None (null).

Values are encoded a column at a time by a function chosen once per dtype
(`column_encoder`), never by testing each value's type. The result is plain Python (str, int,
float, bool, None, list) that `json.dumps(allow_nan=False)` and `orjson.dumps` both write
unchanged, so a server can hand it straight to orjson.
"""
from __future__ import annotations

import base64
import json
import math
import struct
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

from featurectl.core.dtypes import element_type, shortest_float32

ColumnEncoder = Callable[[Sequence[Any]], list[Any]]

_NAN, _INF, _NEG_INF = "NaN", "Infinity", "-Infinity"


def float_value(value: float | None) -> float | str | None:
    """One float: itself when finite, else its protobuf-style string."""
    if value is None or value - value == 0:  # false only for NaN and ±inf
        return value
    if value != value:
        return _NAN
    return _INF if value > 0 else _NEG_INF


def timestamp_text(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`; a naive datetime is taken as UTC."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        return value.isoformat() + "Z"
    if zone is not timezone.utc:  # what the stores hand back is UTC already: the fast path
        value = value.astimezone(timezone.utc)
    return value.isoformat()[:-6] + "Z"  # drop "+00:00"


def bytes_text(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _as_is(column: Sequence[Any]) -> list[Any]:
    return column if isinstance(column, list) else list(column)


def _floats(column: Sequence[Any]) -> list[Any]:
    # Fast path: a column without None, NaN or ±inf sums (in C) to a finite number.
    try:
        if math.isfinite(sum(column)):
            return _as_is(column)
    except TypeError:  # a None among the values
        pass
    return [float_value(v) for v in column]


def _exact_float32(column: Sequence[Any]) -> tuple[float, ...] | None:
    """Each value rounded to float32 (one pack/unpack in C), or None when a value does not
    fit (None, or beyond float32's range)."""
    fmt = f"<{len(column)}f"
    try:
        return struct.unpack(fmt, struct.pack(fmt, *column))
    except (struct.error, OverflowError, TypeError):
        return None


def _float32s(column: Sequence[Any]) -> list[Any]:
    # A value that is exactly a float32 (e.g. from Arrow's to_pylist) is its long double
    # expansion and needs shortening; one that is not (already shortened by the online read,
    # or a float64 stored before a dtype change) is left as it is.
    exact = _exact_float32(column)
    if exact is None:
        return [None if v is None else float_value(_shortened(v)) for v in column]
    return _floats([shortest_float32(v) if v == e else v for v, e in zip(column, exact)])


def _shortened(value: float) -> float:
    exact = _exact_float32([value])
    return shortest_float32(value) if exact is not None and exact[0] == value else value


def _timestamps(column: Sequence[Any]) -> list[Any]:
    return [timestamp_text(v) for v in column]


def _bytes(column: Sequence[Any]) -> list[Any]:
    return [bytes_text(v) for v in column]


_SCALAR_ENCODERS: dict[str, ColumnEncoder] = {
    "bool": _as_is, "int32": _as_is, "int64": _as_is, "string": _as_is,
    "float32": _float32s, "float64": _floats, "bytes": _bytes, "timestamp": _timestamps,
}


def _lists_of(encode: ColumnEncoder) -> ColumnEncoder:
    if encode is _as_is:
        return _as_is
    return lambda column: [None if v is None else encode(v) for v in column]


@lru_cache(maxsize=None)
def column_encoder(dtype: str | None) -> ColumnEncoder:
    """The function that turns a column of values of `dtype` (as the SDK returns them) into
    JSON-ready values. None (a column of unknown type, e.g. an extra entity-row column) falls
    back to looking at each value."""
    if dtype is None:
        return lambda column: [json_value(v) for v in column]
    elem = element_type(dtype)
    if elem is not None:
        return _lists_of(_SCALAR_ENCODERS[elem])
    return _SCALAR_ENCODERS[dtype]


def encode_columns(columns: Mapping[str, Sequence[Any]],
                   dtypes: Mapping[str, str | None]) -> dict[str, list[Any]]:
    """Every column JSON-ready, each by its dtype's encoder (unknown names: by value)."""
    return {name: column_encoder(dtypes.get(name))(values) for name, values in columns.items()}


def rows(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Columns of equal length as one object per row, keys in column order."""
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def json_value(value: Any) -> Any:
    """Any value of unknown type, JSON-ready (for paths where the dtype is not known and speed
    does not matter: history, reports)."""
    if isinstance(value, float):
        return float_value(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_text(bytes(value))
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, (str, int)):
        return value
    if hasattr(value, "item"):  # a NumPy scalar
        return json_value(value.item())
    return str(value)


def dumps(value: Any) -> str:
    """JSON text for the command line: indented, and strict (NaN must have been encoded)."""
    return json.dumps(value, indent=2, allow_nan=False)
