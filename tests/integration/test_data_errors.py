"""Bad data through the CLI: values that do not fit their dtype (SPEC §7), entity files whose
rows do not parse, and data problems that are not store failures. Each exit code and message
is what the user sees; nothing is written on refusal."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurectl.online.base import OnlineTable
from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, run_featurectl

UTC = timezone.utc
AT = datetime(2030, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def ok(result, code: int = 0):
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    assert "unexpected" not in result.output
    return result


def make_repo(root: Path, homes: pa.Array, big: pa.Array | None = None) -> Path:
    """One view `area_stats` keyed by an int64 `area_id`: `homes` int64 and `big` int32."""
    (root / "features").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "featurectl.yaml").write_text("project: areas\n")
    (root / "features" / "defs.yaml").write_text(
        "entities: [{name: area, join_key: area_id, dtype: int64}]\n"
        "sources: [{name: areas, path: data/areas.parquet, timestamp_field: event_timestamp}]\n"
        "feature_views: [{name: area_stats, version: 1.0.0, entities: [area], source: areas, owner: a@b.c,\n"
        "                 features: [{name: homes, dtype: int64}, {name: big, dtype: int32}]}]\n")
    n = len(homes)
    big = big if big is not None else pa.array([1] * n, pa.int64())
    pq.write_table(pa.table({"area_id": pa.array(range(1, n + 1), pa.int64()), "event_timestamp": pa.array([AT] * n, TS),
                             "homes": homes, "big": big}), root / "data" / "areas.parquet")
    ok(run_featurectl("apply", cwd=root))
    return root


def online_homes(root: Path, n: int) -> list:
    with FeatureStore(root) as fs:
        return fs.get_online_features(["area_stats:homes"], [{"area_id": i} for i in range(1, n + 1)])["homes"]


def watermark(root: Path):
    with FeatureStore(root) as fs:
        return fs.online.get_watermark(OnlineTable("areas", "area_stats", 1, (), (), 0))


def entities_file(root: Path, rows: str = "area_id,event_timestamp\n1,2030-01-02T00:00:00\n2,2030-01-02T00:00:00\n",
                  kind: str = "csv") -> Path:
    """The entity rows as csv text, or a parquet file of the same texts (get-historical then
    begins the join on DuckDB's own read of it, `prepare_historical`)."""
    path = root / f"entities.{kind}"
    if kind == "csv":
        path.write_text(rows)
        return path
    header, *lines = rows.splitlines()
    columns = list(zip(*(line.split(",") for line in lines)))
    pq.write_table(pa.table({name: pa.array(values, pa.string()) for name, values in zip(header.split(","), columns)}),
                   path)
    return path


# -- values that do not fit the declared dtype exactly -----------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("homes, big, shown", [
    (pa.array([3.0, 784.7], pa.float64()), None, "784.7"),  # a fraction in an int64 feature
    (pa.array(["3", "784.7"], pa.string()), None, "784.7"),  # the same as text
    (pa.array([3, 4], pa.int64()), pa.array([1, 2**40], pa.int64()), str(2**40)),  # beyond int32
])
def test_a_value_that_does_not_fit_its_dtype_refuses_materialize_and_get_historical(tmp_path, homes, big, shown, kind):
    root = make_repo(tmp_path / "repo", homes, big)
    result = ok(run_featurectl("materialize", "2029-01-01", "2031-01-01", cwd=root), 1)
    assert "area_stats" in result.stderr and shown in result.stderr
    assert "nothing of it was written" in result.stderr
    assert online_homes(root, 2) == [None, None] and watermark(root) is None
    result = ok(run_featurectl("get-historical", "--entities", entities_file(root, kind=kind), "--features",
                               "area_stats:*", "--output", root / "out.parquet", cwd=root), 1)
    assert "area_stats" in result.stderr and shown in result.stderr and "data/areas.parquet" in result.stderr
    assert not list(root.glob("out.parquet*"))


def test_whole_numbers_stored_as_double_are_accepted_exactly(tmp_path):
    root = make_repo(tmp_path / "repo", pa.array([3.0, 784.0], pa.float64()))
    ok(run_featurectl("materialize", "2029-01-01", "2031-01-01", cwd=root))
    assert online_homes(root, 2) == [3, 784]
    ok(run_featurectl("get-historical", "--entities", entities_file(root), "--features", "area_stats:homes",
                      "--output", root / "out.parquet", cwd=root))
    assert pq.read_table(root / "out.parquet").column("homes").to_pylist() == [3, 784]


# -- entity rows that do not parse --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("rows, column, value", [
    ("area_id,event_timestamp\n1,2030-01-02T00:00:00\n2,2026-13-45\n", "event_timestamp", "2026-13-45"),
    ("area_id,event_timestamp\n1,yesterday\n", "event_timestamp", "yesterday"),
    ("area_id,event_timestamp\n1,2030-01-02T00:00:00\nabc,2030-01-02T00:00:00\n", "area_id", "abc"),
    ("area_id,event_timestamp\n1.5,2030-01-02T00:00:00\n", "area_id", "1.5"),
])
def test_entity_rows_that_do_not_parse_are_exit_2_naming_file_column_and_row(tmp_path, rows, column, value, kind):
    root = make_repo(tmp_path / "repo", pa.array([3, 4], pa.int64()))
    path = entities_file(root, rows, kind)
    result = ok(run_featurectl("get-historical", "--entities", path, "--features", "area_stats:homes",
                               "--output", root / "out.parquet", cwd=root), 2)
    assert str(path) in result.stderr and f"'{column}'" in result.stderr and value in result.stderr
    row = 1 + next(i for i, line in enumerate(rows.splitlines()[1:]) if value in line)
    assert f"row {row}:" in result.stderr
    assert not list(root.glob("out.parquet*"))


# -- durations beyond what the stores hold ------------------------------------------------------


@pytest.mark.parametrize("command", [("validate",), ("plan",), ("apply",)])
def test_a_ttl_beyond_what_the_stores_hold_is_refused_before_anything_runs(tmp_path, command):
    root = make_repo(tmp_path / "repo", pa.array([3, 4], pa.int64()))
    defs = root / "features" / "defs.yaml"
    defs.write_text(defs.read_text().replace("owner: a@b.c,", "owner: a@b.c, ttl: 1000000d,"))
    result = ok(run_featurectl(*command, cwd=root), 2)
    assert "defs.yaml" in result.stderr and "area_stats" in result.stderr and "ttl" in result.stderr
    assert "1000000d" in result.stderr and "36500d" in result.stderr


# -- data problems are not store failures -----------------------------------------------------------


def test_a_missing_source_file_or_column_is_exit_2_saying_nothing_was_written(tmp_path):
    root = make_repo(tmp_path / "repo", pa.array([3, 4], pa.int64()))
    source = root / "data" / "areas.parquet"
    table = pq.read_table(source)
    pq.write_table(table.drop_columns(["big"]), source)  # a feature's column is missing
    for command in (("materialize", "2029-01-01", "2031-01-01"),
                    ("get-historical", "--entities", entities_file(root), "--features", "area_stats:*",
                     "--output", root / "out.parquet")):
        result = ok(run_featurectl(*command, cwd=root), 2)
        assert "'big'" in result.output and "nothing" in result.stderr.lower()
        assert "some entities may already hold" not in result.output
    source.unlink()
    result = ok(run_featurectl("materialize", "2029-01-01", "2031-01-01", cwd=root), 2)
    assert "data/areas.parquet" in result.output and "nothing of it was written" in result.stderr
    assert online_homes(root, 2) == [None, None] and watermark(root) is None
    assert not list(root.glob("out.parquet*"))
