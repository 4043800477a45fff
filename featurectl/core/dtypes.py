"""Feature value types and the compatibility facts about them (data, not code)."""
from __future__ import annotations

import math
import re
import struct

SCALARS = ("bool", "int32", "int64", "float32", "float64", "string", "bytes", "timestamp")
ENTITY_KEY_TYPES = ("int32", "int64", "string", "bytes")
NUMERIC = ("int32", "int64", "float32", "float64")

# old -> new pairs a reader of the old type can keep reading without loss.
WIDENINGS = frozenset(
    {("int32", "int64"), ("int32", "float64"), ("int64", "float64"), ("float32", "float64")}
)

_LIST = re.compile(r"^list\s*<\s*([a-z0-9]+)\s*>$")


def parse_dtype(text: str) -> str:
    """Return the canonical spelling of a dtype, or raise ValueError saying what is allowed."""
    if not isinstance(text, str):
        raise ValueError(f"a dtype is a string, got {type(text).__name__}")
    value = text.strip().lower()
    if value in SCALARS:
        return value
    match = _LIST.match(value)
    if match and match.group(1) in SCALARS:
        return f"list<{match.group(1)}>"
    raise ValueError(
        f"unknown dtype {text!r}; use one of {', '.join(SCALARS)} or list<T> of those"
    )


def element_type(dtype: str) -> str | None:
    """The element type of a list dtype, or None for a scalar."""
    match = _LIST.match(dtype)
    return match.group(1) if match else None


def is_widening(old: str, new: str) -> bool:
    old_elem, new_elem = element_type(old), element_type(new)
    if old_elem is not None and new_elem is not None:
        return (old_elem, new_elem) in WIDENINGS
    if old_elem is not None or new_elem is not None:  # a list and a scalar
        return False
    return (old, new) in WIDENINGS


_F32 = struct.Struct("<f")


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32, so 0.42 reads back as 0.42 and not as
    its double expansion 0.41999998688697815. NaN, ±inf and values beyond float32's range
    (e.g. stored before a dtype change) come back unchanged."""
    x = float(value)
    if x != x or x in (math.inf, -math.inf):
        return x
    try:
        target = _F32.pack(x)
    except OverflowError:
        return x
    for digits in range(6, 10):
        candidate = float(f"{x:.{digits}g}")
        if _F32.pack(candidate) == target:
            return candidate
    return x
