"""The shared online key/value encoding: scalar and vectorized keys agree, values round-trip."""
from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurectl.core.dtypes import SCALARS
from featurectl.online import encoding
from featurectl.online.base import OnlineTable

UTC = timezone.utc
ARROW = {
    "bool": pa.bool_(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
    "float64": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
SCALAR_VALUES = {
    "bool": st.booleans(),
    "int32": st.integers(-2**31, 2**31 - 1),
    "int64": st.integers(-2**63, 2**63 - 1),
    "float32": st.floats(width=32),
    "float64": st.floats(),
    "string": st.text(),
    "bytes": st.binary(),
    "timestamp": st.datetimes(timezones=st.just(UTC)),
}
KEY_VALUES = {k: SCALAR_VALUES[k] for k in ("int32", "int64", "string", "bytes")}
ALL_DTYPES = list(SCALARS) + [f"list<{s}>" for s in SCALARS]


def arrow_type(dtype: str) -> pa.DataType:
    elem = dtype[5:-1] if dtype.startswith("list<") else None
    return pa.list_(ARROW[elem]) if elem else ARROW[dtype]


def values_of(dtype: str) -> st.SearchStrategy:
    if dtype.startswith("list<"):
        return st.lists(st.none() | SCALAR_VALUES[dtype[5:-1]], max_size=4)
    return SCALAR_VALUES[dtype]


def same(a, b) -> bool:
    """Equality where NaN equals NaN, element-wise through lists."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


def f32(value):
    """A float32 value's bits: reads give the shortest decimal of the same float32."""
    if isinstance(value, list):
        return [f32(v) for v in value]
    if isinstance(value, float) and not math.isnan(value):
        return struct.pack("<f", value)
    return value


def table(join_keys, features=(), ttl=0) -> OnlineTable:
    return OnlineTable("proj", "view", 1, tuple(join_keys), tuple(features), ttl)


# ---- keys ---------------------------------------------------------------------------

key_dtypes = st.lists(st.sampled_from(sorted(KEY_VALUES)), min_size=1, max_size=3)


@st.composite
def keyed_rows(draw):
    dtypes = draw(key_dtypes)
    rows = draw(st.lists(st.tuples(*(KEY_VALUES[d] for d in dtypes)), min_size=1, max_size=8))
    return dtypes, rows


@given(keyed_rows(), st.sampled_from([b"", b"fc:p:v:v1:"]))
@settings(max_examples=200, deadline=None)
def test_scalar_and_vectorized_keys_agree(case, prefix):
    dtypes, rows = case
    t = table([(f"k{i}", d) for i, d in enumerate(dtypes)])
    batch = pa.record_batch(
        [pa.array([r[i] for r in rows], ARROW[d]) for i, d in enumerate(dtypes)],
        names=[f"k{i}" for i in range(len(dtypes))],
    )
    vectorized = encoding.encode_keys(t, batch, prefix).to_pylist()
    assert vectorized == [encoding.encode_key(t, r, prefix) for r in rows]


@given(keyed_rows())
@settings(max_examples=200, deadline=None)
def test_distinct_keys_encode_distinctly(case):
    dtypes, rows = case
    t = table([(f"k{i}", d) for i, d in enumerate(dtypes)])
    encoded = {encoding.encode_key(t, r): r for r in rows}
    assert len(encoded) == len(set(rows))


def test_composite_key_separator_is_not_ambiguous():
    t = table([("a", "string"), ("b", "string")])
    assert encoding.encode_key(t, ("x\x00", "y")) != encoding.encode_key(t, ("x", "\x00y"))
    assert encoding.encode_key(t, ("x\x00\x00", "")) != encoding.encode_key(t, ("x", "\x00"))


def test_int32_and_int64_keys_agree_so_widening_an_entity_keeps_its_keys():
    assert encoding.encode_key(table([("id", "int32")]), (7,)) == encoding.encode_key(table([("id", "int64")]), (7,))


@pytest.mark.parametrize("dtype, value", [("int64", "x"), ("int64", True), ("string", 3), ("bytes", "s")])
def test_a_key_of_the_wrong_type_is_refused_with_its_name(dtype, value):
    with pytest.raises(ValueError, match="driver_id"):
        encoding.encode_key(table([("driver_id", dtype)]), (value,))


def test_a_key_of_the_wrong_arity_is_refused():
    with pytest.raises(ValueError, match=r"keyed by \(a, b\)"):
        encoding.encode_key(table([("a", "int64"), ("b", "int64")]), (1,))


def test_null_join_keys_are_refused():
    batch = pa.record_batch({"id": pa.array([1, None])})
    with pytest.raises(ValueError, match="'id' holds 1 null"):
        encoding.encode_keys(table([("id", "int64")]), batch)


def test_namespace_separates_project_view_and_major():
    names = {encoding.namespace(OnlineTable(p, v, m, (), (), 0))
             for p, v, m in [("a", "b", 1), ("a", "b", 2), ("a", "c", 1), ("b", "b", 1), ("a", "b", 10)]}
    assert len(names) == 5
    with pytest.raises(ValueError, match="not an identifier"):
        encoding.namespace(OnlineTable("p", "a:b", 1, (), (), 0))


# ---- values -------------------------------------------------------------------------

@st.composite
def feature_columns(draw):
    dtypes = draw(st.lists(st.sampled_from(ALL_DTYPES), min_size=1, max_size=5))
    n = draw(st.integers(1, 5))
    columns = [draw(st.lists(st.none() | values_of(d), min_size=n, max_size=n)) for d in dtypes]
    return dtypes, columns


@pytest.fixture(scope="module")
def encoder():
    enc = encoding.ValueEncoder()
    yield enc
    enc.close()


@given(case=feature_columns(), offset=st.integers(0, 2), json_format=st.booleans())
@settings(max_examples=300, deadline=None)
def test_every_dtype_round_trips_in_both_formats(encoder, case, offset, json_format):
    dtypes, columns = case
    names = [f"f{i}" for i in range(len(dtypes))]
    t = table([("id", "int64")], zip(names, dtypes))
    # Rows before `offset` are sliced off: column buffers then start inside the arrays.
    arrays = [pa.array([None] * offset + col, arrow_type(d)).slice(offset) for col, d in zip(columns, dtypes)]
    batch = pa.record_batch(arrays, names=names)
    blobs = (encoder.encode_json if json_format else encoder.encode)(t, batch).to_pylist()
    packed = all(not d.startswith("list<") for d in dtypes) and not json_format
    assert all(b[:1] == (b"\x01" if packed else b"{") for b in blobs)
    wanted = encoding.decoders(t, names)
    for row, blob in enumerate(blobs):
        decoded = encoding.decode_value(blob, wanted)
        expected = [a[row].as_py() for a in arrays]
        expected, decoded = ([f32(v) if "float32" in d else v for v, d in zip(values, dtypes)]
                             for values in (expected, decoded))
        assert all(same(e, d) for e, d in zip(expected, decoded)), (expected, decoded)


@pytest.mark.parametrize("json_format", [False, True])
def test_special_floats_and_awkward_strings_round_trip(encoder, json_format):
    t = table([("id", "int64")], [("f", "float32"), ("d", "list<float64>"), ("s", "string")])
    encode = encoder.encode_json if json_format else encoder.encode
    batch = pa.record_batch({
        "f": pa.array([float("nan"), float("-inf"), -0.0], pa.float32()),
        "d": pa.array([[float("inf"), None], [float("nan")], []], pa.list_(pa.float64())),
        "s": pa.array(['"\\\x00\n\u2028', "\U0001F600é", ""]),
    })
    wanted = encoding.decoders(t, ["f", "d", "s"])
    got = [encoding.decode_value(b, wanted) for b in encode(t, batch).to_pylist()]
    assert math.isnan(got[0][0]) and got[0][1] == [float("inf"), None] and got[0][2] == '"\\\x00\n\u2028'
    assert got[1][0] == float("-inf") and math.isnan(got[1][1][0]) and got[1][2] == "\U0001F600é"
    assert math.copysign(1, got[2][0]) == -1 and got[2][1] == [] and got[2][2] == ""


def test_decoding_an_undeclared_feature_names_it():
    with pytest.raises(ValueError, match="no feature.*'nope'.*declares a"):
        encoding.decoders(table([("id", "int64")], [("a", "int64")]), ["nope"])


def test_a_value_written_before_a_feature_was_added_reads_that_feature_as_null():
    t = table([("id", "int64")], [("a", "int64"), ("new", "string")])
    assert encoding.decode_value(b'{"a": 1}', encoding.decoders(t, ["new", "a"])) == [None, 1]


# ---- read assembly ------------------------------------------------------------------

def test_ttl_boundary_counts_and_one_microsecond_later_does_not():
    t = table([("id", "int64")], [("a", "int64")], ttl=60)
    event = datetime(2024, 5, 1, 12, tzinfo=UTC)
    stored = [(encoding.datetime_to_micros(event), b'{"a": 5}'), None]
    at_boundary = encoding.build_rows(t, stored, ["a"], event + timedelta(seconds=60))
    assert at_boundary.event_timestamps == [event, None] and at_boundary.values == {"a": [5, None]}
    past = encoding.build_rows(t, stored, ["a"], event + timedelta(seconds=60, microseconds=1))
    assert past.event_timestamps == [None, None] and past.values == {"a": [None, None]}


def test_naive_now_is_utc():
    assert encoding.datetime_to_micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000
    assert encoding.micros_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_an_int_stored_before_widening_to_float_reads_as_float():
    t = table([("id", "int64")], [("a", "float64"), ("b", "list<float32>")])
    got = encoding.decode_value(b'{"a": 5, "b": [1, null]}', encoding.decoders(t, ["a", "b"]))
    assert got == [5.0, [1.0, None]] and type(got[0]) is float and type(got[1][0]) is float


def test_a_key_column_of_the_wrong_arrow_type_is_refused():
    batch = pa.record_batch({"id": pa.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="'id' is declared int64 but the batch holds double"):
        encoding.encode_keys(table([("id", "int64")]), batch)


@pytest.mark.parametrize("json_format", [False, True])
def test_float32_reads_as_its_shortest_decimal(encoder, json_format):
    t = table([("id", "int64")], [("f", "float32"), ("g", "float64")])
    batch = pa.record_batch([pa.array([0.42], pa.float32()), pa.array([0.42], pa.float64())], names=["f", "g"])
    blob = (encoder.encode_json if json_format else encoder.encode)(t, batch).to_pylist()[0]
    assert encoding.decode_value(blob, encoding.decoders(t, ["f", "g"])) == [0.42, 0.42]


# ---- the packed format, and values written before it --------------------------------

GOLDEN = table([("id", "int64")], [("flag", "bool"), ("small", "int32"), ("big", "int64"), ("ratio", "float32"),
                                   ("score", "float64"), ("name", "string"), ("raw", "bytes"), ("seen", "timestamp")])
GOLDEN_ROWS = [
    [True, -2**31, 2**63 - 1, 0.42, -math.inf, "jörg \U0001F600\x00\"", b"\x00\xff",
     datetime(1969, 7, 20, 20, 17, 0, 250, tzinfo=UTC)],
    [None, None, 0, math.nan, None, None, b"", None],
    [False, 7, None, None, -0.0, "", None, datetime(2262, 1, 1, tzinfo=UTC)],
]
GOLDEN_FILE = Path(__file__).resolve().parents[1] / "data" / "online_values_golden.json"


def golden_batch() -> pa.RecordBatch:
    columns = list(zip(*GOLDEN_ROWS))
    return pa.record_batch([pa.array(list(col), ARROW[d]) for col, (_, d) in zip(columns, GOLDEN.features)],
                           names=[n for n, _ in GOLDEN.features])


def golden(kind: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in json.loads(GOLDEN_FILE.read_text())[kind]]


@pytest.mark.parametrize("kind", ["json", "packed_v1"])
def test_values_written_by_earlier_versions_still_read(kind):
    wanted = encoding.decoders(GOLDEN, [n for n, _ in GOLDEN.features])
    got = [encoding.decode_value(blob, wanted) for blob in golden(kind)]
    assert all(same(g, e) for row, expected in zip(got, GOLDEN_ROWS) for g, e in zip(row, expected)), got
    assert math.copysign(1, got[2][4]) == -1


def test_the_packed_format_is_what_format_1_says(encoder):
    """A change to the bytes written needs a new format byte (and this reader kept for 1)."""
    assert encoder.encode(GOLDEN, golden_batch()).to_pylist() == golden("packed_v1")


def test_both_formats_read_alike_after_a_minor_version_adds_reorders_and_widens_features():
    """Old values are read through the newer definition: a new feature reads as null, widened
    ones convert (int32 -> int64, int64 -> float64, float32 -> float64), the order is the
    reader's."""
    newer = table([("id", "int64")], [("added", "string"), ("seen", "timestamp"), ("ratio", "float64"),
                                      ("big", "float64"), ("small", "int64"), ("name", "string")])
    wanted = encoding.decoders(newer, ["added", "seen", "ratio", "big", "small", "name"])
    from_json, from_packed = ([encoding.decode_value(b, wanted) for b in golden(k)] for k in ("json", "packed_v1"))
    assert repr(from_json) == repr(from_packed)
    assert from_packed[0][:5] == [None, GOLDEN_ROWS[0][7], 0.41999998688697815, 9.223372036854776e18, -2**31]
    assert [type(v) for v in from_packed[0][2:5]] == [float, float, int]


def test_a_feature_column_of_another_arrow_type_is_packed_as_stored_and_read_as_declared(encoder):
    t = table([("id", "int64")], [("n", "string"), ("t", "timestamp"), ("x", "float64")])
    batch = pa.record_batch({
        "n": pa.array(["a", None, "a"]).dictionary_encode(),
        "t": pa.array([1_500, None, -2_000], pa.timestamp("ns", tz="UTC")),  # sub-microsecond digits dropped
        "x": pa.array([1, None, 2], pa.int32()),  # read through float64: a float
    })
    blobs = encoder.encode(t, batch).to_pylist()
    assert all(b[:1] == b"\x01" for b in blobs)
    got = [encoding.decode_value(b, encoding.decoders(t, ["n", "t", "x"])) for b in blobs]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert got == [["a", epoch + timedelta(microseconds=1), 1.0], [None, None, None],
                   ["a", epoch - timedelta(microseconds=2), 2.0]]
    assert type(got[0][2]) is float


@pytest.mark.parametrize("blob", [
    b"\x01", b"\x01\x05\x00", b"\x01\x05\x00\x01\x00",  # cut short
    b"\x01\x09\x00\x01\x00\x06\x01a\x00\x02\x00\x00\x00ab",  # a header longer than its fields
    b"\x01\x08\x00\x01\x00\x63\x01a\x00",  # a type code no version wrote
    b"\x01\x08\x00\x01\x00\x06\x01a\x00\x05\x00\x00\x00ab",  # a string longer than the value
    b"\x01\x08\x00\x01\x00\x06\x01a\x00\x02\x00\x00\x00abc",  # bytes after the last one
    b"\x01\x08\x00\x01\x00\x06\x01a\x00\x02\x00\x00\x00\xff\xfe",  # a string that is not UTF-8
    b"hello", b"[1, 2]", b"",
])
def test_a_value_in_neither_format_is_unreadable_not_a_crash(blob):
    """(A JSON array once raised AttributeError out of the read.)"""
    wanted = encoding.decoders(table([("id", "int64")], [("a", "string")]), ["a"])
    assert not encoding.readable(blob, wanted)
    with pytest.raises(encoding.UnreadableValue):
        encoding.decode_value(blob, wanted)


def test_a_hand_made_packed_value_reads_as_format_1_describes():
    """The layout docs/decisions.md describes, byte by byte (the invalid values above are it cut)."""
    t = table([("id", "int64")], [("a", "string"), ("b", "int32")])
    blob = b"\x01\x08\x00\x01\x00\x06\x01a\x00\x02\x00\x00\x00ab"
    assert encoding.decode_value(blob, encoding.decoders(t, ["b", "a"])) == [None, "ab"]


def test_an_empty_batch_and_a_column_of_nulls_pack(encoder):
    t = table([("id", "int64")], [("a", "int64"), ("s", "string"), ("b", "bool")])
    empty = pa.record_batch({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string()), "b": pa.array([], pa.bool_())})
    assert encoder.encode(t, empty).to_pylist() == []
    nulls = pa.record_batch({"a": pa.nulls(2, pa.int64()), "s": pa.nulls(2, pa.string()), "b": pa.nulls(2, pa.bool_())})
    wanted = encoding.decoders(t, ["a", "s", "b"])
    assert [encoding.decode_value(v, wanted) for v in encoder.encode(t, nulls).to_pylist()] == [[None] * 3] * 2


def test_a_feature_added_after_a_packed_value_reads_as_null_beside_fixed_width_features_only(encoder):
    """Reading a new feature and only fixed-width stored ones of a value that also holds a
    string (the string is not sliced out then) raised IndexError in `featurectl serve` and
    `get-online` after a minor version added a feature."""
    before = table([("id", "int64")], [("trips", "int64"), ("city", "string")])
    blob = encoder.encode(before, pa.record_batch({"trips": [7], "city": ["Oslo"]})).to_pylist()[0]
    after = table([("id", "int64")], [("trips", "int64"), ("city", "string"), ("extra", "int64")])
    assert encoding.decode_value(blob, encoding.decoders(after, ["extra", "trips"])) == [None, 7]
    assert encoding.decode_value(blob, encoding.decoders(after, ["extra"])) == [None]
    assert encoding.decode_value(blob, encoding.decoders(after, ["city", "extra"])) == ["Oslo", None]


def test_reads_of_one_view_share_a_decoder_that_follows_each_values_layout(encoder):
    """`build_rows` keeps one decoder per (table, features) across reads (and threads): a read
    whose values were written with another layout (before a minor version added a feature and
    reordered them), or as JSON, must read each value by its own layout, read after read."""
    before = table([("id", "int64")], [("trips", "int64"), ("city", "string")])
    after = table([("id", "int64")], [("city", "string"), ("extra", "int64"), ("trips", "int64")])
    old = encoder.encode(before, pa.record_batch({"trips": [7], "city": ["Oslo"]})).to_pylist()[0]
    new = encoder.encode(after, pa.record_batch({"city": ["Rome"], "extra": [1], "trips": [8]})).to_pylist()[0]
    text = encoder.encode_json(after, pa.record_batch({"city": ["Bonn"], "extra": [2], "trips": [9]})).to_pylist()[0]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for stored, expected in [([old], [7]), ([new], [8]), ([old, new, text], [7, 8, 9]), ([text, old], [9, 7])]:
        rows = encoding.build_rows(after, [(0, blob) for blob in stored], ["trips", "extra"], now)
        assert rows.values == {"trips": expected, "extra": [None if b is old else 1 if b is new else 2 for b in stored]}
    assert encoding._decoding(after, ["trips", "extra"]) is encoding._decoding(after, ("trips", "extra"))
