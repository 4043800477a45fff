"""The OnlineStore port and the description of one view's online table.

Each online store keeps, next to its data, its own bookkeeping (SPEC §7, §9): a random
identity written on first use, and per (view, major) the watermark of materialization and
the newest event timestamp ever written. A new, replaced or emptied store therefore has no
watermark and `materialize-incremental` fills it from scratch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
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
    # The event time of a stored value older than the ttl (read as absent), else None: it tells
    # an expired value (Feast's OUTSIDE_MAX_AGE) from one never written (NOT_FOUND).
    expired_timestamps: list[datetime | None] = field(default_factory=list)


class OnlineStore(Protocol):
    """An online key/value store. Built only through `featurectl.online.create_online_store`,
    which calls `from_config` on the class `BACKENDS[config.type]` names (docs/architecture.md,
    "How to add a backend"); tests/integration/test_online_stores.py is the suite every
    backend passes. Keys and values use the shared encoding in `online/encoding.py`."""

    @classmethod
    def from_config(cls, config: Any, root: Path) -> "OnlineStore":
        """Open the store one `online_store:` block describes; relative paths resolve against
        `root`. Failures raise OnlineStoreError."""

    def write(self, table: OnlineTable, batch: "pa.RecordBatch") -> int:
        """Write one batch (join key columns, `event_timestamp`, feature columns). An entity's
        stored value is replaced only when the stored event time is not newer. Returns the
        number of entities whose value was written.

        The port hands over a whole batch, never one entity at a time, so that a backend can
        group the batch's keys as its server needs inside one call (a Redis Cluster backend by
        hash slot, one pipeline per node); the newer-wins rule holds per entity.

        Optionally a store splits it in two, `prepare_write(table, batch)` (no I/O; returns an
        object with `num_rows`) and `write_prepared(prepared)` (the I/O; returns what `write`
        does), and names its batch size `write_batch_rows`: materialize then prepares the next
        batch on its reading thread while the current one is written (the Redis store)."""

    def read(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]], features: Sequence[str],
             now: datetime) -> OnlineRows:
        """Values for the given join-key tuples; a value older than now - ttl reads as null."""

    def store_id(self) -> str:
        """This store's identity: a random id written into the store on first use."""

    def get_watermark(self, table: OnlineTable) -> datetime | None:
        """Up to when this store holds the view's major materialized; None: never (or emptied)."""

    def watermarks(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        """`get_watermark` of many tables in one round trip (freshness reads 1,000 views at once)."""

    def advance_watermark(self, table: OnlineTable, watermark: datetime) -> datetime:
        """Move the watermark to `watermark` unless it already is at or past it, in one atomic
        conditional update (concurrent runs never move it backwards); returns the result."""

    def newest_event_times(self, tables: Sequence[OnlineTable]) -> list[datetime | None]:
        """Per table, the newest event timestamp ever written to it (None: nothing written).
        Every `write` keeps it, whatever wrote (materialize, push)."""

    def delete_table(self, table: OnlineTable) -> None:
        """Remove one (project, view, major) namespace: its values and its bookkeeping."""

    def close(self) -> None: ...
