"""Reading features: online values per entity, point-in-time correct training data."""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from featurectl.app.features import Majors, Selection, online_table, resolve, view_label
from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.online.base import OnlineRows, OnlineStore, OnlineTable

_INT_RANGES = {"int32": 2**31, "int64": 2**63}
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def _int_key(value: Any, dtype: str) -> int:
    """Integer keys from ints (NumPy's too), whole floats (pandas makes ids with gaps float) or
    decimal text. int() alone would truncate 3.5 to entity 3, read True as 1 and accept '1_001',
    so another entity's values would come back."""
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value.strip()):
            raise ValueError(value)
        number = int(value)
    elif isinstance(value, bool):
        raise TypeError(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        number = int(value)
    else:
        number = operator.index(value)
    if not -_INT_RANGES[dtype] <= number < _INT_RANGES[dtype]:
        raise ValueError(value)
    return number


def _bytes_key(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(value)


_KEY_PARSERS: dict[str, Callable[[Any], Any]] = {"int32": lambda v: _int_key(v, "int32"), "int64": lambda v: _int_key(v, "int64"),
                "string": str, "bytes": _bytes_key}


def _key_value(value: Any, dtype: str, column: str) -> Any:
    try:
        if value is None:  # str(None) would look up the entity 'None'
            raise TypeError(value)
        return _KEY_PARSERS[dtype](value)
    except (TypeError, ValueError):
        raise UsageError(f"entity key {column}={value!r} is not a valid {dtype}", code="BAD_KEY_TYPE") from None


# Statuses of one served value, as Feast's feature server names them.
PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"
_MISSING = object()  # a key an entity row does not give


@dataclass(slots=True)  # not frozen: built once per feature per served request, and a frozen
class FeatureColumn:  # dataclass's __init__ costs 4x more (object.__setattr__ per field)
    """One requested feature: per entity its value, status and event time (None: none)."""

    name: str  # the output name: `feature` or `view__feature`
    view: str
    feature: str
    dtype: str
    values: list[Any]
    statuses: list[str]
    event_timestamps: list[datetime | None]


@dataclass(frozen=True)
class OnlineResult:
    """An online read: the entities' key columns as given (typed), then each feature."""

    keys: dict[str, list[Any]]
    features: list[FeatureColumn]
    key_dtypes: dict[str, str | None]  # a given column that is no join key has none
    # The reader's resolved request this came from, the same object for every read of the same
    # feature list, keys and definitions: the feature log keys its request shapes on it.
    plan: object | None = field(default=None, compare=False, repr=False)

    @property
    def columns(self) -> dict[str, list[Any]]:
        """Every column in request order, so a renderer encodes a column at a time."""
        return {**self.keys, **{f.name: f.values for f in self.features}}

    @property
    def dtypes(self) -> dict[str, str | None]:
        return {**self.key_dtypes, **{f.name: f.dtype for f in self.features}}


@dataclass(frozen=True)
class _OnlineRequest:
    """A feature list resolved against the applied definitions: what to read, from where."""

    selection: Selection
    key_types: dict[str, str]
    tables: tuple[tuple[str, OnlineTable, tuple[str, ...]], ...]  # (view label, table, features)
    dtypes: dict[tuple[str, str], str]  # (view label, feature) -> dtype


class OnlineReader:
    """Online reads against one set of applied definitions. Serving repeats the same few
    feature lists, so each resolved request is kept: a read then costs the store's lookup."""

    def __init__(self, project: str, defs: Definitions, store: OnlineStore, revision: int | None = None,
                 majors: Majors | None = None):
        self.project, self.defs, self.store, self.revision = project, defs, store, revision
        self.majors = majors  # older majors' definitions, for `view@N:` references
        self._requests: dict[tuple, _OnlineRequest] = {}

    def _request(self, refs: tuple[str, ...], service: str | None, full: bool,
                 key_columns: tuple[str, ...]) -> _OnlineRequest:
        cache_key = (refs, service, full, key_columns)
        request = self._requests.get(cache_key)
        if request is None:
            selection = resolve(self.defs, list(refs), service, full, reserved=key_columns, majors=self.majors)
            for view, _ in selection.views:
                if not view.online:
                    raise UsageError(f"feature view '{view.name}' is not served online (online: false)",
                                     hint="use get-historical, or set online: true, apply and materialize",
                                     code="UNKNOWN_VIEW")
            entities = self.defs.entities
            request = _OnlineRequest(
                selection=selection,
                key_types={entities[e].join_key: entities[e].dtype for v, _ in selection.views for e in v.entities},
                tables=tuple((view_label(v, self.defs), online_table(self.project, self.defs, v), fs)
                             for v, fs in selection.views),
                dtypes={(view_label(v, self.defs), f.name): f.dtype for v, _ in selection.views for f in v.features},
            )
            if len(self._requests) < 1024:  # bounded: callers building ad-hoc lists cannot grow it forever
                self._requests[cache_key] = request
        return request

    def read(self, refs: Sequence[str] | None, entity_rows: Sequence[Mapping[str, Any]], now: datetime, *,
             service: str | None = None, full_feature_names: bool = False) -> OnlineResult:
        """Columns: every join key given in the entity rows, then one column per requested feature."""
        key_columns = dict.fromkeys(k for row in entity_rows for k in row)
        entities = {k: [row.get(k, _MISSING) for row in entity_rows] for k in key_columns}
        return self.read_columns(refs, entities, now, service=service, full_feature_names=full_feature_names)

    def read_columns(self, refs: Sequence[str] | None, entities: Mapping[str, Sequence[Any]], now: datetime, *,
                     service: str | None = None, full_feature_names: bool = False) -> OnlineResult:
        """The entities as columns (join key -> one value per entity), as Feast's server takes them."""
        planned = self._plan(refs, entities, service, full_feature_names)
        return planned.result([self.store.read(table, keys, features, now) for table, keys, features in planned.reads])

    async def read_columns_async(self, refs: Sequence[str] | None, entities: Mapping[str, Sequence[Any]],
                                 now: datetime, *, service: str | None = None,
                                 full_feature_names: bool = False) -> OnlineResult:
        """`read_columns` for a server's event loop, the same plan and result: a store that batches
        the reads of concurrent requests (`read_batched`: Redis sends them in one round trip)
        has them awaited; another store is read as `read_columns` reads it."""
        planned = self._plan(refs, entities, service, full_feature_names)
        batched = getattr(self.store, "read_batched", None)
        if batched is None:
            rows = [self.store.read(table, keys, features, now) for table, keys, features in planned.reads]
        else:
            rows = await batched(planned.reads, now)
        return planned.result(rows)

    def _plan(self, refs: Sequence[str] | None, entities: Mapping[str, Sequence[Any]], service: str | None,
              full_feature_names: bool) -> "_Planned":
        count = _entity_count(entities)
        request = self._request(tuple(refs or ()), service, full_feature_names, tuple(entities))
        keys = {k: _key_column(k, values, request.key_types.get(k)) for k, values in entities.items()}
        reads = [(table, _entity_keys(keys, table.join_keys, label, count), features)
                 for label, table, features in request.tables]
        return _Planned(request, keys, reads)


@dataclass(slots=True)
class _Planned:
    """One online read resolved: the store reads it needs (table, key tuples, features), one per
    view, and how their rows become the result."""

    request: _OnlineRequest
    keys: dict[str, list[Any]]
    reads: list[tuple[OnlineTable, list[tuple[Any, ...]], tuple[str, ...]]]

    def result(self, read: Sequence[OnlineRows]) -> OnlineResult:
        request = self.request
        views: dict[str, tuple[Any, list[str], list[datetime | None]]] = {}
        for (label, _, _), rows in zip(request.tables, read):
            views[label] = (rows, *_view_statuses(rows))
        columns = []
        for view_name, feature, out in request.selection.output_names:
            rows, found, times = views[view_name]
            values = rows.values[feature]
            # Without a null value a feature's statuses are its view's (shared: nothing mutates them).
            statuses = found if None not in values else [
                (NULL_VALUE if v is None else PRESENT) if f is PRESENT else f for v, f in zip(values, found)]
            columns.append(FeatureColumn(out, view_name, feature, request.dtypes[(view_name, feature)],
                                         values, statuses, times))
        keys = self.keys
        return OnlineResult(keys, columns, {k: request.key_types.get(k) for k in keys}, request)


def _entity_count(entities: Mapping[str, Sequence[Any]]) -> int:
    lengths = {len(values) for values in entities.values()}
    if not entities or lengths == {0}:
        raise UsageError("no entity rows given", hint="pass at least one -e KEY=VALUE")
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in entities.items())
        raise UsageError(f"entity key columns differ in length ({sizes})",
                         hint="give one value per entity in every key column")
    return lengths.pop()


def _key_column(name: str, values: Sequence[Any], dtype: str | None) -> list[Any]:
    if dtype is None:  # not a join key of a requested view: echoed as given
        return [None if v is _MISSING else v for v in values]
    if any(v is _MISSING for v in values):
        raise _missing_key([name], "every entity row")
    return [_key_value(v, dtype, name) for v in values]


def _entity_keys(keys: Mapping[str, list[Any]], join_keys, view: str, count: int) -> list[tuple[Any, ...]]:
    missing = [k for k, _ in join_keys if k not in keys]
    if missing:
        raise _missing_key(missing, f"feature view '{view}'")
    if len(join_keys) == 1:
        return [(v,) for v in keys[join_keys[0][0]]]
    return list(zip(*(keys[k] for k, _ in join_keys)))


def _missing_key(missing: list[str], where: str) -> UsageError:
    return UsageError(f"{where} needs join key(s) {', '.join(missing)} in every entity row",
                      hint=f"pass -e {missing[0]}=VALUE (HTTP: an entities column {missing[0]!r})",
                      code="MISSING_JOIN_KEY")


def _view_statuses(rows) -> tuple[list[str], list[datetime | None]]:
    """Per entity of one view: PRESENT (a value; NULL_VALUE is decided per feature), NOT_FOUND or
    OUTSIDE_MAX_AGE, and the event time to report (an expired value's own time)."""
    expired = rows.expired_timestamps or [None] * len(rows.event_timestamps)
    found, times = [], []
    for at, old in zip(rows.event_timestamps, expired):
        if at is not None:
            found.append(PRESENT)
            times.append(at)
        else:
            found.append(NOT_FOUND if old is None else OUTSIDE_MAX_AGE)
            times.append(old)
    return found, times


def build_reader(project: str, registry, online: OnlineStore, current: OnlineReader | None = None) -> OnlineReader:
    """A reader of the registry's applied definitions (and older majors) as they are now;
    `current` is kept, with its resolved requests, when the revision has not moved."""
    from featurectl.app.features import applied_majors, current_definitions

    revision, defs = current_definitions(registry)
    if current is not None and current.revision == revision:
        return current
    return OnlineReader(project, defs, online, revision, applied_majors(registry, defs))


def historical_requests(defs: Definitions, refs: list[str] | None, service: str | None,
                        full_feature_names: bool, input_columns: tuple[str, ...]):
    # The offline side only: an online read does not import materialization (nor offline.base).
    from featurectl.app.materialize import request_for

    selection: Selection = resolve(defs, refs, service, full_feature_names, reserved=input_columns)
    return [request_for(defs, view, features) for view, features in selection.views]

