"""The OnlineStore port and the description of one view's online table."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    import pyarrow as pa


class OnlineStoreError(Exception):
    """The online store is unreachable or failing (exit code 3)."""


@dataclass(frozen=True)
class OnlineTable:
    """Where one feature view's values live: namespaced by project, view and major version."""

    project: str
    view: str
    major: int
    join_keys: tuple[tuple[str, str], ...]  # (column, dtype) in the view's entity order
    features: tuple[tuple[str, str], ...]  # (name, dtype) in declared order
    ttl_seconds: int  # 0: no expiry


@dataclass(frozen=True)
class OnlineRows:
    """Per requested entity, in request order: its event time (None: no value) and values."""

    event_timestamps: list[datetime | None]
    values: dict[str, list[Any]]  # feature name -> one value per requested entity


class OnlineStore(Protocol):
    def write(self, table: OnlineTable, batch: "pa.RecordBatch") -> int:
        """Write one batch (join key columns, `event_timestamp`, feature columns). An entity's
        stored value is replaced only when the stored event time is not newer. Returns the
        number of entities whose value was written."""

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        """Values for the given join-key tuples; a value older than now - ttl reads as null."""

    def close(self) -> None: ...
