"""get-online --format json must be JSON every parser accepts (no bare NaN/Infinity)."""
import json
import math

from featurectl.cli.data import _finite


def test_non_finite_floats_become_protobuf_style_strings():
    records = [{"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": None}]
    text = json.dumps(_finite(records), allow_nan=False)
    assert json.loads(text) == [{"a": "NaN", "b": ["Infinity", "-Infinity", 1.5], "c": None}]
