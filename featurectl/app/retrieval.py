"""Reading features: online values per entity, point-in-time correct training data."""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from featurectl.app.features import Selection, resolve
from featurectl.app.materialize import online_table, request_for
from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.core.model import FeatureView
from featurectl.online.base import OnlineStore, OnlineTable

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
        raise UsageError(f"entity key {column}={value!r} is not a valid {dtype}") from None


@dataclass(frozen=True)
class _OnlineRequest:
    """A feature list resolved against the applied definitions: what to read, from where."""

    selection: Selection
    key_types: dict[str, str]
    tables: tuple[tuple[OnlineTable, tuple[str, ...]], ...]
    dtypes: dict[str, str]  # output column -> dtype: join keys and requested features


@dataclass(frozen=True)
class OnlineResult:
    """Online values as columns in request order, with each column's dtype, so that a
    renderer or a server encodes a column at a time. A given entity-row column that is no
    join key has no dtype (None)."""

    columns: dict[str, list[Any]]
    dtypes: dict[str, str | None]


class OnlineReader:
    """Online reads against one set of applied definitions. Serving repeats the same few
    feature lists, so each resolved request is kept: a read then costs the store's lookup."""

    def __init__(self, project: str, defs: Definitions, store: OnlineStore):
        self.project, self.defs, self.store = project, defs, store
        self._requests: dict[tuple, _OnlineRequest] = {}

    def _request(self, refs: tuple[str, ...], service: str | None, full: bool,
                 key_columns: tuple[str, ...]) -> _OnlineRequest:
        cache_key = (refs, service, full, key_columns)
        request = self._requests.get(cache_key)
        if request is None:
            selection = resolve(self.defs, list(refs), service, full, reserved=key_columns)
            for view, _ in selection.views:
                if not view.online:
                    raise UsageError(f"feature view '{view.name}' is not served online (online: false)",
                                     hint="use get-historical, or set online: true, apply and materialize")
            entities = self.defs.entities
            key_types = {entities[e].join_key: entities[e].dtype for v, _ in selection.views for e in v.entities}
            views = {v.name: v for v, _ in selection.views}
            request = _OnlineRequest(
                selection=selection,
                key_types=key_types,
                tables=tuple((online_table(self.project, self.defs, v), fs) for v, fs in selection.views),
                dtypes={**key_types, **{out: _dtype(views[v], f) for v, f, out in selection.output_names}},
            )
            if len(self._requests) < 1024:  # bounded: callers building ad-hoc lists cannot grow it forever
                self._requests[cache_key] = request
        return request

    def read(self, refs: Sequence[str] | None, entity_rows: Sequence[Mapping[str, Any]], now: datetime, *,
             service: str | None = None, full_feature_names: bool = False) -> OnlineResult:
        """Columns: every join key given in the entity rows, then one column per requested feature."""
        if not entity_rows:
            raise UsageError("no entity rows given", hint="pass at least one -e KEY=VALUE")
        key_columns = tuple(dict.fromkeys(k for row in entity_rows for k in row))
        request = self._request(tuple(refs or ()), service, full_feature_names, key_columns)
        types = request.key_types
        result: dict[str, list[Any]] = {
            k: [_key_value(row[k], types[k], k) if k in types and k in row else row.get(k) for row in entity_rows]
            for k in key_columns
        }
        values: dict[tuple[str, str], list[Any]] = {}
        for table, features in request.tables:
            keys = [_entity_key(row, table.join_keys, table.view) for row in entity_rows]
            rows = self.store.read(table, keys, features, now)
            for feature in features:
                values[(table.view, feature)] = rows.values[feature]
        for view_name, feature, out in request.selection.output_names:
            result[out] = values[(view_name, feature)]
        return OnlineResult(result, {name: request.dtypes.get(name) for name in result})


def _dtype(view: FeatureView, name: str) -> str:
    feature = view.feature(name)
    assert feature is not None, f"{view.name}:{name} was resolved, so it exists"
    return feature.dtype


def _entity_key(row: Mapping[str, Any], join_keys, view: str) -> tuple[Any, ...]:
    missing = [k for k, _ in join_keys if k not in row]
    if missing:
        raise UsageError(f"feature view '{view}' needs join key(s) {', '.join(missing)} in every entity row",
                         hint=f"pass -e {missing[0]}=VALUE")
    return tuple(_key_value(row[k], dtype, k) for k, dtype in join_keys)


def historical_requests(defs: Definitions, refs: list[str] | None, service: str | None,
                        full_feature_names: bool, input_columns: tuple[str, ...]):
    selection: Selection = resolve(defs, refs, service, full_feature_names, reserved=input_columns)
    return [request_for(defs, view, features) for view, features in selection.views]
