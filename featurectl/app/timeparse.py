"""Timestamps from the command line and the SDK: ISO 8601, no zone means UTC, or `now`."""
from __future__ import annotations

from datetime import date, datetime

from featurectl.core.errors import UsageError
from featurectl.core.times import as_utc


def to_utc(value: datetime | date | str, now: datetime) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return now
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"invalid timestamp {text!r}",
                             hint="use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00+00:00, or `now`") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return as_utc(value)
