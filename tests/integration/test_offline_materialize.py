"""latest_rows, validate_window and source_rows of every offline engine (DuckDB, Spark), and write_table."""
from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from featurectl.core.errors import UsageError
from featurectl.core.model import Constraints, Feature
from featurectl.offline.base import OfflineStoreError, rows_source
from featurectl.offline.config import DuckdbOfflineConfig
from featurectl.offline import create_offline_store
from featurectl.app.result_files import write_table
from tests.fixtures.offline_stores import engine_param, in_turn, open_offline_store
from tests.integration.test_offline_pit import DRIVER, FEATURES, RIDER, make_view, minutes, random_rows, ref_view
from tests.reference import SOURCE_KINDS, as_utc, latest_in_window, write_source


@pytest.fixture
def store(request, engine, tmp_path):
    return open_offline_store(request, engine, tmp_path, threads=1, memory_limit="256MB")


def latest(store, request, start, end, batch_size=100_000) -> tuple[list[pa.RecordBatch], pa.Table]:
    reader = store.latest_rows(request, start, end, batch_size=batch_size)
    batches = list(reader)
    return batches, pa.Table.from_batches(batches, schema=reader.schema)


def assert_latest(out: pa.Table, request, rows, start, end) -> None:
    keys = [e.join_key for e in request.entities]
    expected = latest_in_window(ref_view(request, rows), start, end)
    got = {tuple(r[k] for k in keys): r for r in out.to_pylist()}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert got[key]["event_timestamp"] == as_utc(want["event_timestamp"])
        for feature in request.features:
            assert got[key][feature] == want[feature], (key, feature)


WINDOWS = [(minutes(-60), minutes(60)),  # everything
           (minutes(10), minutes(20)),  # partial
           (minutes(10), minutes(10)),  # empty
           (minutes(0), minutes(40))]  # rows sit on both whole-minute boundaries


# Every kind of source and zone on both engines: every combination over three seeds on
# DuckDB, each kind once with the zones taken in turn on Spark.
@pytest.mark.parametrize("engine, seed, kind, tz", [
    *(engine_param("duckdb", seed, kind, tz) for seed in range(3) for kind in SOURCE_KINDS
      for tz in (None, "America/New_York")),
    *(engine_param("spark", 0, kind, tz) for kind, tz in in_turn(SOURCE_KINDS, (None, "America/New_York")))],
    indirect=["engine"])
def test_latest_rows_match_oracle(tmp_path, store, engine, seed, kind, tz):
    rng = random.Random(f"{seed}-{kind}-{tz}")
    rows = random_rows(rng, 80)
    request = make_view("stats", write_source(tmp_path, "stats", rows, kind, tz=tz, engine=engine))
    for start, end in WINDOWS:
        _, out = latest(store, request, start, end)
        assert out.column_names == ["driver_id", "event_timestamp", "conv", "trips", "label"]
        assert out.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        assert out.schema.field("conv").type == pa.float32()
        assert_latest(out, request, rows, start, end)


def test_latest_rows_window_boundaries_and_ties(tmp_path, store):
    rows = [
        {"driver_id": 1, "event_timestamp": minutes(10), "created": minutes(10), "conv": 0.25, "trips": 1, "label": "start"},
        {"driver_id": 2, "event_timestamp": minutes(20), "created": minutes(20), "conv": 0.5, "trips": 2, "label": "end"},
        {"driver_id": 3, "event_timestamp": minutes(15), "created": minutes(16), "conv": 1.0, "trips": 3, "label": "late"},
        {"driver_id": 3, "event_timestamp": minutes(15), "created": minutes(15), "conv": 0.0, "trips": 4, "label": "early"},
    ]
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    _, out = latest(store, request, minutes(10), minutes(20))
    by_id = {r["driver_id"]: r["label"] for r in out.to_pylist()}
    assert by_id == {1: "start", 3: "late"}  # start inclusive, end exclusive, created breaks ties


@pytest.mark.parametrize("extra", [None, "file_row_number", "file_index"])
def test_latest_rows_one_row_per_key_on_full_ties_and_with_row_number_columns(tmp_path, store, extra):
    """Parquet sources find winners by row position (DuckDB's file_index/file_row_number);
    a source with a column of either name takes the ranking path. Either way a full tie
    (same key, event and created time) yields exactly one row for the key."""
    rng = random.Random(f"ties-{extra}")
    rows = random_rows(rng, 60)
    rows += [dict(rows[i], conv=float(i), label=f"tie{i}") for i in range(0, 60, 3)]  # full ties
    if extra:
        for i, row in enumerate(rows):
            row[extra] = 1000 + i
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    start, end = minutes(-60), minutes(60)
    _, out = latest(store, request, start, end)
    keys = out.column("driver_id").to_pylist()
    assert len(keys) == len(set(keys)) == len({r["driver_id"] for r in rows})
    candidates: dict = {}
    for row in rows:
        candidates.setdefault(row["driver_id"], []).append(row)
    for got in out.to_pylist():
        best = max(candidates[got["driver_id"]], key=lambda r: (as_utc(r["event_timestamp"]), as_utc(r["created"])))
        tied = [r for r in candidates[got["driver_id"]]
                if (r["event_timestamp"], r["created"]) == (best["event_timestamp"], best["created"])]
        assert got["event_timestamp"] == as_utc(best["event_timestamp"])
        assert (got["conv"], got["label"]) in [(r["conv"], r["label"]) for r in tied]  # exact in float32


def test_latest_rows_composite_key_streams_in_batches(tmp_path, store):
    rows = random_rows(random.Random(9), 400, keys=("driver_id", "rider_id"))
    for i, row in enumerate(rows):  # many distinct pairs so several batches come out
        row["driver_id"] = i % 97
    request = make_view("pairs", write_source(tmp_path, "pairs", rows, "parquet"), entities=(DRIVER, RIDER))
    batches, out = latest(store, request, minutes(-1), minutes(60), batch_size=50)
    assert len(batches) > 1 and max(b.num_rows for b in batches) <= 50 * 2
    assert out.column_names[:3] == ["driver_id", "rider_id", "event_timestamp"]
    assert_latest(out, request, rows, minutes(-1), minutes(60))


# -- validation -----------------------------------------------------------------------------

CHECKED = [
    Feature(name="rate", dtype="float64", constraints=Constraints(min=0, max=1)),
    Feature(name="trips", dtype="int64", nullable=False),
    Feature(name="tier", dtype="string", constraints=Constraints(allowed=["gold", "silver"])),
]


def checked_rows() -> list[dict]:
    good = {"rate": "0.5", "trips": 1, "tier": "gold"}
    rows = [{"driver_id": i, "event_timestamp": minutes(i), **good} for i in range(10)]
    rows[1]["rate"] = "-0.5"  # below min
    rows[2]["rate"] = "1.5"  # above max
    rows[3]["rate"] = "lots"  # not a float64
    rows[4]["trips"] = None  # null in a non-nullable feature
    rows[5]["tier"] = "bronze"  # not allowed
    rows[6]["tier"] = None  # null is allowed: tier is nullable
    rows[7]["rate"] = "1.5"
    rows[9]["rate"] = "7"  # outside the window checked below
    return rows


def test_validate_window_reports_counts_and_samples(tmp_path, store):
    source = write_source(tmp_path, "checked", checked_rows(), "csv", created_field=None)
    request = make_view("checked", source, features=CHECKED)
    report = store.validate_window(request, minutes(0), minutes(9))
    assert not report.ok
    assert report.view == "checked" and report.rows_checked == 9
    assert report.violations == {
        "rate: below min 0": 1, "rate: above max 1": 2, "rate: not a valid float64": 1,
        "trips: null in a non-nullable feature": 1, "tier: not in allowed values": 1,
    }
    assert len(report.samples) == 5
    reasons = {s["violation"] for s in report.samples}
    assert reasons == set(report.violations)  # every failing rule gets a sample
    sample = next(s for s in report.samples if s["violation"] == "tier: not in allowed values")
    assert sample["driver_id"] == 5 and sample["value"] == "bronze"
    assert as_utc(sample["event_timestamp"]) == minutes(5)


def test_validate_window_clean_data_and_list_constraints(tmp_path, store):
    rows = [{"driver_id": i, "event_timestamp": minutes(i), "scores": [0.1 * i, 0.2], "tier": "gold"}
            for i in range(5)]
    features = [Feature(name="scores", dtype="list<float64>", constraints=Constraints(min=0, max=0.35)),
                Feature(name="tier", dtype="string", nullable=False)]
    request = make_view("lists", write_source(tmp_path, "lists", rows, "parquet", created_field=None),
                        features=features)
    clean = store.validate_window(request, minutes(0), minutes(4))
    assert clean.ok and clean.rows_checked == 4 and clean.samples == []
    report = store.validate_window(request, minutes(0), minutes(5))
    assert report.violations == {"scores: above max 0.35": 1}
    assert report.samples[0]["driver_id"] == 4


def pushed(rows: list[dict]) -> pa.Table:
    """Rows as a push hands them over: times as ISO 8601 text, as JSON carries them."""
    return pa.Table.from_pylist([{**r, "event_timestamp": r["event_timestamp"].isoformat(),
                                  "created": r["created"].isoformat()} for r in rows])


@pytest.mark.parametrize("seed", range(3))
def test_pushed_rows_checked_and_their_latest_rows_picked_as_latest_rows_picks_them(tmp_path, store, engine, seed):
    """A push's rows are the source (`rows=`): DuckDB checks them and picks their latest rows in
    one statement, which must pick what `latest_rows` picks (event time, then created time)."""
    rows = random_rows(random.Random(f"push-{seed}"), 120)  # six drivers: many rows per entity
    request = make_view("stats", rows_source("stats", "event_timestamp", "created"))
    start, end = minutes(-60), minutes(60)
    report = store.validate_window(request, start, end, rows=pushed(rows))
    assert report.ok and report.rows_checked == 120
    streamed = store.latest_rows(request, start, end, rows=pushed(rows)).read_all()
    assert_latest(streamed, request, rows, start, end)
    if engine == "duckdb":  # selected while checking; other engines leave it to latest_rows
        assert report.latest.sort_by("driver_id").equals(streamed.sort_by("driver_id"))


@pytest.mark.parametrize("column, value, violation", [
    ("trips", 2.5, "trips: not a whole number, would be rounded to fit int64"),  # a cast would round it
    ("trips", "many", "trips: not a valid int64"),  # a cast would stop on it
    ("conv", None, "conv: null in a non-nullable feature"),
])
def test_one_bad_pushed_row_refuses_them_all_and_selects_none(tmp_path, store, column, value, violation):
    rows = random_rows(random.Random("refused"), 20)
    rows[7][column] = value
    if column == "trips" and isinstance(value, str):
        for row in rows:
            row["trips"] = str(row["trips"])
    features = [Feature(name="conv", dtype="float32", nullable=False), *FEATURES[1:]]
    request = make_view("stats", rows_source("stats", "event_timestamp", "created"), features=features)
    report = store.validate_window(request, minutes(-60), minutes(60), rows=pushed(rows))
    assert report.violations == {violation: 1} and report.latest is None
    assert report.samples[0]["driver_id"] == rows[7]["driver_id"]


# -- write_table ------------------------------------------------------------------------------

def sample_reader() -> pa.RecordBatchReader:
    schema = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        ("conv", pa.float32()), ("label", pa.string())])
    batches = [pa.record_batch([pa.array([i, i + 1]), pa.array([minutes(i), minutes(i + 1)]),
                                pa.array([0.5, None], pa.float32()), pa.array(["a", None])], schema=schema)
               for i in range(0, 6, 2)]
    return pa.RecordBatchReader.from_batches(schema, iter(batches))


def test_write_table_parquet_and_csv(tmp_path):
    expected = sample_reader().read_all()
    assert write_table(sample_reader(), tmp_path / "out.parquet") == 6
    assert pq.read_table(tmp_path / "out.parquet").equals(expected)
    assert write_table(sample_reader(), tmp_path / "out.csv") == 6
    back = pa_csv.read_csv(tmp_path / "out.csv", convert_options=pa_csv.ConvertOptions(
        column_types=expected.schema, strings_can_be_null=True))
    assert back.equals(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]


def test_write_table_rejects_unknown_types_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(UsageError, match="out.json"):
        write_table(sample_reader(), tmp_path / "out.json")
    lists = pa.table({"scores": pa.array([[1.0, 2.0]])})
    with pytest.raises(UsageError, match="out.csv"):
        write_table(pa.RecordBatchReader.from_batches(lists.schema, lists.to_batches()), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_write_table_streams_a_large_reader(tmp_path):
    def batches():
        for i in range(50):
            yield pa.record_batch([pa.array(range(i * 1000, (i + 1) * 1000))], names=["n"])
    reader = pa.RecordBatchReader.from_batches(pa.schema([("n", pa.int64())]), batches())
    assert write_table(reader, tmp_path / "big.parquet") == 50_000
    assert pq.read_table(tmp_path / "big.parquet")["n"].to_pylist() == list(range(50_000))


@pytest.mark.parametrize("started", [False, True], ids=["on first use", "by start()"])
def test_bad_engine_settings_fail_naming_offline_store(tmp_path, started):
    """A database started on a thread (get-historical starts it while it reads the entity file)
    fails where one started on first use does: at the first operation, the same error."""
    rows = random_rows(random.Random(3), 10)
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    store = create_offline_store(DuckdbOfflineConfig(memory_limit="lots"), tmp_path)
    if started:
        store.start()  # type: ignore[attr-defined]
    with pytest.raises(OfflineStoreError, match="cannot start DuckDB with offline_store settings.*offline_store in featurectl.yaml"):
        store.latest_rows(request, minutes(-60), minutes(60))
    store.close()


def test_a_database_started_on_a_thread_serves_every_operation_once_taken(tmp_path):
    rows = random_rows(random.Random(4), 200)
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    store = create_offline_store(DuckdbOfflineConfig(threads=1), tmp_path)
    store.start()  # type: ignore[attr-defined]
    store.start()  # type: ignore[attr-defined]  # a second call starts nothing more
    _, out = latest(store, request, minutes(-600), minutes(600))
    assert_latest(out, request, rows, minutes(-600), minutes(600))
    store.start()  # type: ignore[attr-defined]  # started and taken: nothing to do
    assert store.validate_window(request, minutes(-600), minutes(600)).ok
    store.close()
    closed = create_offline_store(DuckdbOfflineConfig(threads=1), tmp_path)
    closed.start()  # type: ignore[attr-defined]
    closed.close()  # waits for the thread and closes what it started, never used
