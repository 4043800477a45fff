"""Push: rows posted by a streaming job or a cron (`POST /push`, `/write-to-online-store`),
written through the materialization path itself: the same dtype, nullability and constraint
checks (all or nothing), the same latest-row rule within the rows (event time, then created
time) and the same newer-wins write. Only the watermark stays: it tracks the offline source."""
from __future__ import annotations

import array
import itertools
import json
from datetime import datetime, timezone
from typing import Any, Mapping

import pyarrow as pa

from featurectl.app.materialize import Materializer, PushedRows, ViewRun
from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.core.model import FeatureView
from featurectl.offline.base import OfflineStore, rows_source
from featurectl.online.base import OnlineStore

# A push has no window: every row counts.
ALL_TIME = (datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc))
DEFAULT_TIMESTAMP, DEFAULT_CREATED = "event_timestamp", "created"


def push(project: str, defs: Definitions, offline: OfflineStore, online: OnlineStore, view_name: str,
         columns: Mapping[str, list[Any]]) -> ViewRun:
    """Validate and write the rows of one view; a run with status `invalid` wrote nothing."""
    view, pushed = _pushed_rows(defs, view_name, columns)
    if pushed is None:
        return ViewRun(view.name, view.major, *ALL_TIME)
    materializer = Materializer(project, defs, offline, online, pushed=pushed)
    return materializer.run([view], {view.name: ALL_TIME})[0]


def _pushed_rows(defs: Definitions, view_name: str, columns: Mapping[str, list[Any]]) -> tuple[FeatureView, PushedRows | None]:
    """The view and its rows as Arrow, read as the view's source (None: no rows)."""
    view = defs.feature_views.get(view_name)
    if view is None:
        raise UsageError(f"unknown feature view '{view_name}'",
                         hint=f"applied views: {', '.join(sorted(defs.feature_views)) or '(none)'}",
                         code="UNKNOWN_VIEW")
    if not view.online:
        raise UsageError(f"feature view '{view_name}' is not served online (online: false)",
                         hint="set online: true and apply before pushing to it", code="UNKNOWN_VIEW")
    source = defs.sources[view.source]
    timestamp = _present(columns, source.timestamp_field, DEFAULT_TIMESTAMP) or DEFAULT_TIMESTAMP
    created = _present(columns, source.created_timestamp_field, DEFAULT_CREATED)
    needed = [defs.entities[e].join_key for e in view.entities] + [f.name for f in view.features]
    missing = [c for c in needed + [timestamp] if c not in columns]
    if missing:
        raise UsageError(f"the rows for feature view '{view_name}' have no column(s) {', '.join(missing)}",
                         hint=f"give every join key, '{source.timestamp_field}' or '{DEFAULT_TIMESTAMP}' "
                              "(ISO 8601) and every feature of the view", code="BAD_REQUEST")
    kept = needed + [timestamp] + ([created] if created else [])
    lengths = {name: len(columns[name]) if isinstance(columns[name], list) else -1 for name in kept}
    if len(set(lengths.values())) > 1:
        raise UsageError("the row columns differ in length (" + ", ".join(f"{k}: {n}" for k, n in lengths.items()) + ")",
                         hint="give one value per row in every column", code="BAD_REQUEST")
    table = pa.table({name: _arrow(columns[name], name) for name in kept})
    if table.num_rows == 0:
        return view, None
    return view, PushedRows(table, rows_source(source.name, timestamp, created))


def _present(columns: Mapping[str, Any], declared: str | None, default: str) -> str | None:
    for name in (declared, default):
        if name and name in columns:
            return name
    return None


def _arrow(values: Any, name: str) -> pa.Array:
    """A column as Arrow. Values Arrow cannot type together (1 and "x", an int beyond int64)
    go as text, so the checks name them ("not a valid int64") instead of refusing the body."""
    if not isinstance(values, list):
        raise UsageError(f"column '{name}' must be a list, one value per row", code="BAD_REQUEST")
    plain = _plain_array(values)
    if plain is not None:
        return plain
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                        pa.string())


def _plain_array(values: list) -> pa.Array | None:
    """The column as `pa.array` types it, built from buffers when every value is an int, every
    one a float or every one a str (what a JSON body mostly holds); None for anything else.
    On a Python list pyarrow's array() imports pandas, when installed, on its first call: 0.4 s
    of a server worker's first push."""
    kinds = set(map(type, values))
    if not kinds or len(kinds) > 1:
        return None
    (kind,) = kinds
    if kind is str:
        try:
            encoded = list(map(str.encode, values))
        except UnicodeEncodeError:  # a lone surrogate: pa.array's own path says what it does
            return None
        data = b"".join(encoded)
        if len(data) >= 2**31:  # beyond string's int32 offsets
            return None
        offsets = array.array("i", [0])
        offsets.extend(itertools.accumulate(map(len, encoded)))
        return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if kind is int or kind is float:
        try:
            packed = array.array("q" if kind is int else "d", values)
        except OverflowError:  # an int beyond int64: pa.array's own path, then text
            return None
        return pa.Array.from_buffers(pa.int64() if kind is int else pa.float64(), len(values),
                                     [None, pa.py_buffer(packed)])
    return None
