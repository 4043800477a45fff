"""Durations as written in definitions: 30s, 15m, 36h, 7d, 2w, or 0 (no expiry)."""
from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(value: object) -> int:
    """Seconds in a duration; raise ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("a duration is like 30s, 15m, 36h, 7d, 2w or 0")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds < 0 or seconds != int(seconds):
            raise ValueError("a duration must be a whole, non-negative number of seconds")
        return int(seconds)
    if isinstance(value, int):
        if value != 0:
            raise ValueError(f"a bare number is ambiguous ({value}); add a unit, e.g. {value}s or {value}d")
        return 0
    if isinstance(value, str):
        if value.strip() == "0":
            return 0
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * UNITS[match.group(2)]
    raise ValueError(f"invalid duration {value!r}; write it like 30s, 15m, 36h, 7d, 2w or 0")


def format_duration(seconds: int) -> str:
    """The shortest canonical spelling: the largest unit that divides evenly."""
    if seconds == 0:
        return "0"
    for unit, size in UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: 's' divides every integer")
