"""The packed (binary) online value, format 1: what stores hold for a view of scalar features.

Why: JSON made DuckDB format every float as text (~0.12-0.15 s per 100k rows) and the stores
copy ~2× the bytes. A packed value is laid out from the Arrow column buffers with Arrow
compute alone (no per-row Python, no DuckDB) and read with one `struct` call.

Layout (little-endian; docs/decisions.md, "Packed online values"):

    0x01                                   format byte (a JSON value starts with '{', 0x7B)
    u16 header length H, u16 feature count n
    n × (u8 type code, u8 name length, name in UTF-8)    the layout as written
    ceil(n/8) bytes: null bitmap, bit i (byte i // 8, bit i % 8) set = feature i is null
    the fixed-width features in layout order (zeros where null)
    a u32 length per variable-width feature (string, bytes) in layout order (0 where null)
    the variable-width features' bytes, back to back

The header names every feature, so a value stays readable after a minor version adds,
reorders or widens features: a reader finds each wanted name in the header (a name it does
not hold reads as null) and converts the stored type to the declared one. All values written
with one layout share the header's bytes, so a reader parses each header once (`_layout`).
Views with list features are written as JSON (`encoding.ValueEncoder`), as are columns of any
Arrow type outside `_ARROW_CODES`.
"""
from __future__ import annotations

import array
import operator
import struct
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = 1
_HEAD = struct.Struct("<BHH")
_FIELD = struct.Struct("<BB")
_MAX_HEADER = 0xFFFF

# code: (struct char or None for variable width, stored value -> the value JSON held for it:
# strings decoded; a float32 as its double expansion, as DuckDB's to_json wrote it, which the
# float32 dtype's converter makes its shortest decimal and float64's, after a widening, keeps).
_CODES: dict[int, tuple[Optional[str], Callable[[Any], Any] | None]] = {
    1: ("?", None),  # bool
    2: ("i", None),  # int32
    3: ("q", None),  # int64
    4: ("f", None),  # float32
    5: ("d", None),  # float64
    6: (None, bytes.decode),  # string (UTF-8)
    7: (None, None),  # bytes
    8: ("q", None),  # timestamp, epoch microseconds
}


class PackedValueError(ValueError):
    """A value that is not a packed value featurectl can read."""


# ---- writing -----------------------------------------------------------------------

def _arrow_code(arrow_type: "pa.DataType") -> int | None:
    import pyarrow as pa

    t = pa.types
    for test, code in ((t.is_boolean, 1), (lambda x: x == pa.int32(), 2), (lambda x: x == pa.int64(), 3),
                       (lambda x: x == pa.float32(), 4), (lambda x: x == pa.float64(), 5),
                       (lambda x: t.is_string(x) or t.is_large_string(x), 6),
                       (lambda x: t.is_binary(x) or t.is_large_binary(x), 7), (t.is_timestamp, 8)):
        if test(arrow_type):
            return code
    return None


def layout_of(batch: "pa.RecordBatch", names: Sequence[str]) -> list[int] | None:
    """Each feature column's type code, or None when the batch cannot be packed (a list or
    another Arrow type, a name beyond 255 bytes or a header beyond 64 KiB, a big-endian host)."""
    if sys.byteorder != "little":  # the fixed-width parts are the column buffers as they are
        return None
    codes = []
    for name in names:
        column_type = batch.schema.field(name).type
        code = _arrow_code(column_type.value_type if _is_dictionary(column_type) else column_type)
        if code is None:
            return None
        codes.append(code)
    if any(len(name.encode()) > 0xFF for name in names) or len(_header(names, codes)) > _MAX_HEADER:
        return None
    return codes


def _is_dictionary(arrow_type: "pa.DataType") -> bool:
    import pyarrow as pa

    return pa.types.is_dictionary(arrow_type)


def _header(names: Sequence[str], codes: Sequence[int]) -> bytes:
    fields = b"".join(_FIELD.pack(code, len(raw)) + raw for code, raw in zip(codes, (n.encode() for n in names)))
    return _HEAD.pack(FORMAT, _HEAD.size + len(fields), len(names)) + fields


def _as_binary(data: "pa.Buffer", width: int, n: int, offsets: dict[int, "pa.Buffer"]) -> "pa.Array":
    """`n` fixed-width items of `data` as a binary array of `width`-byte values, without a copy:
    the data buffer as it is, beside offsets 0, w, 2w, ... (shared by the pieces of one width
    in `offsets`). A cast from fixed_size_binary would copy every column (~35 MB more peak
    RSS per 100k rows of 10 features)."""
    import pyarrow as pa

    if width not in offsets:
        offsets[width] = pa.py_buffer(array.array("i", range(0, (n + 1) * width, width)))
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets[width], data])


def _fixed_part(column: "pa.Array", code: int, offsets: dict[int, "pa.Buffer"]) -> "pa.Array":
    """The column's values as `width`-byte strings, zeros where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if code == 1:
        column = pc.cast(column, pa.uint8())
    elif code == 8:
        # Sub-microsecond digits are dropped, as DuckDB's epoch_us did for the JSON format.
        micros = pa.timestamp("us", tz=column.type.tz)
        column = pc.cast(column, options=pc.CastOptions(micros, allow_time_truncate=True)).cast(pa.int64())
    if column.null_count:
        column = _zero_nulls(column)
    width = column.type.bit_width // 8
    data = column.buffers()[1].slice(column.offset * width, len(column) * width)
    return _as_binary(data, width, len(column), offsets)


def _zero_nulls(column: "pa.Array") -> "pa.Array":
    """`fill_null(column, 0)` without a Python scalar (pa.scalar(0) imports pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    zero = pa.Array.from_buffers(column.type, 1, [None, pa.py_buffer(bytes(column.type.bit_width // 8))])
    return pc.fill_null(column, zero[0])


def _var_parts(column: "pa.Array", offsets: dict[int, "pa.Buffer"]) -> tuple["pa.Array", "pa.Array"]:
    """The column as its u32 lengths (4-byte pieces) and its bytes, empty where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from featurectl.online.encoding import binary_scalar

    values = pc.cast(column, pa.large_binary() if pa.types.is_large_string(column.type)
                     or pa.types.is_large_binary(column.type) else pa.binary())
    if values.null_count:
        values = pc.fill_null(values, binary_scalar(b"").cast(values.type))
    lengths = pc.cast(pc.binary_length(values), pa.uint32())
    return (_as_binary(lengths.buffers()[1].slice(lengths.offset * 4, len(lengths) * 4), 4, len(lengths), offsets),
            values.cast(pa.binary()))


def _null_bitmap(columns: Sequence["pa.Array"], n: int, offsets: dict[int, "pa.Buffer"]) -> list["pa.Array"]:
    """One 1-byte piece per 8 features: bit i % 8 of byte i // 8 set where feature i is null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces = []
    for start in range(0, len(columns), 8):
        byte: Any = None
        for bit, column in enumerate(columns[start:start + 8]):
            if not column.null_count:
                continue
            flags = pc.multiply(pc.cast(pc.is_null(column), pa.uint8()), _uint8(1 << bit))
            byte = flags if byte is None else pc.bit_wise_or(byte, flags)
        if byte is None:
            byte = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(bytes(n))])
        pieces.append(_as_binary(byte.buffers()[1].slice(byte.offset, n), 1, n, offsets))
    return pieces


def _uint8(value: int) -> "pa.Scalar":
    import pyarrow as pa

    return pa.Array.from_buffers(pa.uint8(), 1, [None, pa.py_buffer(bytes([value]))])[0]


def encode(batch: "pa.RecordBatch", names: Sequence[str], codes: Sequence[int]) -> "pa.BinaryArray":
    """One packed value per row of `batch`, of the features `names` (types `codes`, from
    `layout_of`)."""
    import pyarrow.compute as pc

    from featurectl.online.encoding import binary_scalar

    columns = []
    for name in names:
        column = batch.column(batch.schema.get_field_index(name))
        columns.append(column.dictionary_decode() if _is_dictionary(column.type) else column)
    offsets: dict[int, pa.Buffer] = {}
    fixed = [_fixed_part(c, code, offsets) for c, code in zip(columns, codes) if _CODES[code][0] is not None]
    var = [_var_parts(c, offsets) for c, code in zip(columns, codes) if _CODES[code][0] is None]
    lengths, data = [length for length, _ in var], [values for _, values in var]
    header = binary_scalar(_header(names, codes))
    return pc.binary_join_element_wise(header, *_null_bitmap(columns, batch.num_rows, offsets), *fixed, *lengths, *data,
                                       binary_scalar(b""))


# ---- reading -----------------------------------------------------------------------

Wanted = Sequence[tuple[str, Callable[[Any], Any] | None]]


def header_of(blob: bytes) -> bytes:
    """A packed value's header: the key a reader caches its `reader` under."""
    if len(blob) < _HEAD.size:
        raise PackedValueError(f"a packed value of {len(blob)} bytes")
    return blob[:blob[1] | blob[2] << 8]


def _fields(header: bytes) -> list[tuple[str, int]]:
    _, length, count = _HEAD.unpack_from(header)
    fields, at = [], _HEAD.size
    for _ in range(count):
        code, size = _FIELD.unpack_from(header, at)
        at += _FIELD.size
        if code not in _CODES:
            raise PackedValueError(f"unknown type code {code} (written by a newer featurectl?)")
        fields.append((header[at:at + size].decode(), code))
        at += size
    if at != length:
        raise PackedValueError("a header whose fields do not fill it")
    return fields


def _then(first: Callable[[Any], Any] | None, second: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    if first is None or second is None:
        return first or second
    return lambda value: second(first(value))


# The declared type's converter is a no-op on what these stored types give (float() of a
# float): skipped.
_PAD = (None,)
_NO_OP = {(5, float), (4, float)}


def _picker(indices: Sequence[int]) -> Callable[[tuple], tuple]:
    """`operator.itemgetter` that returns a tuple for any number of indices."""
    if len(indices) == 1:
        (only,) = indices
        return lambda values: (values[only],)
    return operator.itemgetter(*indices) if indices else (lambda values: ())


def reader(header: bytes, wanted: Wanted) -> Callable[[bytes], list[Any]]:
    """How to read the wanted features of every value with this header: (name, converter of
    the declared type) pairs, as `encoding.decoders` makes them; the converters take what JSON
    would have held (timestamps as epoch microseconds) or, for bytes, the bytes. A name the
    header does not hold reads as null.

    One `struct` call reads the null bitmap, every fixed-width value and the variable-width
    lengths; the variable-width values are sliced when one is wanted; one itemgetter picks the
    wanted ones; only nulls and values that need a conversion are then looked at one by one."""
    try:
        fields = _fields(header)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise PackedValueError(f"not a packed value: {exc}") from None
    bitmap = (len(fields) + 7) // 8
    fixed_fields = [(name, code) for name, code in fields if _CODES[code][0] is not None]
    var_fields = [(name, code) for name, code in fields if _CODES[code][0] is None]
    layout = struct.Struct("<" + "B" * bitmap + "".join(str(_CODES[code][0]) for _, code in fixed_fields)
                           + "I" * len(var_fields))
    # Index of each feature in the tuple `read` assembles: bitmap bytes, fixed values, variable
    # lengths, variable values (only when one is wanted), then one None for the names this
    # layout does not hold: always the last item, whether the variable values were sliced or not.
    first_var = bitmap + len(fixed_fields) + len(var_fields)
    slot = {name: bitmap + i for i, (name, _) in enumerate(fixed_fields)}
    slot.update((name, first_var + i) for i, (name, _) in enumerate(var_fields))
    position = {name: i for i, (name, _) in enumerate(fields)}
    codes = dict(fields)
    absent = -1
    pick = _picker([slot.get(name, absent) for name, _ in wanted])
    pad = any(name not in slot for name, _ in wanted)
    nulls = [(i, position[name] // 8, 1 << position[name] % 8) for i, (name, _) in enumerate(wanted) if name in codes]
    converts = []
    for i, (name, declared) in enumerate(wanted):
        if name in codes:
            code = codes[name]
            convert = _then(_CODES[code][1], None if (code, declared) in _NO_OP else declared)
            if convert is not None:
                converts.append((i, convert))
    wants_var = any(slot[name] >= first_var for name, _ in wanted if name in slot)
    start, var_start = len(header), len(header) + layout.size
    lengths = slice(bitmap + len(fixed_fields), first_var)
    flags = slice(0, bitmap)

    def read(blob: bytes) -> list[Any]:
        try:
            values = layout.unpack_from(blob, start)
            if wants_var:
                parts, at = [], var_start
                for size in values[lengths]:
                    parts.append(blob[at:at + size])
                    at += size
                if at != len(blob):
                    raise PackedValueError(f"a packed value of {len(blob)} bytes holds {at}")
                values += tuple(parts)
            row = list(pick(values + _PAD if pad else values))
            if any(values[flags]):
                for i, byte, bit in nulls:
                    if values[byte] & bit:
                        row[i] = None
            for i, convert in converts:
                if row[i] is not None:
                    row[i] = convert(row[i])
            return row
        except (struct.error, UnicodeDecodeError) as exc:
            raise PackedValueError(f"not a packed value: {exc}") from None

    return read
