"""Reading features: online values per entity, point-in-time correct training data."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

from featurectl.app.features import Selection, resolve
from featurectl.app.materialize import online_table, request_for
from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.online.base import OnlineStore

_KEY_PARSERS = {"int32": int, "int64": int, "string": str, "bytes": lambda v: v.encode() if isinstance(v, str) else v}


def _key_value(value: Any, dtype: str, column: str) -> Any:
    try:
        return _KEY_PARSERS[dtype](value)
    except (TypeError, ValueError):
        raise UsageError(f"entity key {column}={value!r} is not a valid {dtype}") from None


def online_features(project: str, defs: Definitions, store: OnlineStore, refs: list[str] | None,
                    entity_rows: Sequence[Mapping[str, Any]], now: datetime, *, service: str | None = None,
                    full_feature_names: bool = False) -> dict[str, list[Any]]:
    """Columns: every join key given in the entity rows, then one column per requested feature."""
    if not entity_rows:
        raise UsageError("no entity rows given", hint="pass at least one -e KEY=VALUE")
    key_columns = list(dict.fromkeys(k for row in entity_rows for k in row))
    selection = resolve(defs, refs, service, full_feature_names, reserved=tuple(key_columns))
    key_types = {defs.entities[e].join_key: defs.entities[e].dtype for v, _ in selection.views for e in v.entities}
    result: dict[str, list[Any]] = {
        k: [_key_value(row[k], key_types[k], k) if k in key_types and k in row else row.get(k) for row in entity_rows]
        for k in key_columns
    }
    values: dict[tuple[str, str], list[Any]] = {}
    for view, features in selection.views:
        if not view.online:
            raise UsageError(f"feature view '{view.name}' is not served online (online: false)",
                             hint="use get-historical, or set online: true, apply and materialize")
        table = online_table(project, defs, view)
        keys = [_entity_key(row, table.join_keys, view.name) for row in entity_rows]
        rows = store.read(table, keys, features, now)
        for feature in features:
            values[(view.name, feature)] = rows.values[feature]
    for view_name, feature, out in selection.output_names:
        result[out] = values[(view_name, feature)]
    return result


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
