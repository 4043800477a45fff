"""The parts of the online encoding that need no data stack: namespace names and the epoch
microseconds bookkeeping is kept in. A store's bookkeeping reads (freshness over 1,000 views,
`catalog`) import only this, not pyarrow and DuckDB (a third of a second per process).
`online/encoding.py` re-exports them: it remains the one place that defines the encoding."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from featurectl.core.times import EPOCH, as_utc
from featurectl.online.base import OnlineTable

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def namespace(table: OnlineTable) -> str:
    """``fc:<project>:<view>:v<major>``: names are identifiers, so ':' cannot be ambiguous."""
    for what, name in (("project", table.project), ("view", table.view)):
        if not _NAME.match(name):
            raise ValueError(f"online {what} name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return f"fc:{table.project}:{table.view}:v{int(table.major)}"


def micros_to_datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def datetime_to_micros(value: datetime) -> int:
    """Timestamps without a zone are UTC (SPEC §5)."""
    delta = as_utc(value) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
