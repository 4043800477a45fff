"""JSON bodies with orjson. Values follow the CLI's `get-online --format json`: NaN and
±Infinity as the strings "NaN"/"Infinity"/"-Infinity", bytes as text, timestamps ISO 8601."""
from __future__ import annotations

import math
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any

import orjson

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_EPOCH_TEXT = "1970-01-01T00:00:00Z"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def column_values(values: list[Any], dtype: str) -> list[Any]:
    """One feature's values ready for orjson: only float columns need a pass (orjson would
    write NaN as null, which reads back as a missing value)."""
    if "float" in dtype:
        return [_finite(v) for v in values]
    return values


@lru_cache(maxsize=65_536)  # entities share event times (hourly batches): each is formatted once
def event_time_text(moment: datetime | None) -> str:
    """As protobuf's JSON mapping writes a Timestamp (what Feast's server sends): UTC with Z."""
    if moment is None:
        return _EPOCH_TEXT
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        micros = moment.microsecond
        text += f".{micros:06d}" if micros % 1000 else f".{micros // 1000:03d}"
    return text + "Z"


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes) -> Any:
    return orjson.loads(data)
