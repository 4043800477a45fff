"""The one online key and value encoding, shared by every online store.

Key: ``prefix + component [ + SEP + component ...]`` where an integer component is its
decimal text (so int32 and int64 keys of the same entity agree), a string its UTF-8 bytes
and bytes themselves. In a composite key each component escapes NUL as NUL 0x01 and the
components are joined by NUL NUL, which keeps the encoding injective.

Value, written from the whole Arrow batch (no per-row Python), in one of two formats told
apart by the first byte (docs/decisions.md, "Packed online values"):

- packed (format 1, first byte 0x01, `online/packed.py`): a header naming each feature and
  its stored type, a null bitmap, the fixed-width values as their bytes and the strings and
  bytes with their lengths. Written for every view whose features are all scalars.
- JSON (first byte '{'): one object per entity, ``{feature: value}``, produced by DuckDB.
  Written for views with list features; every value written before the packed format is one.
  Bytes travel as base64 and timestamps as epoch microseconds; NaN/Infinity use Python's JSON
  extension, which DuckDB writes and ``json.loads`` reads.

Both name each feature (an object key, a header field), which keeps values written before a
minor version added or widened a feature readable: the new feature reads as null, a widened
one converts.
"""
from __future__ import annotations

import base64
import functools
import itertools
import json
import operator
import struct
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

import orjson

from featurectl.core.dtypes import element_type, shortest_float32
from featurectl.core.sql import ident
from featurectl.online import packed
from featurectl.online.base import OnlineRows, OnlineTable
from featurectl.online.names import datetime_to_micros, micros_to_datetime, namespace  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

# pyarrow, pyarrow.compute and duckdb are imported by the functions that write: a read
# (`get-online`, the server) needs none of them, and they are most of a fresh process's
# start-up (~0.2-0.3 s).

EVENT_TIMESTAMP = "event_timestamp"
_ESCAPE, _ESCAPED, _SEP = b"\x00", b"\x00\x01", b"\x00\x00"
_PACKED = bytes([packed.FORMAT])
_INTS = ("int32", "int64")


# ---- keys ---------------------------------------------------------------------------

def key_prefix(table: OnlineTable) -> bytes:
    """What precedes entity keys in a store with one key space for all views (Redis)."""
    return (namespace(table) + ":").encode()


def _key_type_ok(dtype: str, arrow_type: "pa.DataType") -> bool:
    import pyarrow as pa

    if dtype in _INTS:
        return pa.types.is_integer(arrow_type)
    if dtype == "string":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _key_column(column: pa.Array, dtype: str, name: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    # A float or mistyped key column would encode differently from the same key at read time.
    if not _key_type_ok(dtype, column.type):
        raise ValueError(f"join key column {name!r} is declared {dtype} but the batch holds {column.type}")
    if dtype in _INTS:
        column = pc.cast(column, pa.string())
    return pc.cast(column, pa.binary())


def binary_array(values: Sequence[bytes]) -> pa.BinaryArray:
    """`pa.array(values, pa.binary())` built from buffers: pyarrow's scalar() and array() on
    Python values import pandas, when it is installed, on their first call (0.2-0.3 s of a
    fresh process's first materialization)."""
    import pyarrow as pa

    ends = list(itertools.accumulate(map(len, values), initial=0))
    offsets = pa.py_buffer(struct.pack(f"<{len(ends)}i", *ends))
    return pa.Array.from_buffers(pa.binary(), len(values), [None, offsets, pa.py_buffer(b"".join(values))])


def binary_scalar(value: bytes) -> pa.BinaryScalar:
    """`pa.scalar(value, pa.binary())` without pyarrow's pandas import (`binary_array`)."""
    return binary_array([value])[0]


def int64_scalar(value: int) -> pa.Int64Scalar:
    """`pa.scalar(value, pa.int64())` without pyarrow's pandas import (`binary_array`); a
    compute function handed a Python int converts it with scalar()."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", value))])[0]


_EMPTY = b""


def encode_keys(table: OnlineTable, batch: pa.RecordBatch, prefix: bytes = b"") -> pa.BinaryArray:
    """Vectorized key encoding of every row of `batch` (its join key columns)."""
    import pyarrow.compute as pc

    parts: list[Any] = [binary_scalar(prefix)]
    composite = len(table.join_keys) > 1
    for i, (name, dtype) in enumerate(table.join_keys):
        column = _column(batch, name)
        if column.null_count:
            raise ValueError(f"join key column {name!r} holds {column.null_count} null(s); every entity needs a key")
        encoded = _key_column(column, dtype, name)
        if composite:
            encoded = pc.replace_substring(encoded, pattern=_ESCAPE, replacement=_ESCAPED)
            if i:
                parts.append(binary_scalar(_SEP))
        parts.append(encoded)
    return pc.binary_join_element_wise(*parts, binary_scalar(_EMPTY))


def _key_part(value: Any, dtype: str, name: str) -> bytes:
    if dtype in _INTS:
        try:  # operator.index takes Python and NumPy integers, and refuses str and float
            if isinstance(value, bool):  # an int subclass, but never a key value
                raise TypeError(value)
            return b"%d" % operator.index(value)
        except TypeError:
            raise ValueError(f"join key {name!r} is {dtype}; got {value!r}") from None
    if dtype == "string":
        if not isinstance(value, str):
            raise ValueError(f"join key {name!r} is a string; got {value!r}")
        return value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"join key {name!r} is bytes; got {value!r}")
    return bytes(value)


def encode_key(table: OnlineTable, key: Sequence[Any], prefix: bytes = b"") -> bytes:
    """One key tuple, for reads; byte-for-byte equal to what `encode_keys` gives that row."""
    if len(key) != len(table.join_keys):
        names = ", ".join(name for name, _ in table.join_keys)
        raise ValueError(f"view {table.view!r} is keyed by ({names}); got the key {tuple(key)!r}")
    if len(key) == 1:
        (name, dtype), = table.join_keys
        return prefix + _key_part(key[0], dtype, name)
    parts = (_key_part(v, dtype, name).replace(_ESCAPE, _ESCAPED) for v, (name, dtype) in zip(key, table.join_keys))
    return prefix + _SEP.join(parts)


# ---- event times --------------------------------------------------------------------

def event_micros(batch: pa.RecordBatch) -> pa.Int64Array:
    """The batch's event times as epoch microseconds (int64); nulls are refused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = _column(batch, EVENT_TIMESTAMP)
    if not pa.types.is_timestamp(column.type):
        raise ValueError(f"column {EVENT_TIMESTAMP!r} must be a timestamp, not {column.type}")
    if column.null_count:
        raise ValueError(f"column {EVENT_TIMESTAMP!r} holds {column.null_count} null(s)")
    return pc.cast(pc.cast(column, pa.timestamp("us", tz=column.type.tz)), pa.int64())


# ---- values -------------------------------------------------------------------------

def _sql_value(column: str, dtype: str) -> str:
    scalar = {"bytes": "to_base64({})", "timestamp": "epoch_us({})"}
    elem = element_type(dtype)
    if elem in scalar:
        return f"list_transform({column}, lambda x: {scalar[elem].format('x')})"
    return scalar.get(dtype, "{}").format(column)


_ENCODING_DB: "duckdb.DuckDBPyConnection | None" = None
_ENCODING_DB_LOCK = threading.Lock()


def _encoding_cursor() -> "duckdb.DuckDBPyConnection":
    """A connection of its own to the process's one in-memory encoding database, started on
    first use (a DuckDB start costs ~20 ms; a cursor on a running one next to nothing)."""
    global _ENCODING_DB
    import duckdb

    with _ENCODING_DB_LOCK:
        if _ENCODING_DB is None:
            _ENCODING_DB = duckdb.connect(":memory:")
        return _ENCODING_DB.cursor()


class ValueEncoder:
    """Encodes a batch's feature columns to one value per row: packed when every column can be
    (`packed.layout_of`), else JSON with DuckDB.

    Holds its own connection (opened on the first JSON encode) to the process's encoding
    database; not shared across threads."""

    def __init__(self) -> None:
        self._con: "duckdb.DuckDBPyConnection | None" = None

    def encode(self, table: OnlineTable, batch: pa.RecordBatch) -> pa.BinaryArray:
        names = [name for name, _ in table.features]
        for name in names:
            _column(batch, name)
        codes = packed.layout_of(batch, names)
        if codes is not None:
            return packed.encode(batch, names, codes)
        return self.encode_json(table, batch)

    def encode_json(self, table: OnlineTable, batch: pa.RecordBatch) -> pa.BinaryArray:
        """The JSON format, whatever the columns (views with list features; tests of values
        written before the packed format)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        con = self._cursor()
        fields = ", ".join(f"{ident(n)} := {_sql_value(ident(n), d)}" for n, d in table.features)
        # Expose the batch under a fixed name; DuckDB scans it zero-copy.
        con.register("_fc_batch", batch)
        try:
            result = con.sql(f"SELECT to_json(struct_pack({fields}))::BLOB FROM _fc_batch").to_arrow_table()
        finally:
            con.unregister("_fc_batch")
        return pc.cast(result.column(0).combine_chunks(), pa.binary())

    def first_md5_byte(self, values: pa.BinaryArray) -> pa.UInt8Array:
        """The first byte of each value's MD5: a stable spread of keys over 256 buckets (the same
        as ``hashlib.md5(value).digest()[0]``, whatever the DuckDB version)."""
        import pyarrow as pa

        con = self._cursor()
        con.register("_fc_values", pa.table({"v": values}))
        try:
            result = con.sql("SELECT ('0x' || substr(md5(v), 1, 2))::UTINYINT FROM _fc_values").to_arrow_table()
        finally:
            con.unregister("_fc_values")
        return result.column(0).combine_chunks()

    def _cursor(self) -> "duckdb.DuckDBPyConnection":
        if self._con is None:
            self._con = _encoding_cursor()
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _b64(value: str | bytes) -> bytes:
    """JSON holds bytes as base64 text; a packed value holds them as they are."""
    return value if isinstance(value, bytes) else base64.b64decode(value)


# None: JSON already gives the Python type. Floats are converted because a value written
# before an int -> float widening (a minor change) is stored as a JSON integer.
_DECODERS: dict[str, Callable[[Any], Any] | None] = {
    "bool": None, "int32": None, "int64": None, "float32": shortest_float32, "float64": float,
    "string": None, "bytes": _b64, "timestamp": micros_to_datetime,
}


@functools.lru_cache(maxsize=None)
def _decoder(dtype: str) -> Callable[[Any], Any] | None:
    """One function per dtype (cached), so the readers keyed by converters are found again."""
    elem = element_type(dtype)
    if elem is None:
        return _DECODERS[dtype]
    one = _DECODERS[elem]
    return None if one is None else (lambda values: [None if v is None else one(v) for v in values])


def decoders(table: OnlineTable, features: Sequence[str]) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """(name, converter) for each requested feature; an unknown name is an error."""
    declared = dict(table.features)
    missing = [f for f in features if f not in declared]
    if missing:
        raise ValueError(
            f"view {table.view!r} has no feature(s) {', '.join(map(repr, missing))}; "
            f"it declares {', '.join(declared) or 'none'}"
        )
    return [(name, _decoder(declared[name])) for name in features]


Wanted = list[tuple[str, Callable[[Any], Any] | None]]


class UnreadableValue(ValueError):
    """A stored value in neither format: not written by featurectl (or by a newer one)."""


def readable(blob: bytes, wanted: Wanted) -> bool:
    """Whether the wanted features of `blob` can be read (for naming the key that cannot)."""
    try:
        decode_value(blob, wanted)
    except UnreadableValue:
        return False
    return True


def value_decoder(wanted: Wanted) -> Callable[[bytes], list[Any]]:
    """Reads the wanted features of stored values, typed; only those are converted. Packed
    values are read by a `packed.reader` per header (one per layout written)."""
    key = tuple(wanted)
    # The last layout read and its reader, one tuple (a decoder is shared between threads:
    # `_decoding`): most reads see one layout.
    last: tuple[bytes, Callable[[bytes], list[Any]]] | None = None

    def decode(blob: bytes) -> list[Any]:
        nonlocal last
        try:
            seen = last
            if seen is not None and blob.startswith(seen[0]):
                return seen[1](blob)
            if blob[:1] == _PACKED:
                header = packed.header_of(blob)
                read = _reader(header, key)
                last = (header, read)
                return read(blob)
        except packed.PackedValueError as exc:
            raise UnreadableValue(str(exc)) from None
        return _decode_json(blob, wanted)

    return decode


_READERS: dict[tuple[bytes, tuple], Callable[[bytes], list[Any]]] = {}


def _reader(header: bytes, wanted: tuple) -> Callable[[bytes], list[Any]]:
    """The process's reader of one (layout, wanted features): a read of one entity would
    otherwise spend more on making it (~15 us) than on reading."""
    read = _READERS.get((header, wanted))
    if read is None:
        if len(_READERS) >= 4096:  # layouts x feature selections in use; only a bound
            _READERS.clear()
        read = _READERS[header, wanted] = packed.reader(header, wanted)
    return read


def decode_value(blob: bytes, wanted: Wanted) -> list[Any]:
    """The requested features of one stored value, typed (`value_decoder`)."""
    return value_decoder(wanted)(blob)


def _decode_json(blob: bytes, wanted: Wanted) -> list[Any]:
    try:
        obj = orjson.loads(blob)
    except orjson.JSONDecodeError:  # NaN/Infinity: Python's JSON extension, which orjson refuses
        try:
            obj = json.loads(blob)
        except ValueError as exc:
            raise UnreadableValue(f"neither a packed value nor JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise UnreadableValue("JSON that is not an object")
    out = []
    for name, convert in wanted:
        value = obj.get(name)
        out.append(value if convert is None or value is None else convert(value))
    return out


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        raise ValueError(f"the batch has no column {name!r}; it has {', '.join(batch.schema.names)}")
    return batch.column(index)


_DECODINGS: dict[tuple[OnlineTable, tuple[str, ...]], tuple[Wanted, Callable[[bytes], list[Any]]]] = {}


def _decoding(table: OnlineTable, features: Sequence[str]) -> tuple[Wanted, Callable[[bytes], list[Any]]]:
    """`decoders` and their `value_decoder` for one (table, features), made once per process:
    serving reads the same few, and making them was ~3 µs of a 1-entity read, and each read's first
    value looked its layout's reader up again."""
    key = (table, tuple(features))
    found = _DECODINGS.get(key)
    if found is None:
        wanted = decoders(table, features)  # an unknown feature raises here, every time
        if len(_DECODINGS) >= 4096:  # tables x feature selections in use; only a bound
            _DECODINGS.clear()
        found = _DECODINGS[key] = (wanted, value_decoder(wanted))
    return found


def build_rows(table: OnlineTable, stored: Sequence[tuple[Any, Any] | None], features: Sequence[str],
               now: datetime) -> OnlineRows:
    """OnlineRows from each requested entity's stored (event micros, value), in request order.

    A value older than now - ttl is treated as absent (None time, None values); one exactly
    at now - ttl still counts, as in point-in-time joins (SPEC §5)."""
    wanted, decode = _decoding(table, features)
    cutoff = datetime_to_micros(now) - table.ttl_seconds * 1_000_000 if table.ttl_seconds > 0 else None
    absent = [None] * len(wanted)
    times: list[datetime | None] = []
    expired: list[datetime | None] = []
    rows: list[list[Any]] = []
    for item in stored:
        micros = None if item is None or item[0] is None else int(item[0])
        if item is None or micros is None or (cutoff is not None and micros < cutoff):
            times.append(None)
            expired.append(None if micros is None else micros_to_datetime(micros))
            rows.append(absent)
        else:
            times.append(micros_to_datetime(micros))
            expired.append(None)
            rows.append(decode(item[1]))
    columns = zip(*rows) if rows else ([] for _ in wanted)
    return OnlineRows(event_timestamps=times, values={name: list(col) for (name, _), col in zip(wanted, columns)},
                      expired_timestamps=expired)
