"""Point-in-time joins of every offline engine (DuckDB, Spark), checked against the brute-force oracle."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from featurectl.core.errors import UsageError
from featurectl.core.model import Entity, Feature, FeatureView, FileSource
from featurectl.offline.base import InvalidSourceData, SourceDataError, ViewRequest
from tests.fixtures.offline_stores import ENGINES, engine_param, in_turn, open_offline_store
from tests.reference import SOURCE_KINDS, RefView, as_utc, point_in_time, write_source

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DRIVER = Entity(name="driver", join_key="driver_id")
RIDER = Entity(name="rider", join_key="rider_id", dtype="string")
FEATURES = [Feature(name="conv", dtype="float32"), Feature(name="trips", dtype="int64"),
            Feature(name="label", dtype="string")]


def minutes(n: float) -> datetime:
    return BASE + timedelta(minutes=n)


def random_rows(rng: random.Random, n: int, *, keys=("driver_id",), prefix: str = "") -> list[dict]:
    """Rows crowded on few keys and whole minutes, so equal event times (told apart by a
    distinct created time), exact hits and ttl edges all happen often."""
    created = rng.sample(range(1, 10 * n), n)
    rows = []
    for i in range(n):
        ts = minutes(rng.randint(0, 40))
        row = {"driver_id": rng.randint(1, 6)}
        if "rider_id" in keys:
            row["rider_id"] = rng.choice(["a", "b"])
        row |= {"event_timestamp": ts, "created": ts + timedelta(seconds=created[i]),
                f"{prefix}conv": rng.randint(0, 8) / 4, f"{prefix}trips": rng.randint(0, 100),
                f"{prefix}label": rng.choice(["x", "y", None])}
        rows.append(row)
    return rows


def random_entity_rows(rng: random.Random, n: int, *, with_rider: bool = False) -> list[dict]:
    """Ids 1..5 have data, 7 and 8 never do; times land on whole minutes (exact hits)."""
    rows = []
    for _ in range(n):
        row = {"driver_id": rng.choice([1, 2, 3, 4, 5, 7, 8]),
               "event_timestamp": minutes(rng.randint(-2, 45)), "tag": rng.randint(0, 9)}
        if with_rider:
            row["rider_id"] = rng.choice(["a", "b", "c"])
        rows.append(row)
    rows += rng.sample(rows, n // 4)  # duplicate entity rows
    rng.shuffle(rows)
    return rows


def make_view(name: str, source, entities=(DRIVER,), features=FEATURES, ttl: str = "0") -> ViewRequest:
    view = FeatureView(name=name, version="1.0.0", entities=[e.name for e in entities],
                       source=source.name, owner="t@example.com", features=list(features), ttl=ttl)
    return ViewRequest(view, source, tuple(entities), tuple(f.name for f in features))


def ref_view(request: ViewRequest, rows: list[dict]) -> RefView:
    return RefView(name=request.view.name, rows=rows, keys=[e.join_key for e in request.entities],
                   features=list(request.features), created_field=request.source.created_timestamp_field,
                   ttl_seconds=request.view.ttl)


def entity_table(rows: list[dict], tz: str | None) -> pa.Table:
    frame = pd.DataFrame(rows)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["event_timestamp"] = stamps.dt.tz_localize(None) if tz is None else stamps.dt.tz_convert(tz)
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture
def store(request, engine, tmp_path):
    return open_offline_store(request, engine, tmp_path, threads=2)


def run(store, entities: pa.Table, requests, **kwargs) -> pa.Table:
    reader = store.get_historical_features(entities, requests, **kwargs)
    assert isinstance(reader, pa.RecordBatchReader)
    return reader.read_all()


def assert_matches(out: pa.Table, entities: pa.Table, expected: list[dict]) -> None:
    """Input columns come back unchanged and in order; features equal the oracle's."""
    assert out.num_rows == entities.num_rows
    assert out.select(entities.column_names).equals(entities.replace_schema_metadata(None))
    rows = out.to_pylist()
    for i, (got, want) in enumerate(zip(rows, expected)):
        for name, value in want.items():
            if isinstance(value, datetime):
                value = as_utc(value)
            assert got[name] == value, f"row {i} ({got}): {name} is {got[name]!r}, expected {value!r}"


# Every kind of source and zone on both engines: on DuckDB every combination over four seeds,
# on Spark each kind once with the zones taken in turn, so every kind and every zone is run
# (the Spark plan does not depend on the data, and each Spark case costs seconds).
@pytest.mark.parametrize("engine, seed, kind, tz", [
    *(engine_param("duckdb", seed, kind, tz) for seed in range(4) for kind in SOURCE_KINDS
      for tz in (None, "UTC", "Europe/Paris")),
    *(engine_param("spark", 0, kind, tz) for kind, tz in in_turn(SOURCE_KINDS, (None, "UTC", "Europe/Paris")))],
    indirect=["engine"])
def test_random_pit_matches_oracle(tmp_path, store, engine, seed, kind, tz):
    rng = random.Random(f"{seed}-{kind}-{tz}")
    rows = random_rows(rng, 60)
    request = make_view("stats", write_source(tmp_path, "stats", rows, kind, tz=tz, engine=engine),
                        ttl=rng.choice(["0", "5m", "10m"]))
    entity_rows = random_entity_rows(rng, 80)
    entities = entity_table(entity_rows, tz=rng.choice([None, "UTC", "Asia/Tokyo"]))
    out = run(store, entities, [request])
    assert_matches(out, entities, point_in_time(entity_rows, [ref_view(request, rows)]))
    assert out.schema.field("conv").type == pa.float32()
    assert out.schema.field("trips").type == pa.int64()
    assert out.schema.field("label").type == pa.string()


@pytest.mark.parametrize("engine, seed", [engine_param(engine, seed) for engine in ENGINES for seed in range(3)
                                          if engine == "duckdb" or seed == 0], indirect=["engine"])
def test_two_views_and_composite_key(tmp_path, store, engine, seed):
    rng = random.Random(seed)
    plain = random_rows(rng, 50)
    pairs = random_rows(rng, 80, keys=("driver_id", "rider_id"), prefix="p_")
    pair_features = [Feature(name="p_conv", dtype="float64"), Feature(name="p_trips", dtype="int32"),
                     Feature(name="p_label", dtype="string")]
    requests = [
        make_view("stats", write_source(tmp_path, "stats", plain, "parquet"), ttl="7m"),
        make_view("pairs", write_source(tmp_path, "pairs", pairs, "csv"), entities=(DRIVER, RIDER),
                  features=pair_features),
    ]
    entity_rows = random_entity_rows(rng, 100, with_rider=True)
    entities = entity_table(entity_rows, tz="UTC")
    out = run(store, entities, requests)
    expected = point_in_time(entity_rows, [ref_view(requests[0], plain), ref_view(requests[1], pairs)])
    assert_matches(out, entities, expected)
    assert out.schema.field("p_trips").type == pa.int32()
    assert any(row["p_conv"] is not None for row in out.to_pylist())


def test_full_feature_names_and_collisions(tmp_path, store):
    rows = random_rows(random.Random(1), 30)
    a = make_view("a", write_source(tmp_path, "a", rows, "parquet"))
    b = make_view("b", write_source(tmp_path, "b", rows, "parquet"))
    entity_rows = random_entity_rows(random.Random(2), 20)
    entities = entity_table(entity_rows, tz="UTC")
    with pytest.raises(UsageError) as err:
        run(store, entities, [a, b])
    assert "conv" in str(err.value) and "--full-feature-names" in err.value.hint
    out = run(store, entities, [a, b], full_feature_names=True)
    expected = point_in_time(entity_rows, [ref_view(a, rows), ref_view(b, rows)], full_feature_names=True)
    assert_matches(out, entities, expected)
    assert out.column_names[-6:] == ["a__conv", "a__trips", "a__label", "b__conv", "b__trips", "b__label"]
    clash = entities.append_column("trips", pa.array([0] * entities.num_rows))
    with pytest.raises(UsageError, match="'trips'.*entity-row column"):
        run(store, clash, [a])


def test_created_tie_exact_hit_and_ttl_edges(tmp_path, store):
    rows = [
        {"driver_id": 1, "event_timestamp": minutes(10), "created": minutes(12), "conv": 0.5, "trips": 2, "label": "new"},
        {"driver_id": 1, "event_timestamp": minutes(10), "created": minutes(11), "conv": 0.25, "trips": 1, "label": "old"},
        {"driver_id": 2, "event_timestamp": minutes(0), "created": minutes(0), "conv": 1.0, "trips": 3, "label": "edge"},
    ]
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"), ttl="5m")
    at = [minutes(10),  # exact hit, the greater created time wins
          minutes(9),  # before any row of driver 1
          minutes(5),  # driver 2's row is exactly T - ttl: still counts
          minutes(5) + timedelta(microseconds=1)]  # one microsecond later: expired
    entity_rows = [{"driver_id": d, "event_timestamp": t} for d, t in zip([1, 1, 2, 2], at)]
    out = run(store, entity_table(entity_rows, tz=None), [request]).to_pylist()
    assert [r["label"] for r in out] == ["new", None, "edge", None]
    assert [r["trips"] for r in out] == [2, None, 3, None]


def test_timestamp_column_option_and_order(tmp_path, store):
    rows = random_rows(random.Random(5), 40)
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    entity_rows = random_entity_rows(random.Random(6), 50)
    renamed = [{("ts" if k == "event_timestamp" else k): v for k, v in r.items()} for r in entity_rows]
    frame = pd.DataFrame(renamed)
    entities = pa.Table.from_pandas(frame, preserve_index=False)
    out = run(store, entities, [request], timestamp_column="ts")
    assert_matches(out, entities, point_in_time(renamed, [ref_view(request, rows)], timestamp_column="ts"))
    with pytest.raises(UsageError, match="'event_timestamp'"):
        run(store, entities, [request])


def test_missing_key_column_is_a_usage_error(tmp_path, store):
    request = make_view("stats", write_source(tmp_path, "stats", random_rows(random.Random(0), 5), "parquet"))
    entities = pa.table({"event_timestamp": pa.array([BASE])})
    with pytest.raises(UsageError, match="'driver_id'"):
        run(store, entities, [request])


def test_list_and_timestamp_features_cast_to_declared_types(tmp_path, store):
    rows = [{"driver_id": 1, "event_timestamp": minutes(0), "created": minutes(0),
             "scores": [1, 2], "seen": minutes(-5)}]
    features = [Feature(name="scores", dtype="list<float64>"), Feature(name="seen", dtype="timestamp")]
    source = write_source(tmp_path, "lists", rows, "parquet", timestamp_fields=("event_timestamp", "created", "seen"))
    request = make_view("lists", source, features=features)
    out = run(store, pa.table({"driver_id": [1], "event_timestamp": pa.array([minutes(1)])}), [request])
    assert out.schema.field("scores").type.value_type == pa.float64()
    assert out.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert out.to_pylist()[0]["scores"] == [1.0, 2.0]
    assert as_utc(out.to_pylist()[0]["seen"]) == minutes(-5)


def test_missing_file_and_missing_column_name_the_problem(tmp_path, store, engine):
    entities = pa.table({"driver_id": [1], "event_timestamp": pa.array([BASE])})
    ghost = FileSource(name="ghost", path="data/nowhere/*.parquet", timestamp_field="event_timestamp")
    with pytest.raises(SourceDataError) as err:
        run(store, entities, [make_view("v", ghost)])
    assert "ghost" in str(err.value) and "data/nowhere/*.parquet" in str(err.value) and "'v'" in str(err.value)
    rows = [{"driver_id": 1, "event_timestamp": BASE, "conv": 0.5, "trips": 1}]  # no `label`
    partial = write_source(tmp_path, "partial", rows, "parquet", created_field=None)
    with pytest.raises(SourceDataError) as err:
        run(store, entities, [make_view("stats", partial)])
    message = str(err.value)
    assert "'label'" in message and "source 'partial'" in message and "view 'stats'" in message
    bad_query = write_source(tmp_path, "q", rows, "query", created_field=None, engine=engine)
    bad_query = bad_query.model_copy(update={"query": "SELEC nonsense"})
    with pytest.raises(SourceDataError, match="source 'q'"):
        run(store, entities, [make_view("stats", bad_query)])


def test_uncastable_value_is_an_offline_store_error(tmp_path, store):
    rows = [{"driver_id": 1, "event_timestamp": BASE, "conv": "lots", "trips": 1, "label": "x"}]
    request = make_view("stats", write_source(tmp_path, "stats", rows, "csv", created_field=None))
    entities = pa.table({"driver_id": [1], "event_timestamp": pa.array([minutes(1)])})
    with pytest.raises(InvalidSourceData, match="stats.*'lots'|lots.*stats"):
        run(store, entities, [request])


def test_full_ties_keep_one_row_per_entity_row(tmp_path, store):
    """Rows equal in keys and event time, with no created time to tell them apart: any one
    of them may win, but each entity row still comes out exactly once, and whole."""
    tied = [{"driver_id": 1, "event_timestamp": minutes(5), "conv": c, "trips": t, "label": label}
            for c, t, label in [(0.25, 1, "a"), (0.5, 2, "b"), (0.75, 3, "c")]]
    a = make_view("a", write_source(tmp_path, "a", tied, "parquet", created_field=None))
    b = make_view("b", write_source(tmp_path, "b", tied, "csv", created_field=None))
    entity_rows = [{"driver_id": d, "event_timestamp": minutes(m)} for d, m in [(1, 6), (2, 6), (1, 5), (1, 4)]]
    entities = entity_table(entity_rows, tz="UTC")
    out = run(store, entities, [a, b], full_feature_names=True).to_pylist()
    assert [(r["driver_id"], as_utc(r["event_timestamp"])) for r in out] == [
        (r["driver_id"], r["event_timestamp"]) for r in entity_rows]
    for row in (out[0], out[2]):
        for view in ("a", "b"):
            whole = (row[f"{view}__conv"], row[f"{view}__trips"], row[f"{view}__label"])
            assert whole in {(t["conv"], t["trips"], t["label"]) for t in tied}
    assert out[1]["a__conv"] is None and out[3]["b__label"] is None


# -- entity rows given as files the engine reads itself ------------------------------------------


@pytest.fixture
def small_splits(engine, store):
    """On Spark, input splits of ~1 KB: every file of a few dozen rows is read in several
    splits, which Spark packs into tasks biggest first, so numbering rows per task would
    put them out of file order."""
    if engine != "spark":
        yield
        return
    from featurectl.offline.spark import spark_session
    spark = spark_session(store.config)
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1024")
    yield
    spark.conf.set("spark.sql.files.maxPartitionBytes", before)


def write_entity_files(folder, table: pa.Table, sizes: list[int], kind: str) -> list[pa.Table]:
    """`table` cut into files of `sizes` rows, named so that path order is not size order
    (an empty file among them); returns each file's rows as pyarrow reads it back."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    folder.mkdir()
    parts, start = [], 0
    for i, size in enumerate(sizes):
        part = table.slice(start, size)
        start += size
        path = folder / f"part-{i:02d}.{kind}"
        if kind == "parquet":
            pq.write_table(part, path, row_group_size=7)
        else:
            pcsv.write_csv(part, path)
        parts.append(part)
    return parts


@pytest.mark.parametrize("engine, kind", [engine_param(e, k) for e in ENGINES for k in ("parquet", "csv")],
                         indirect=["engine"])
def test_entity_files_come_back_in_path_order_with_duplicates(tmp_path, store, small_splits, engine, kind):
    from featurectl.offline.entity_rows import as_given, entity_files, read_entity_files
    rng = random.Random(f"files-{kind}")
    rows = random_rows(rng, 60)
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"), ttl="10m")
    entity_rows = random_entity_rows(rng, 120)  # duplicates included
    entities = entity_table(entity_rows, tz="UTC" if kind == "csv" else None)
    entities = entities.append_column("note", pa.array([f"n{i % 7}" if i % 5 else None
                                                        for i in range(entities.num_rows)]))
    write_entity_files(tmp_path / "rows", entities, [10, 0, 95, 3, entities.num_rows - 108], kind)
    files = entity_files(tmp_path / "rows" / f"*.{kind}")
    out = store.get_historical_features(files, [request]).read_all()
    given = as_given(read_entity_files(files)[0], files)  # the rows as the driver would read them
    assert_matches(out, given, point_in_time(entity_rows, [ref_view(request, rows)]))
    if kind == "parquet":  # parquet keeps the caller's types, nulls included
        assert out.select(entities.column_names).equals(entities)
    else:  # csv: as pyarrow's csv reader reads the text
        assert out.schema.field("driver_id").type == pa.int64() and out.column("note").null_count == 0
    one = store.get_historical_features(entity_files(tmp_path / "rows" / f"part-02.{kind}"), [request]).read_all()
    assert one.num_rows == 95 and one.slice(0, 95).equals(out.slice(10, 95))


@pytest.mark.parametrize("engine, kind", [engine_param("spark", k) for k in ("parquet", "csv")], indirect=["engine"])
def test_entity_files_named_by_a_uri_come_back_as_from_a_local_path(tmp_path, store, engine, kind):
    """A URI (read by Spark, never listed by the driver) gives the same table as the local path
    of the same files, types included: csv columns typed from the first file's first block as
    pyarrow types a local csv (they once all came back as text)."""
    from featurectl.offline.entity_rows import entity_files
    rng = random.Random(f"uri-{kind}")
    rows = random_rows(rng, 40)
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"), ttl="10m")
    entities = entity_table(random_entity_rows(rng, 50), tz="UTC" if kind == "csv" else None)
    entities = entities.append_column("outcome", pa.array([i % 3 for i in range(entities.num_rows)], pa.int64()))
    write_entity_files(tmp_path / "rows", entities, [20, 30], kind)
    local = store.get_historical_features(entity_files(tmp_path / "rows" / f"*.{kind}"), [request]).read_all()
    uri = store.get_historical_features(entity_files(f"{(tmp_path / 'rows').as_uri()}/*.{kind}"),
                                        [request]).read_all()
    assert uri.equals(local), (uri.schema, local.schema)
    assert local.schema.field("outcome").type == pa.int64() and local.schema.field("driver_id").type == pa.int64()


@pytest.mark.parametrize("engine, kind", [engine_param(e, k) for e in ENGINES for k in ("parquet", "csv")],
                         indirect=["engine"])
def test_a_bad_key_in_an_entity_file_names_the_file_and_its_row(tmp_path, store, small_splits, engine, kind):
    from featurectl.offline.base import EntityRowsError
    from featurectl.offline.entity_rows import entity_files
    request = make_view("stats", write_source(tmp_path, "stats", random_rows(random.Random(0), 10), "parquet"))
    good = pa.table({"driver_id": [str(i) for i in range(40)], "event_timestamp": ["2026-01-01T00:10:00"] * 40})
    bad = good.slice(0, 30).set_column(0, "driver_id", pa.array(
        [str(i) if i not in (17, 25) else "abc" for i in range(30)]))
    write_entity_files(tmp_path / "rows", pa.concat_tables([good, bad]), [40, 30], kind)
    with pytest.raises(EntityRowsError) as err:
        store.get_historical_features(entity_files(tmp_path / "rows" / f"*.{kind}"), [request]).read_all()
    message = str(err.value)
    assert "'driver_id'" in message and "2 value(s)" in message and "int64 join key" in message
    assert f"row 18 of file {tmp_path / 'rows' / f'part-01.{kind}'}" in message and '"abc"' in message
    stamps = pa.table({"driver_id": [1, 2], "event_timestamp": ["2026-01-01T00:10:00", "2026-13-45"]})
    write_entity_files(tmp_path / "one", stamps, [2], kind)
    with pytest.raises(EntityRowsError, match=r"'event_timestamp'.*timestamp.*row 2\b.*2026-13-45"):
        store.get_historical_features(entity_files(tmp_path / "one" / f"part-00.{kind}"), [request]).read_all()


def test_entity_parquet_with_nanosecond_times_comes_back_untouched(tmp_path, store):
    """pandas writes nanosecond timestamps, which Spark refuses as timestamps: they come back to
    the nanosecond, and join as the nearest microsecond (as DuckDB casts them)."""
    import pyarrow.parquet as pq

    from featurectl.offline.entity_rows import entity_files
    rows = [{"driver_id": 1, "event_timestamp": minutes(10), "created": minutes(10), "conv": 0.5, "trips": 2,
             "label": "x"}]
    request = make_view("stats", write_source(tmp_path, "stats", rows, "parquet"))
    at = pd.to_datetime(["2026-01-01 00:09:59.999999501", "2026-01-01 00:09:59.999999499"])
    entities = pa.table({"driver_id": [1, 1], "event_timestamp": pa.array(at, pa.timestamp("ns"))})
    pq.write_table(entities, tmp_path / "rows.parquet")
    out = store.get_historical_features(entity_files(tmp_path / "rows.parquet"), [request]).read_all()
    assert out.select(["driver_id", "event_timestamp"]).equals(entities)
    assert out.column("label").to_pylist() == ["x", None]
