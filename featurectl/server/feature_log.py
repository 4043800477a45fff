"""Feature logging (`serve --log-features DIR`): every served value, written as Parquet under
DIR/<view>/ by a background thread, never on the request path.

A request's values are appended to plain column lists kept per request shape (key columns
and features), at most `queue_size` requests between two flushes; beyond that the request's
rows are dropped and counted (featurectl_feature_log_dropped_rows_total) instead of making
serving wait or memory grow. The writer is not woken per request: it takes the columns at
each one-second tick (or sooner, woken once, when MAX_PENDING_ROWS are waiting). Two
measured reasons for this shape (docs/benchmarks.md): a `queue.Queue` woke the writer thread
at every put, which then contended with the event loop for the GIL; and holding each
request's result objects for a second made Python's full garbage collections walk hundreds
of thousands of objects (80 ms each), where a few long lists of values cost nothing to walk.
The writer builds a table per view, appends a row group per flush, and rolls to a
new file when the open one reaches `roll_bytes` on disk or `roll_seconds` of age, checked at
every flush tick, so an idle view's file is closed on time too. A file being written is named
`*.parquet.partial` and renamed when closed, so readers of DIR (`featurectl drift`) see only
whole files. Closing (SIGTERM) flushes what is queued and closes every file.
"""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from itertools import chain, repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurectl.app.retrieval import OnlineResult
from featurectl.core.dtypes import element_type
from featurectl.core.times import EPOCH, as_utc

_SCALARS = {"bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
            "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
            "timestamp": pa.timestamp("us", tz="UTC")}


def arrow_type(dtype: str) -> pa.DataType:
    elem = element_type(dtype)
    return pa.list_(_SCALARS[elem]) if elem else _SCALARS[dtype]


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
        self.queue_size = queue_size
        # Guards the pending columns and their counts: held for an append or a swap, never
        # across a write, so a request waits at most for a swap.
        self._lock = threading.Lock()
        self._pending: dict[tuple, _Columns] = {}
        self._requests = self._rows = 0
        self._wake = threading.Event()  # early flush (MAX_PENDING_ROWS waiting) or close
        self._closing = False
        self._files: dict[str, _ViewFile] = {}
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="featurectl-feature-log", daemon=True)
        self._thread.start()

    def log(self, request_time: datetime, request_id: str, result: OnlineResult) -> None:
        """On the request path: the values appended to their columns under an uncontended lock;
        no thread is woken unless enough rows wait for an early flush."""
        count = len(next(iter(result.keys.values()), ()))
        shape = (tuple(result.keys), tuple(map(_SHAPE, result.features)))  # map: no generator per request
        with self._lock:
            full = self._requests >= self.queue_size
            if not full:
                columns = self._pending.get(shape)
                if columns is None:
                    columns = self._pending[shape] = _Columns(*shape)
                columns.add(request_time, request_id, count, result)
                self._requests += 1
                self._rows += count
                early = self._rows >= MAX_PENDING_ROWS
        if full:
            self.metrics.log_dropped.inc(count)
        elif early:
            self._wake.set()

    def close(self) -> None:
        """Write everything handed over, close every file (SIGTERM path)."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=60)

    def _take(self) -> list[_Columns]:
        with self._lock:
            pending, self._pending, self._requests, self._rows = self._pending, {}, 0, 0
        return list(pending.values())

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            closing = self._closing  # read before the last take: nothing handed over after is lost
            self._flush(self._take())
            if closing:
                for file in self._files.values():
                    file.close()
                self._files.clear()
                return
            self._roll_old()

    def _flush(self, pending: list[_Columns]) -> None:
        if not pending:
            return
        try:
            for view, table in _tables(pending).items():
                self._append(view, table)
        except Exception as exc:  # a full disk must not stop the writer thread (or serving)
            self.metrics.log_dropped.inc(sum(c.rows for c in pending))
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


_SHAPE = attrgetter("view", "feature", "dtype")
_MICROSECOND = timedelta(microseconds=1)


class _Columns:
    """The served rows of one request shape (key columns; (view, feature, dtype) per feature)
    waiting to be written, as one list per column."""

    def __init__(self, key_names: tuple[str, ...], features: tuple[tuple[str, str, str], ...]):
        self.key_names, self.features = key_names, features
        self.times: list[datetime] = []  # per request, with its id and entity count
        self.ids: list[str] = []
        self.counts: list[int] = []
        self.keys: list[list[Any]] = [[] for _ in key_names]
        self.values: list[list[Any]] = [[] for _ in features]
        self.statuses: list[list[str]] = [[] for _ in features]
        self.rows = 0

    def add(self, request_time: datetime, request_id: str, count: int, result: OnlineResult) -> None:
        self.times.append(request_time)
        self.ids.append(request_id)
        self.counts.append(count)
        for column, values in zip(self.keys, result.keys.values()):
            column.extend(values)
        for values, statuses, feature in zip(self.values, self.statuses, result.features):
            values.extend(feature.values)
            statuses.extend(feature.statuses)
        self.rows += count

    def view_table(self, view: str) -> pa.Table:
        """request_time, request_id, the key columns, then each of the view's features and
        its status."""
        micros = ((as_utc(t) - EPOCH) // _MICROSECOND for t in self.times)
        columns: dict[str, pa.Array] = {
            # int64 micros cast to the timestamp type: converting datetime objects one by one
            # was the slowest column.
            "request_time": pa.array(_repeated(micros, self.counts), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "request_id": pa.array(_repeated(self.ids, self.counts), pa.string()),
        }
        for name, values in zip(self.key_names, self.keys):
            columns[name] = pa.array(values)
        for (of, feature, dtype), values, statuses in zip(self.features, self.values, self.statuses):
            if of == view:
                columns[feature] = pa.array(values, arrow_type(dtype))
                columns[f"{feature}__status"] = pa.array(statuses, pa.string())
        return pa.table(columns)


def _repeated(items, counts: list[int]) -> list[Any]:
    """Each item `count` times: a request's time and id on every entity row it served."""
    return list(chain.from_iterable(map(repeat, items, counts)))


def _tables(pending: list[_Columns]) -> dict[str, pa.Table]:
    """Per view, one table of every pending row. Requests naming different features of a view
    (or giving different key columns) have different schemas: tables of one view are
    concatenated with the schemas merged, and a new schema rolls the view's file (`_append`)."""
    tables: dict[str, pa.Table] = {}
    for columns in pending:
        for view in dict.fromkeys(v for v, _, _ in columns.features):
            table = columns.view_table(view)
            tables[view] = (pa.concat_tables([tables[view], table], promote_options="permissive")
                            if view in tables else table)
    return tables
