"""Pushed rows accepted by Arrow compute (`offline/pushed.py`) are exactly what the DuckDB
engine's own statement accepts and picks: the same latest rows, types and values; whatever the
Arrow side cannot prove goes to DuckDB, which reports it as before."""
from __future__ import annotations

import random
from datetime import timedelta

import pyarrow as pa
import pytest

import featurectl.offline.duckdb as duckdb_engine
from featurectl.core.model import Constraints, Entity, Feature
from featurectl.offline.base import rows_source
from featurectl.offline.config import DuckdbOfflineConfig
from featurectl.offline.duckdb import DuckDBOfflineStore
from featurectl.offline.pushed import proven_latest
from tests.integration.test_offline_pit import DRIVER, RIDER, make_view, minutes

ALL = (minutes(-10**6), minutes(10**6))


@pytest.fixture
def store(tmp_path):
    engine = DuckDBOfflineStore(tmp_path, DuckdbOfflineConfig(type="duckdb", threads=1))
    yield engine
    engine.close()


def by_engine(store, monkeypatch, request, rows, window=ALL):
    """The report of DuckDB's statement alone, the Arrow side switched off."""
    with monkeypatch.context() as patched:
        patched.setattr(duckdb_engine, "proven_latest", lambda *args: None)
        return store.validate_window(request, *window, rows=rows)


def keyed(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


FEATURES = [Feature(name="conv", dtype="float32"), Feature(name="trips", dtype="int64"),
            Feature(name="label", dtype="string"), Feature(name="rate", dtype="float64"),
            Feature(name="small", dtype="int32", nullable=False, constraints=Constraints(min=-5, max=1000)),
            Feature(name="flag", dtype="bool"), Feature(name="unset", dtype="float64")]


def random_push(rng: random.Random, n: int, zoned: bool, created: bool, composite: bool) -> dict[str, list]:
    """A push as JSON gives it: crowded keys, equal event times told apart by created times (or
    not at all: full ties), ints for a float feature, nulls, a column of nulls only."""
    stamps = [minutes(rng.randint(0, 30)) + timedelta(microseconds=rng.choice([0, 0, 500_000, 123_456]))
              for _ in range(n)]
    spell = (lambda t: t.isoformat()) if zoned else (lambda t: t.replace(tzinfo=None).isoformat(sep=rng.choice("T ")))
    df: dict[str, list] = {"driver_id": [rng.randint(1, 8) for _ in range(n)],
                           "event_timestamp": [spell(t) for t in stamps]}
    if composite:
        df["rider_id"] = [rng.choice(["a", "b", "é"]) for _ in range(n)]
    if created:
        df["created"] = [None if rng.random() < 0.2 else spell(t + timedelta(seconds=rng.randint(0, 3)))
                         for t in stamps]
    df |= {"conv": [rng.randint(0, 8) / 7 for _ in range(n)], "trips": [rng.choice([None, 3, 2**40]) for _ in range(n)],
           "label": [rng.choice(["x", "y", None]) for _ in range(n)], "rate": [rng.randint(-3, 2**60) for _ in range(n)],
           "small": [rng.randint(-5, 1000) for _ in range(n)], "flag": [rng.choice([True, False, None]) for _ in range(n)],
           "unset": [None] * n}
    return df


def arrow_rows(df: dict[str, list]) -> pa.Table:
    from featurectl.app.push import _arrow

    return pa.table({name: _arrow(values, name) for name, values in df.items()})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("zoned, created, composite", [(False, True, False), (True, True, False),
                                                       (False, False, False), (True, False, True)])
def test_arrow_accepts_and_picks_what_duckdb_accepts_and_picks(store, monkeypatch, seed, zoned, created, composite):
    rng = random.Random(f"pushed-{seed}-{zoned}-{created}-{composite}")
    rows = arrow_rows(random_push(rng, 300, zoned, created, composite))
    entities = (DRIVER, RIDER) if composite else (DRIVER,)
    request = make_view("stats", rows_source("stats", "event_timestamp", "created" if created else None),
                        entities=entities, features=FEATURES)
    keys = [e.join_key for e in entities]
    proven = proven_latest(request, rows, *ALL)
    assert proven is not None
    report = store.validate_window(request, *ALL, rows=rows)
    reference = by_engine(store, monkeypatch, request, rows)
    assert report.ok and reference.ok and report.rows_checked == reference.rows_checked == 300
    assert report.latest.schema == reference.latest.schema
    if created:  # no full ties: one winner per key
        assert keyed(report.latest, keys).equals(keyed(reference.latest, keys))
    else:  # full ties: either row of a tie may win, with the same key and time
        got, want = keyed(report.latest, keys), keyed(reference.latest, keys)
        assert got.select([*keys, "event_timestamp"]).equals(want.select([*keys, "event_timestamp"]))


# Spellings DuckDB reads and Arrow may refuse (then DuckDB decides), and ones neither reads.
TIMES = ["2026-01-01T00:00:00", "2026-01-01 00:00:00.5", "2026-01-01T00:00:00.123456", "2026-01-01T00:00:00Z",
         "2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00-23:59", "2024-02-29T12:00:00", "1969-12-31T23:59:59.999999",
         "2026-01-01T24:00:00", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00.1234567", "2026-1-01T00:00:00",
         "2026-02-29T00:00:00", "2026-02-30T00:00:00", "2026-01-01T23:59:60", "2026-13-01T00:00:00", "yesterday",
         "infinity", "0000-01-01T00:00:00", "9999-12-31T23:59:59.5", ""]


@pytest.mark.parametrize("stamp", TIMES)
def test_a_timestamp_arrow_reads_is_the_one_duckdb_reads(store, monkeypatch, stamp):
    request = make_view("stats", rows_source("stats", "event_timestamp", None), features=FEATURES[:1])
    rows = arrow_rows({"driver_id": [1, 2], "event_timestamp": ["2026-01-01T00:00:00", stamp], "conv": [0.5, 0.25]})
    window = (minutes(-10**9), minutes(10**9)) if stamp.startswith(("0000", "9999")) else ALL
    reference = by_engine(store, monkeypatch, request, rows, window)
    report = store.validate_window(request, *window, rows=rows)
    proven = proven_latest(request, rows, *window)
    assert (report.violations, report.rows_checked) == (reference.violations, reference.rows_checked)
    if proven is not None:
        assert reference.ok and keyed(proven, ["driver_id"]).equals(keyed(reference.latest, ["driver_id"]))
    elif reference.ok:
        assert keyed(report.latest, ["driver_id"]).equals(keyed(reference.latest, ["driver_id"]))


CONSTRAINED = [Feature(name="conv", dtype="float32", nullable=False, constraints=Constraints(min=0, max=1)),
               Feature(name="small", dtype="int32"),
               Feature(name="level", dtype="string", constraints=Constraints(allowed=["a", "b"]))]


@pytest.mark.parametrize("column, values, proven, violation", [
    ("conv", [0.0, 1.0], True, None),  # on the bounds
    ("conv", [0.5, 1.5], False, "conv: above max 1"),
    ("conv", [-0.5, 0.5], False, "conv: below min 0"),
    ("conv", [0.5, None], False, "conv: null in a non-nullable feature"),
    ("conv", [0.5, 1e300], False, "conv: not a valid float32"),  # beyond float32: DuckDB refuses
    ("small", [1, 2**31], False, "small: not a valid int32"),
    ("small", [1, -(2**31)], True, None),
    ("small", [1, 2.5], False, "small: not a whole number, would be rounded to fit int32"),
    ("small", [1, "two"], False, "small: not a valid int32"),
    ("driver_id", [1, None], False, "driver_id: missing or not a valid int64"),
    ("driver_id", [1, "x"], False, "driver_id: missing or not a valid int64"),
    ("level", ["a", "c"], False, "level: not in allowed values"),  # allowed lists: DuckDB's alone
    ("level", ["a", "b"], False, None),
])
def test_what_arrow_cannot_prove_duckdb_decides_and_reports(store, monkeypatch, column, values, proven, violation):
    df = {"driver_id": [1, 2], "event_timestamp": ["2026-01-01T00:00:00"] * 2, "conv": [0.5, 0.5],
          "small": [1, 2], "level": ["a", "b"], column: values}
    features = CONSTRAINED if column == "level" else CONSTRAINED[:2]
    request = make_view("stats", rows_source("stats", "event_timestamp", None), features=features)
    rows = arrow_rows({k: v for k, v in df.items() if k != "level" or column == "level"})
    assert (proven_latest(request, rows, *ALL) is not None) == proven
    report, reference = store.validate_window(request, *ALL, rows=rows), by_engine(store, monkeypatch, request, rows)
    assert report.violations == reference.violations == ({violation: 1} if violation else {})
    assert report.samples == reference.samples
    if violation is None:
        assert keyed(report.latest, ["driver_id"]).equals(keyed(reference.latest, ["driver_id"]))


def test_rows_outside_the_window_and_mixed_spellings_go_to_duckdb(store, monkeypatch):
    request = make_view("stats", rows_source("stats", "event_timestamp", None), features=FEATURES[:1])
    mixed = arrow_rows({"driver_id": [1, 2], "event_timestamp": ["2026-01-01T00:00:00", "2026-01-01T00:00:00Z"],
                        "conv": [0.5, 0.25]})
    assert proven_latest(request, mixed, *ALL) is None
    assert store.validate_window(request, *ALL, rows=mixed).latest.num_rows == 2
    late = arrow_rows({"driver_id": [1, 2], "event_timestamp": [minutes(5).isoformat(), minutes(50).isoformat()],
                       "conv": [0.5, 0.25]})
    assert proven_latest(request, late, minutes(0), minutes(10)) is None
    report = store.validate_window(request, minutes(0), minutes(10), rows=late)
    assert report.rows_checked == by_engine(store, monkeypatch, request, late, (minutes(0), minutes(10))).rows_checked == 1


def test_bytes_keys_and_list_features_go_to_duckdb():
    keyed_by_bytes = Entity(name="blob", join_key="blob_id", dtype="bytes")
    request = make_view("stats", rows_source("stats", "event_timestamp", None), entities=(keyed_by_bytes,),
                        features=FEATURES[:1])
    rows = arrow_rows({"blob_id": ["a"], "event_timestamp": ["2026-01-01T00:00:00"], "conv": [0.5]})
    assert proven_latest(request, rows, *ALL) is None
    listed = make_view("stats", rows_source("stats", "event_timestamp", None),
                       features=[Feature(name="tags", dtype="list<int64>")])
    rows = arrow_rows({"driver_id": [1], "event_timestamp": ["2026-01-01T00:00:00"], "tags": [[1, 2]]})
    assert proven_latest(listed, rows, *ALL) is None
