"""Durations as written in definitions: 30s, 15m, 36h, 7d, 2w, or 0 (no expiry)."""
from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
# The longest duration accepted: 100 years. A window start of END - ttl must stay a datetime
# (year 1 at the earliest) and an expiry inside what the online stores keep (Redis: year 3554);
# `0` means "no expiry" for anything longer.
MAX_SECONDS = 36_500 * 86_400


def parse_duration(value: object) -> int:
    """Seconds in a duration, at most MAX_SECONDS; raise ValueError with the accepted forms."""
    seconds = _seconds(value)
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {value!r} is longer than the stores can hold (at most "
                         f"{format_duration(MAX_SECONDS)}, 100 years); use 0 for no expiry")
    return seconds


def _seconds(value: object) -> int:
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
