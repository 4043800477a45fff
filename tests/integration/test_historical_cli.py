"""`featurectl get-historical` on a copy of example_repo, through the real process, checked
against the brute-force point-in-time oracle of tests/reference.py."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl
from tests.reference import RefView, as_utc, point_in_time

UTC = timezone.utc
DATA_END = datetime(2026, 11, 1, tzinfo=UTC)  # where the committed example data ends
ALL_FEATURES = "driver_stats:*,customer_profile:*,driver_customer_affinity:*"


def ok(result, code: int = 0):
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> Path:
    """One applied copy of example_repo for the module: get-historical only reads it."""
    repo = copy_example_repo(tmp_path_factory.mktemp("historical") / "example_repo")
    with FeatureStore(repo, actor="tester") as fs:
        fs.apply()
    return repo


@pytest.fixture
def run_cli(applied: Path):
    return lambda *args, code=0: ok(run_featurectl(*args, cwd=applied), code)


def example_views(repo: Path) -> list[RefView]:
    """The example data as the oracle reads it, in the order the features are requested."""
    stats = pq.read_table(repo / "data" / "driver_stats.parquet").to_pylist()
    profiles = pcsv.read_csv(repo / "data" / "customer_profile.csv").to_pylist()
    for row in profiles:  # the CSV holds lists as text: "[north, center]"
        row["favourite_areas"] = [part.strip() for part in row["favourite_areas"].strip("[]").split(",")]
    pairs = pq.read_table(repo / "data" / "driver_customer.parquet").to_pylist()
    return [
        RefView("driver_stats", stats, ["driver_id"], ["conv_rate", "acc_rate", "avg_daily_trips", "vehicle_type"],
                created_field="created", ttl_seconds=86400),
        RefView("customer_profile", profiles, ["customer_id"], ["avg_spend", "lifetime_trips", "favourite_areas"],
                ttl_seconds=7 * 86400),
        RefView("driver_customer_affinity", pairs, ["driver_id", "customer_id"], ["trips", "avg_rating"],
                ttl_seconds=30 * 86400),
    ]


def entity_rows() -> pa.Table:
    """Exact hits on hourly rows, times between them, past every ttl, before all data, unknown
    ids, duplicates, and times in another zone; plus a column of the caller's own."""
    at = [DATA_END - timedelta(hours=1), DATA_END - timedelta(hours=5, minutes=30), DATA_END + timedelta(days=2),
          DATA_END + timedelta(days=9), DATA_END - timedelta(days=30), DATA_END - timedelta(hours=1)]
    rows = []
    for i, (driver, customer) in enumerate([(1001, 501), (1002, 502), (1003, 503), (1005, 501), (9999, 501),
                                            (1001, 501), (1004, 777), (1002, 502)]):
        rows.append({"driver_id": driver, "customer_id": customer, "event_timestamp": at[i % len(at)],
                     "request_id": f"r{i}"})
    table = pa.Table.from_pylist(rows, pa.schema([("driver_id", pa.int64()), ("customer_id", pa.int64()),
                                                  ("event_timestamp", pa.timestamp("us", tz="UTC")),
                                                  ("request_id", pa.string())]))
    # The same instants written in another zone: the join is on instants, the column comes back as given.
    zoned = table["event_timestamp"].cast(pa.timestamp("us", tz="America/New_York"))
    return table.set_column(2, "event_timestamp", zoned)


def same(got, want) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-6) or (math.isnan(got) and math.isnan(want))
    return got == want


def assert_features(out: list[dict], expected: list[dict]) -> None:
    assert len(out) == len(expected)
    for i, (got, want) in enumerate(zip(out, expected)):
        for name, value in want.items():
            assert same(got[name], value), f"row {i}: {name} is {got[name]!r}, expected {value!r}"


def test_parquet_output_is_point_in_time_correct_and_keeps_the_entity_rows(applied: Path, run_cli, tmp_path):
    entities = entity_rows()
    pq.write_table(entities, tmp_path / "entities.parquet")
    result = run_cli("get-historical", "--entities", tmp_path / "entities.parquet", "--features", ALL_FEATURES,
                     "--output", tmp_path / "training.parquet")
    assert f"{entities.num_rows} rows" in result.stdout
    out = pq.read_table(tmp_path / "training.parquet")
    views = example_views(applied)
    features = [f for view in views for f in view.features]
    assert out.column_names == [*entities.column_names, *features]
    assert out.select(entities.column_names).equals(entities)  # untouched, in input order
    expected = point_in_time(entities.to_pylist(), views)
    assert_features(out.to_pylist(), expected)
    # The data covers every case the rows were made for.
    assert any(row["conv_rate"] is None and row["avg_spend"] is not None for row in expected)  # past 1d only
    assert any(row["trips"] is not None for row in expected)
    assert any(row["favourite_areas"] for row in expected)
    hourly = {as_utc(r["event_timestamp"]) for r in views[0].rows}
    assert any(as_utc(r["event_timestamp"]) in hourly for r in entities.to_pylist())  # exact hits


def test_parquet_output_dictionary_encodes_all_but_floating_point_columns(applied: Path, run_cli, tmp_path):
    """Floating-point features rarely repeat: their dictionary cost ~40% of the writing and made
    the file larger, so they are written plain; keys, times, strings and lists of strings keep it."""
    entities = entity_rows()
    pq.write_table(entities, tmp_path / "entities.parquet")
    run_cli("get-historical", "--entities", tmp_path / "entities.parquet", "--features", ALL_FEATURES,
            "--output", tmp_path / "training.parquet")
    meta = pq.ParquetFile(tmp_path / "training.parquet").metadata
    group = meta.row_group(0)
    dictionary = {group.column(i).path_in_schema: "RLE_DICTIONARY" in group.column(i).encodings
                  for i in range(group.num_columns)}
    arrow = pq.read_schema(tmp_path / "training.parquet")
    for field in arrow:
        leaf = field.type.value_type if pa.types.is_list(field.type) else field.type
        path = f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name
        assert dictionary[path] is not pa.types.is_floating(leaf), f"{path} ({field.type}): {dictionary[path]}"
    assert {"conv_rate", "avg_spend", "driver_id", "vehicle_type", "favourite_areas.list.element"} <= set(dictionary)


def test_csv_output_with_full_feature_names(applied: Path, run_cli, tmp_path):
    out_file = tmp_path / "training.csv"
    run_cli("get-historical", "--entities", "data/training_entities.csv", "--full-feature-names",
            "--features", "driver_stats:conv_rate,driver_stats:vehicle_type,driver_customer_affinity:*",
            "--output", out_file)
    entities = pcsv.read_csv(applied / "data" / "training_entities.csv")
    out = pcsv.read_csv(out_file)
    names = ["driver_stats__conv_rate", "driver_stats__vehicle_type", "driver_customer_affinity__trips",
             "driver_customer_affinity__avg_rating"]
    assert out.column_names == [*entities.column_names, *names]
    assert out.column("driver_id").to_pylist() == entities.column("driver_id").to_pylist()
    assert out.column("label").to_pylist() == entities.column("label").to_pylist()
    stats, _, pairs = example_views(applied)
    stats.features = ["conv_rate", "vehicle_type"]
    expected = point_in_time(entities.to_pylist(), [stats, pairs], full_feature_names=True)
    assert_features(out.to_pylist(), expected)
    assert all(row["driver_stats__conv_rate"] is not None for row in expected)


def test_timestamp_column_option_ignores_a_column_named_event_timestamp(applied: Path, run_cli, tmp_path):
    entities = entity_rows()
    as_of = entities.column("event_timestamp")
    decoy = pa.array([DATA_END - timedelta(days=40)] * entities.num_rows, pa.timestamp("us", tz="UTC"))
    entities = entities.set_column(2, "event_timestamp", decoy).append_column("as_of", as_of)
    pq.write_table(entities, tmp_path / "entities.parquet")
    run_cli("get-historical", "--entities", tmp_path / "entities.parquet", "--timestamp-column", "as_of",
            "--service", "driver_ranking", "--output", tmp_path / "out.parquet")
    out = pq.read_table(tmp_path / "out.parquet")
    stats, profiles, _ = example_views(applied)
    stats.features = ["conv_rate", "avg_daily_trips"]
    assert out.column_names == [*entities.column_names, *stats.features, *profiles.features]
    assert out.select(entities.column_names).equals(entities)
    expected = point_in_time(entities.to_pylist(), [stats, profiles], timestamp_column="as_of")
    assert_features(out.to_pylist(), expected)
    assert any(row["conv_rate"] is not None for row in expected)


@pytest.mark.parametrize("features, extra, named", [
    ("driver_stats:conv_rate", {"conv_rate": 1.0}, "conv_rate"),  # a feature named like an input column
    ("driver_stats:*", {}, "--timestamp-column"),  # no event_timestamp column in the rows
])
def test_bad_requests_are_exit_2_and_write_no_file(applied: Path, run_cli, tmp_path, features, extra, named):
    rows = [{"driver_id": 1001, "as_of": DATA_END, **extra}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "entities.parquet")
    result = run_cli("get-historical", "--entities", tmp_path / "entities.parquet", "--features", features,
                     "--output", tmp_path / "out.parquet", *(["--timestamp-column", "as_of"] if extra else []), code=2)
    assert named in result.stderr
    assert not list(tmp_path.glob("out.parquet*"))



def test_csv_string_keys_that_look_like_numbers_stay_strings(tmp_path: Path):
    """A CSV has no types: '007' must not become the number 7 (no match, and an altered column)."""
    repo = tmp_path / "zip_repo"
    (repo / "features").mkdir(parents=True)
    (repo / "data").mkdir()
    (repo / "featurectl.yaml").write_text("project: zips\n")
    (repo / "features" / "defs.yaml").write_text(
        "entities: [{name: area, join_key: zip, dtype: string}]\n"
        "sources: [{name: areas, path: data/areas.parquet, timestamp_field: event_timestamp}]\n"
        "feature_views: [{name: area_stats, version: 1.0.0, entities: [area], source: areas, owner: a@b.c,\n"
        "                 features: [{name: homes, dtype: int64}]}]\n")
    at = pa.array([DATA_END] * 3, pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"zip": ["007", "7", "01234"], "event_timestamp": at, "homes": [1, 2, 3]}),
                   repo / "data" / "areas.parquet")
    (repo / "entities.csv").write_text("zip,event_timestamp\n" + "".join(
        f"{z},2026-11-02T00:00:00\n" for z in ("007", "01234", "7")))
    with FeatureStore(repo, actor="tester") as fs:
        fs.apply()
    ok(run_featurectl("get-historical", "--entities", "entities.csv", "--features", "area_stats:homes",
                      "--output", "out.parquet", cwd=repo))
    assert pq.read_table(repo / "out.parquet").to_pylist() == [
        {"zip": "007", "event_timestamp": datetime(2026, 11, 2), "homes": 1},
        {"zip": "01234", "event_timestamp": datetime(2026, 11, 2), "homes": 3},
        {"zip": "7", "event_timestamp": datetime(2026, 11, 2), "homes": 2},
    ]
