"""The one JSON value encoding (render.values): every dtype, lists, None, NaN, ±inf, bytes,
naive and aware timestamps, float32 shortest form; the output is strict JSON."""
from __future__ import annotations

import base64
import json
import math
import struct
from datetime import datetime, timedelta, timezone

import pytest

from featurectl.core.dtypes import SCALARS
from featurectl.render.values import column_encoder, dumps, encode_columns, json_value, rows

NAN, INF = math.nan, math.inf


def f32(x: float) -> float:
    """x rounded to float32, as Arrow's to_pylist hands it: its long double expansion."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def encode(dtype: str, values: list) -> list:
    out = column_encoder(dtype)(values)
    json.dumps(out, allow_nan=False)  # strict JSON every parser accepts
    return out


def test_non_finite_floats_become_protobuf_style_strings():
    columns = {"a": [NAN, 1.0], "b": [[INF, -INF, 1.5], None], "c": [None, None]}
    records = rows(encode_columns(columns, {"a": "float64", "b": "list<float64>", "c": "float64"}))
    assert json.loads(dumps(records)) == [{"a": "NaN", "b": ["Infinity", "-Infinity", 1.5], "c": None},
                                          {"a": 1.0, "b": None, "c": None}]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floats_finite_and_not(dtype):
    assert encode(dtype, [0.5, None, NAN, INF, -INF, 0.0]) == [0.5, None, "NaN", "Infinity", "-Infinity", 0.0]
    assert encode(dtype, []) == []
    assert encode(dtype, [1, 2]) == [1, 2]  # an integer stored before an int -> float widening


def test_a_finite_float_column_is_handed_back_unchanged():
    column = [0.25, 1e300, -3.5]
    assert column_encoder("float64")(column) is column
    assert encode("float64", [1e308, 1e308]) == [1e308, 1e308]  # sums to inf, still finite values


def test_float32_in_its_shortest_round_tripping_form():
    assert encode("float32", [f32(0.42), 0.42, f32(0.1234567), None, f32(3.4e38), NAN]) == \
        [0.42, 0.42, 0.1234567, None, 3.4e38, "NaN"]
    assert encode("float32", [1e300]) == [1e300]  # beyond float32 (stored before a dtype change): as is
    assert encode("list<float32>", [[f32(0.1), None, f32(-INF)], None, []]) == [[0.1, None, "-Infinity"], None, []]
    for x in (0.3, 1 / 3, 123456.789, 1e-40):
        (y,) = encode("float32", [f32(x)])
        assert f32(y) == f32(x) and len(repr(y)) <= 15


def test_bytes_are_base64():
    values = [b"\x00\xffab", b"", None, bytearray(b"x")]
    assert encode("bytes", values) == ["AP9hYg==", "", None, "eA=="]
    assert base64.b64decode(encode("bytes", [b"\x00\xff"])[0]) == b"\x00\xff"
    assert encode("list<bytes>", [[b"a", None], None]) == [["YQ==", None], None]


def test_timestamps_are_iso_utc_with_z():
    aware = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    plus_two = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 1, 2, 3, 4, 5)  # no zone: UTC
    assert encode("timestamp", [aware, plus_two, naive, None, datetime(1970, 1, 1, tzinfo=timezone.utc)]) == [
        "2026-01-02T03:04:05.678901Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", None,
        "1970-01-01T00:00:00Z"]
    assert encode("list<timestamp>", [[naive, None]]) == [["2026-01-02T03:04:05Z", None]]
    assert datetime.fromisoformat(encode("timestamp", [aware])[0]) == aware


@pytest.mark.parametrize("dtype, values", [
    ("bool", [True, False, None]), ("int32", [1, -2, None]), ("int64", [2**62, None]),
    ("string", ["jörg", "", None]), ("list<int64>", [[1, None], None, []]), ("list<string>", [["a"], None]),
    ("list<bool>", [[True], None]),
])
def test_json_native_dtypes_pass_through(dtype, values):
    assert encode(dtype, values) == values


def test_every_dtype_and_its_list_has_an_encoder():
    for dtype in SCALARS:
        assert encode(dtype, [None]) == [None]
        assert encode(f"list<{dtype}>", [None, []]) == [None, []]


def test_values_of_unknown_type_are_encoded_by_what_they_are():
    assert encode_columns({"extra": ["x", 1, NAN, b"a", datetime(2026, 1, 1), [INF], {"k": -INF}]}, {}) == {
        "extra": ["x", 1, "NaN", "YQ==", "2026-01-01T00:00:00Z", ["Infinity"], {"k": "-Infinity"}]}
    assert json_value((1, 2.5)) == [1, 2.5]


def test_rows_keep_column_order_and_request_order():
    assert rows({"id": [3, 1], "v": ["c", "a"]}) == [{"id": 3, "v": "c"}, {"id": 1, "v": "a"}]


def test_dumps_refuses_an_unencoded_nan():
    with pytest.raises(ValueError):
        dumps([NAN])
