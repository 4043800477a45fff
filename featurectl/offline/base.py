"""The OfflineStore port: point-in-time joins and the rows to materialize."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from featurectl.core.errors import UsageError
from featurectl.core.model import Entity, Feature, FeatureView, QuerySource, Source

if TYPE_CHECKING:
    import pyarrow as pa

    from featurectl.offline.entity_rows import EntityFiles


class OfflineStoreError(Exception):
    """The offline engine or a source failed at run time (exit code 3)."""


class SourceDataError(OfflineStoreError):
    """A source's data cannot be read as its definition says (no file, a missing column, an
    unreadable file): bad input (exit code 2), found before anything was written."""


class EntityRowsError(UsageError):
    """Entity rows whose keys or timestamps do not parse (exit code 2); the caller names the file."""


class InvalidSourceData(OfflineStoreError):
    """A source value does not fit its feature's declared dtype (exit code 1, like a
    materialization refused by its view's rules); nothing was written."""


@dataclass(frozen=True)
class ViewRequest:
    """One view's part of a retrieval: the view, its source, its entities, chosen features."""

    view: FeatureView
    source: Source
    entities: tuple[Entity, ...]
    features: tuple[str, ...]

    def feature(self, name: str) -> Feature:
        """The declaration of a requested feature (a request names only its view's features)."""
        found = self.view.feature(name)
        if found is None:
            raise KeyError(f"feature view '{self.view.name}' has no feature '{name}'")
        return found


@dataclass(frozen=True)
class ValidationReport:
    """Rows in a materialization window that break the view's declared schema."""

    view: str
    rows_checked: int
    violations: dict[str, int] = field(default_factory=dict)  # "feature: reason" -> count
    samples: list[dict[str, Any]] = field(default_factory=list)
    # What `latest_rows` would return for the same window, when the engine selected it while
    # checking (pushed rows: one connection and no second scan); None: ask `latest_rows`.
    latest: "pa.Table | None" = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.violations


def require_columns(request: ViewRequest, present: list[str], described: str) -> None:
    """SourceDataError (exit 2) naming the first column the view needs that its source lacks:
    the timestamp fields, every join key and every requested feature."""
    source = request.source
    needed = [(source.timestamp_field, "its timestamp_field")]
    if source.created_timestamp_field:
        needed.append((source.created_timestamp_field, "its created_timestamp_field"))
    needed += [(e.join_key, f"the join key of entity '{e.name}'") for e in request.entities]
    needed += [(f, "a feature of the view") for f in request.features]
    for column, role in needed:
        if column not in present:
            raise SourceDataError(
                f"{described} has no column '{column}' ({role}); columns present: "
                f"{', '.join(present) or 'none'}. Add the column to the data, or change the "
                f"definition to name an existing column")


PUSHED_ROWS = "__pushed_rows"


def rows_source(name: str, timestamp_field: str, created_timestamp_field: str | None) -> QuerySource:
    """The source of a push: the rows handed to `validate_window`/`latest_rows` (`rows=`), read
    under the name PUSHED_ROWS by the same SQL as a materialization's source, so one set of
    checks and one latest-row rule serve both."""
    return QuerySource(name=name, query=f"SELECT * FROM {PUSHED_ROWS}", timestamp_field=timestamp_field,
                       created_timestamp_field=created_timestamp_field)


class OfflineStore(Protocol):
    def check_sources(self, defs: Any, origins: dict | None = None) -> None:
        """Raise DefinitionError (exit 2) for sources this engine refuses to run (`validate`, `apply`)."""

    """An offline engine. Built only through `featurectl.offline.create_offline_store`, which
    calls `from_config` on the class `BACKENDS[config.type]` names (docs/architecture.md, "How
    to add a backend"); tests/integration/test_offline_pit.py and test_offline_materialize.py
    are the suite every engine passes."""

    @classmethod
    def from_config(cls, config: Any, root: Path) -> "OfflineStore":
        """The engine one `offline_store:` block describes; file sources resolve against `root`."""

    def get_historical_features(self, entity_rows: "pa.Table | EntityFiles", requests: list[ViewRequest], *,
                                timestamp_column: str = "event_timestamp",
                                full_feature_names: bool = False) -> "pa.RecordBatchReader":
        """Every entity row, in order, with its own columns untouched and the requested features
        point in time (SPEC §5). The rows come as a table, or as files the engine reads itself
        (`entity_rows.EntityFiles`: the Spark engine's driver never holds them)."""

    def validate_window(self, request: ViewRequest, start: datetime, end: datetime,
                        rows: "pa.Table | None" = None) -> ValidationReport:
        """Rows of the window that break the view's dtypes, nullability or constraints. With
        `rows` (a push), those rows are the source instead of the view's own."""

    def latest_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000, rows: "pa.Table | None" = None) -> "pa.RecordBatchReader":
        """Per entity, the latest row with event time in [start, end) (created time breaks ties):
        join key columns, `event_timestamp` (timestamp[us, UTC]), then the requested features
        cast to their declared dtypes. `rows` as in `validate_window`."""

    def source_rows(self, request: ViewRequest, start: datetime, end: datetime,
                    batch_size: int = 100_000) -> "pa.RecordBatchReader":
        """Every row of the view's source with event time in [start, end) (no latest-per-entity
        selection: what drift compares): `event_timestamp`, then the requested features cast
        to their declared dtypes."""

    def newest_event_time(self, request: ViewRequest) -> datetime | None:
        """The newest event timestamp in the view's source (None: the source has no rows);
        `freshness --check-source` compares it with what the online store serves."""

    def close(self) -> None:
        """Release what the engine holds (connections, sessions); readers already returned stay valid."""
