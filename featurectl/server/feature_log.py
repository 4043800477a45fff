"""Feature logging's Parquet side (`serve --log-features DIR`), run by the log-writer process
alone (server/log_writer.py): serving workers never import this module, nor pyarrow.

Workers hand the answered requests over in batches, one per request shape and flush
(server/log_channel.py): per key and feature column the values of every request as the
responses encoded them (int64 and float64 columns as raw 8-byte values when they hold no null),
each feature's statuses (one string when the batch has one), request ids, times and entity
counts; once per request shape the key columns and (view,
feature, dtype) of every feature. `PendingRows` keeps the batches per shape, parses them a
chunk at a time (one orjson call per batch, no Python per request or row) and builds one Arrow
table per view: `request_time`, `request_id`, the key columns, each
feature and its `<feature>__status`, as the in-worker writer did. The response's JSON encoding
is undone by dtype (render/values.py): "NaN"/"Infinity" strings back to floats, base64 back to
bytes, ISO times back to timestamps; float32 values are their shortest decimals, which read
back as the same float32.

`ParquetLog` appends a row group per view and flush, and rolls to a new file when the open one
reaches `roll_bytes` on disk or `roll_seconds` of age (checked at every tick, so an idle view's
file is closed on time too). A file being written is named `*.parquet.partial` and renamed
when closed, so readers of DIR (`featurectl drift`) see only whole files.
"""
from __future__ import annotations

import base64
import os
import struct
import time
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurectl.core.dtypes import element_type
from featurectl.server.log_writer import ROLL_BYTES, ROLL_SECONDS

_SCALARS = {"bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
            "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
            "timestamp": pa.timestamp("us", tz="UTC")}
_TIMESTAMP = pa.timestamp("us", tz="UTC")

MAX_PENDING_ROWS = 200_000  # rows received but not written yet: flush early beyond this

Shape = tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str, str], ...]]  # keys, features


def arrow_type(dtype: str) -> pa.DataType:
    elem = element_type(dtype)
    return pa.list_(_SCALARS[elem]) if elem else _SCALARS[dtype]


# --- undoing the response's JSON encoding, a column at a time ------------------------------

def _float_of(value: Any) -> Any:
    return float(value) if isinstance(value, str) else value  # "NaN", "Infinity", "-Infinity"


def _bytes_of(value: Any) -> Any:
    return None if value is None else base64.b64decode(value)


def _elements(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else [decode(v) for v in value]


def column_array(dtype: str | None, values: list[Any]) -> pa.Array:
    """The Arrow array of one served column as the response encoded it. Fast path: Arrow
    converts the JSON values as they are; only a float column holding NaN or ±inf, and bytes,
    take a Python pass."""
    if dtype is None:  # a given column that is no join key: Arrow infers, as before
        return pa.array(values)
    elem = element_type(dtype) or dtype
    target = arrow_type(dtype)
    if elem == "timestamp":  # ISO 8601 with Z: Arrow parses the strings
        strings = pa.list_(pa.string()) if target != _TIMESTAMP else pa.string()
        return pa.array(values, strings).cast(target)
    if elem == "bytes":
        return pa.array(list(map(_elements(_bytes_of) if elem != dtype else _bytes_of, values)), target)
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        if elem not in ("float32", "float64"):
            raise
        return pa.array(list(map(_elements(_float_of) if elem != dtype else _float_of, values)), target)


def key_array(dtype: str | None, values: list[Any]) -> pa.Array:
    """A key column: inferred as the in-worker writer did (an int32 key is int64), except bytes,
    which the response carries as base64."""
    return column_array(dtype, values) if dtype == "bytes" else pa.array(values)


# --- what the writer holds between two flushes ---------------------------------------------

class _ShapeRows:
    """The received batches of one shape, turned into Arrow tables (one per view) every
    CHUNK_ROWS rows, so the writer holds Python objects for one chunk at most and Arrow's
    compact columns for the rest."""

    CHUNK_ROWS = 4096

    def __init__(self, shape: Shape):
        self.shape = shape
        self.chunks: list[dict[str, pa.Table]] = []
        self.batches: list[bytes] = []
        self.rows = 0

    def add(self, rows: int, batch: bytes) -> None:
        self.batches.append(batch)
        self.rows += rows
        if self.rows >= self.CHUNK_ROWS:
            self.chunks.append(self._convert())

    def view_tables(self) -> list[dict[str, pa.Table]]:
        if self.rows:
            self.chunks.append(self._convert())
        return self.chunks

    def _convert(self) -> dict[str, pa.Table]:
        """A batch (server/log_channel.py) is the length of a JSON head [request ids, request
        times in µs, entities per request, [values of each key and feature column, or null for
        a column sent as raw 8-byte values], [statuses of each feature: one string for the
        batch, or one per entity]], then the raw columns' bytes in order. Batches are joined a column at
        a time (list extends, byte joins) and Arrow's run-end decoding spreads each request's
        values over its rows; no Python runs per request or row."""
        keys, features = self.shape
        dtypes = [dtype for _, dtype in keys] + [dtype for _, _, dtype in features]
        ids: list[str] = []
        micros: list[int] = []
        counts: list[int] = []
        parts: list[list[Any]] = [[] for _ in dtypes]  # per column, each batch's list or raw bytes
        statuses: list[list[Any]] = [[] for _ in features]  # per feature, each batch's string or list
        batch_rows: list[int] = []
        for batch in self.batches:
            length = _HEAD_LENGTH.unpack_from(batch)[0]
            batch_ids, batch_micros, batch_counts, batch_columns, batch_statuses = orjson.loads(batch[4:4 + length])
            ids += batch_ids
            micros += batch_micros
            counts += batch_counts
            at, size = 4 + length, 8 * sum(batch_counts)
            batch_rows.append(size // 8)
            for column, part in zip(parts, batch_columns):
                if part is None:
                    part, at = batch[at:at + size], at + size
                column.append(part)
            for column, part in zip(statuses, batch_statuses):
                column.append(part)
        self.batches, self.rows = [], 0
        columns = [_column(dtype, column, index < len(keys)) for index, (dtype, column) in enumerate(zip(dtypes, parts))]
        ends = pa.array(list(accumulate(counts)), pa.int32())  # each request a run of its entities
        common: dict[str, pa.Array] = {
            "request_time": _runs(ends, pa.array(micros, pa.int64())).cast(_TIMESTAMP),
            "request_id": _runs(ends, pa.array(ids, pa.string())),
        }
        for (name, _), column in zip(keys, columns):
            common[name] = column
        tables: dict[str, dict[str, pa.Array]] = {}
        for (view, feature, _), column, feature_statuses in zip(features, columns[len(keys):], statuses):
            table = tables.setdefault(view, dict(common))
            table[feature] = column
            table[f"{feature}__status"] = _statuses(batch_rows, feature_statuses)
        return {view: pa.table(columns) for view, columns in tables.items()}


_HEAD_LENGTH = struct.Struct("<I")
_RAW_TYPES = {"int64": pa.int64(), "float64": pa.float64()}  # what a worker sends raw (log_channel.RAW)


def _column(dtype: str | None, parts: list[Any], key: bool) -> pa.Array:
    """One column from its batches' parts: JSON lists (decoded by dtype), raw bytes (wrapped,
    no pass over the values), or both (a batch whose requests brought a null went as JSON)."""
    decode = key_array if key else column_array
    kinds = set(map(type, parts))
    if bytes not in kinds:
        return decode(dtype, list(chain.from_iterable(parts)))
    target = _RAW_TYPES[dtype or ""]
    if list not in kinds:
        data = b"".join(parts)
        return pa.Array.from_buffers(target, len(data) // 8, [None, pa.py_buffer(data)])
    return pa.concat_arrays([pa.Array.from_buffers(target, len(part) // 8, [None, pa.py_buffer(part)])
                             if isinstance(part, bytes) else decode(dtype, part).cast(target) for part in parts])


def _statuses(batch_rows: list[int], parts: list[Any]) -> pa.Array:
    """A feature's statuses from its batches' parts: one string for a whole batch (runs, no
    Python per row), or one per entity."""
    if list not in set(map(type, parts)):
        return _runs(pa.array(list(accumulate(batch_rows)), pa.int32()), pa.array(parts, pa.string()))
    return pa.array(list(chain.from_iterable(p if isinstance(p, list) else [p] * n
                                             for p, n in zip(parts, batch_rows))), pa.string())


def _runs(ends: pa.Array, values: pa.Array) -> pa.Array:
    """Each request's value on every entity row it served."""
    return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, values))


class PendingRows:
    """Batches received since the last flush, grouped by shape."""

    def __init__(self) -> None:
        self.by_shape: dict[Shape, _ShapeRows] = {}
        self.rows = 0

    def add(self, shape: Shape, rows: int, batch: bytes) -> None:
        shape_rows = self.by_shape.get(shape)
        if shape_rows is None:
            shape_rows = self.by_shape[shape] = _ShapeRows(shape)
        shape_rows.add(rows, batch)
        self.rows += rows

    def tables(self) -> dict[str, pa.Table]:
        """Per view, one table of every pending row. Requests naming different features of a
        view (or giving different key columns) have different schemas: tables of one view are
        concatenated with the schemas merged, and a new schema rolls the view's file."""
        parts: dict[str, list[pa.Table]] = {}
        for shape_rows in self.by_shape.values():
            for chunk in shape_rows.view_tables():
                for view, table in chunk.items():
                    parts.setdefault(view, []).append(table)
        return {view: tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
                for view, tables in parts.items()}


# --- the files -------------------------------------------------------------------------------

class _ViewFile:
    """The open Parquet file of one view, with the schema it was opened with."""

    def __init__(self, directory: Path, schema: pa.Schema, sequence: int):
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.final = directory / f"{stamp}-{os.getpid()}-{sequence:06d}.parquet"
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.schema, self.opened = schema, time.monotonic()
        # Dictionary pages for text columns only (statuses, request ids, string features): on
        # floats and ids the encoder tried a dictionary, gave up and fell back, which was half
        # of the write's CPU (measured: 0.53 -> 0.27 µs per row, and smaller files).
        text = [f.name for f in schema if pa.types.is_string(f.type)]
        self.writer = pq.ParquetWriter(self.partial, schema, use_dictionary=text)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def size(self) -> int:
        """Bytes on disk so far: every written row group is in the file."""
        try:
            return self.partial.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        self.writer.close()
        self.partial.replace(self.final)


class ParquetLog:
    """The open file of each view under `directory`, appended to and rolled."""

    def __init__(self, directory: Path, *, roll_bytes: int = ROLL_BYTES, roll_seconds: float = ROLL_SECONDS):
        self.directory = Path(directory)
        self.roll_bytes, self.roll_seconds = roll_bytes, roll_seconds
        self._files: dict[str, _ViewFile] = {}
        self._sequence = 0

    def write(self, pending: PendingRows) -> int:
        """Every pending row appended to its view's file; the rows written."""
        written = 0
        for view, table in pending.tables().items():
            self._append(view, table)
            written += table.num_rows
        return written

    def _append(self, view: str, table: pa.Table) -> None:
        file = self._files.get(view)
        if file is not None and (file.schema != table.schema or self._due(file)):
            self._close(view)
            file = None
        if file is None:
            self._sequence += 1
            file = self._files[view] = _ViewFile(self.directory / view, table.schema, self._sequence)
        file.write(table)

    def _due(self, file: _ViewFile) -> bool:
        return file.size() >= self.roll_bytes or time.monotonic() - file.opened >= self.roll_seconds

    def roll_due(self) -> None:
        """Close the files that are due, written to this tick or not."""
        for view, file in list(self._files.items()):
            if self._due(file):
                self._close(view)

    def close(self) -> None:
        for view in list(self._files):
            self._close(view)

    def _close(self, view: str) -> None:
        file = self._files.pop(view)
        try:
            file.close()
        except OSError as exc:
            print(f"featurectl serve: closing feature log {file.partial} failed: {exc}", flush=True)
