"""Feature logging (`serve --log-features DIR`): every served value, written as Parquet under
DIR/<view>/ by a background thread, never on the request path.

A request hands its result to a bounded queue (`put_nowait`); when the writer falls behind,
the request's rows are dropped and counted (featurectl_feature_log_dropped_rows_total)
instead of making serving wait or memory grow. The writer groups rows per view, appends a row
group per flush (every second, or sooner when MAX_PENDING_ROWS are waiting), and rolls to a
new file when the open one reaches `roll_bytes` on disk or `roll_seconds` of age, checked at
every flush tick, so an idle view's file is closed on time too. A file being written is named
`*.parquet.partial` and renamed when closed, so readers of DIR (`featurectl drift`) see only
whole files. Closing (SIGTERM) flushes what is queued and closes every file.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurectl.app.retrieval import OnlineResult
from featurectl.core.dtypes import element_type

_SCALARS = {"bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
            "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
            "timestamp": pa.timestamp("us", tz="UTC")}


def arrow_type(dtype: str) -> pa.DataType:
    elem = element_type(dtype)
    return pa.list_(_SCALARS[elem]) if elem else _SCALARS[dtype]


@dataclass(frozen=True)
class _Served:
    request_time: datetime
    request_id: str
    result: OnlineResult


class _ViewFile:
    """The open Parquet file of one view, with the schema it was opened with."""

    def __init__(self, directory: Path, view: str, schema: pa.Schema, sequence: int):
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.final = directory / f"{stamp}-{os.getpid()}-{sequence:06d}.parquet"
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.schema, self.opened = schema, time.monotonic()
        self.writer = pq.ParquetWriter(self.partial, schema)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def size(self) -> int:
        """Bytes on disk so far: every written row group is in the file."""
        try:
            return self.partial.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        self.writer.close()
        self.partial.replace(self.final)


ROLL_BYTES = 128 * 1024 * 1024  # a file per view closes at this size on disk ...
ROLL_SECONDS = 600.0  # ... or this age, whichever comes first
MAX_PENDING_ROWS = 200_000  # rows taken off the queue but not written yet: flush early beyond this


class FeatureLogger:
    def __init__(self, directory: Path, metrics: Any, *, queue_size: int = 10_000, flush_seconds: float = 1.0,
                 roll_bytes: int = ROLL_BYTES, roll_seconds: float = ROLL_SECONDS):
        self.directory = Path(directory)
        self.metrics = metrics
        self.flush_seconds, self.roll_bytes, self.roll_seconds = flush_seconds, roll_bytes, roll_seconds
        self._queue: queue.Queue[_Served | None] = queue.Queue(maxsize=queue_size)
        self._files: dict[str, _ViewFile] = {}
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="featurectl-feature-log", daemon=True)
        self._thread.start()

    def log(self, request_time: datetime, request_id: str, result: OnlineResult) -> None:
        """On the request path: one non-blocking put."""
        try:
            self._queue.put_nowait(_Served(request_time, request_id, result))
        except queue.Full:
            self.metrics.log_dropped.inc(len(next(iter(result.keys.values()), ())))  # entities served

    def close(self) -> None:
        """Write everything queued, close every file (SIGTERM path)."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        pending: list[_Served] = []
        rows = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pass
            else:
                if item is None:  # closing: write what is left, close every file
                    self._flush(pending)
                    for file in self._files.values():
                        file.close()
                    self._files.clear()
                    return
                pending.append(item)
                rows += _entities(item)
            if time.monotonic() >= deadline or rows >= MAX_PENDING_ROWS:
                self._flush(pending)
                self._roll_old()
                pending, rows = [], 0
                deadline = time.monotonic() + self.flush_seconds

    def _flush(self, pending: list[_Served]) -> None:
        try:
            for view, table in _tables(pending).items():
                self._append(view, table)
        except Exception as exc:  # a full disk must not stop the writer thread (or serving)
            self.metrics.log_dropped.inc(sum(_entities(s) for s in pending))
            print(f"featurectl serve: feature log write failed: {exc}", flush=True)

    def _append(self, view: str, table: pa.Table) -> None:
        file = self._files.get(view)
        if file is not None and (file.schema != table.schema or self._due(file)):
            file.close()
            file = None
        if file is None:
            self._sequence += 1
            file = self._files[view] = _ViewFile(self.directory / view, view, table.schema, self._sequence)
        file.write(table)
        self.metrics.log_written.inc(table.num_rows)

    def _due(self, file: "_ViewFile") -> bool:
        return file.size() >= self.roll_bytes or time.monotonic() - file.opened >= self.roll_seconds

    def _roll_old(self) -> None:
        """Close the files that are due, written to this tick or not."""
        for view, file in list(self._files.items()):
            if self._due(file):
                try:
                    file.close()
                except OSError as exc:
                    print(f"featurectl serve: closing feature log {file.partial} failed: {exc}", flush=True)
                del self._files[view]


def _entities(served: _Served) -> int:
    return len(next(iter(served.result.keys.values()), ()))


def _tables(pending: list[_Served]) -> dict[str, pa.Table]:
    """Per view, one table: request_time, request_id, its join keys, then each feature and
    its status, for every entity served. Requests naming different features of a view give
    different schemas; each schema is its own table (and file)."""
    groups: dict[tuple[str, tuple], dict[str, list[Any]]] = {}
    types: dict[tuple[str, tuple], dict[str, pa.DataType]] = {}
    for served in pending:
        result = served.result
        count = len(next(iter(result.keys.values()), ()))
        by_view: dict[str, list] = {}
        for column in result.features:
            by_view.setdefault(column.view, []).append(column)
        for view, columns in by_view.items():
            signature = tuple((c.feature, c.dtype) for c in columns)
            key = (view, signature)
            if key not in groups:
                groups[key] = {"request_time": [], "request_id": []}
                types[key] = {"request_time": pa.timestamp("us", tz="UTC"), "request_id": pa.string()}
            out, kinds = groups[key], types[key]
            out["request_time"] += [served.request_time] * count
            out["request_id"] += [served.request_id] * count
            for name, values in result.keys.items():
                out.setdefault(name, []).extend(values)
            for column in columns:
                out.setdefault(column.feature, []).extend(column.values)
                out.setdefault(f"{column.feature}__status", []).extend(column.statuses)
                kinds[column.feature] = arrow_type(column.dtype)
                kinds[f"{column.feature}__status"] = pa.string()
    tables: dict[str, pa.Table] = {}
    for (view, signature), data in groups.items():
        kinds = types[(view, signature)]
        table = pa.table({name: pa.array(values, type=kinds.get(name)) for name, values in data.items()})
        tables[view] = pa.concat_tables([tables[view], table], promote_options="permissive") if view in tables else table
    return tables
