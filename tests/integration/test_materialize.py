"""Materialization end to end through the SDK (and the CLI where exit codes matter), on the
SQLite online store, on a private Redis and on a private 3-node Redis Cluster, read back with
get_online_features and checked against the brute-force oracle of tests/reference.py."""
from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis as redis_client
import yaml

from featurectl.app.materialize import EPOCH
from featurectl.core.errors import UsageError
from featurectl.offline.duckdb import DuckDBOfflineStore
from featurectl.online.base import OnlineStoreError, OnlineTable
from featurectl.online.redis import RedisOnlineStore
from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, run_featurectl
from tests.reference import RefView, as_utc, latest_in_window

UTC = timezone.utc
# Data lies in the future of the real clock, and reads here use an injected clock.
BASE = datetime(2030, 6, 1, tzinfo=UTC)
END = BASE + timedelta(hours=48)
FIXED_NOW = END
USERS = range(1, 13)  # 11 and 12 never have data
SHOPS = ("a", "b", "c", "d")  # "d" never has data
TS = pa.timestamp("us", tz="UTC")


def hours(n: float) -> datetime:
    return BASE + timedelta(hours=n)


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- data and repositories -------------------------------------------------------------------


def user_rows(rng: random.Random, n: int = 160) -> list[dict]:
    """Whole-hour event times crowded on few users (event-time ties told apart by distinct
    created times); users 9 and 10 only in the first 12 hours, user 8 only in the last 12."""
    created = rng.sample(range(1, 3000), n)
    rows = []
    for i in range(n):
        user = rng.randint(1, 10)
        low, high = {9: (0, 11), 10: (0, 11), 8: (36, 47)}.get(user, (0, 47))
        ts = hours(rng.randint(low, high))
        rows.append({"user_id": user, "event_timestamp": ts, "created": ts + timedelta(seconds=created[i]),
                     "score": rng.randint(0, 100) / 100, "clicks": rng.randint(0, 500),
                     "rate": round(rng.random(), 2), "tier": rng.choice(["gold", "silver", None]),
                     "tag": f"u{user}-{i}"})
    return rows


def pair_rows(rng: random.Random) -> list[dict]:
    """No created time: (user, shop, event time) is unique so the latest row is well defined."""
    triples = rng.sample(list(itertools.product(range(1, 11), SHOPS[:3], range(48))), 120)
    return [{"user_id": u, "shop_id": s, "event_timestamp": hours(h), "spend": rng.randint(0, 9999) / 100,
             "visits": rng.randint(0, 50), "tag": f"p{u}{s}{h}"} for u, s, h in triples]


USER_SCHEMA = pa.schema([("user_id", pa.int64()), ("event_timestamp", TS), ("created", TS), ("score", pa.float64()),
                         ("clicks", pa.int64()), ("rate", pa.float32()), ("tier", pa.string()), ("tag", pa.string())])
PAIR_SCHEMA = pa.schema([("user_id", pa.int64()), ("shop_id", pa.string()), ("event_timestamp", TS),
                         ("spend", pa.float64()), ("visits", pa.int32()), ("tag", pa.string())])

DEFINITIONS = {
    "entities": [{"name": "user", "join_key": "user_id", "dtype": "int64"},
                 {"name": "shop", "join_key": "shop_id", "dtype": "string"}],
    "sources": [{"name": "user_events", "path": "data/users.parquet", "timestamp_field": "event_timestamp",
                 "created_timestamp_field": "created"},
                {"name": "pair_events", "path": "data/pairs.parquet", "timestamp_field": "event_timestamp"}],
    "feature_views": [
        {"name": "user_stats", "version": "1.0.0", "entities": ["user"], "source": "user_events", "ttl": "3d",
         "owner": "t@example.com",
         "features": [{"name": "score", "dtype": "float64", "constraints": {"min": 0, "max": 1}},
                      {"name": "clicks", "dtype": "int64", "nullable": False},
                      {"name": "rate", "dtype": "float32"},
                      {"name": "tier", "dtype": "string", "constraints": {"allowed": ["gold", "silver"]}},
                      {"name": "tag", "dtype": "string"}]},
        {"name": "user_shop", "version": "1.0.0", "entities": ["user", "shop"], "source": "pair_events",
         "ttl": "0", "owner": "t@example.com",
         "features": [{"name": "spend", "dtype": "float64"}, {"name": "visits", "dtype": "int32"},
                      {"name": "tag", "dtype": "string"}]},
    ],
    "feature_services": [{"name": "shop_ranking", "version": "1.0.0", "owner": "t@example.com",
                          "features": ["user_stats:score", "user_shop:*"]}],
}
USER_FEATURES = ["score", "clicks", "rate", "tier", "tag"]
PAIR_FEATURES = ["spend", "visits", "tag"]


class Repo:
    """A small feature repository in tmp_path, with its data as oracle views."""

    def __init__(self, root: Path, online: dict[str, Any], seed: int = 0) -> None:
        self.root = root
        self.online = online
        rng = random.Random(seed)
        self.users = RefView("user_stats", user_rows(rng), ["user_id"], USER_FEATURES, created_field="created",
                             ttl_seconds=3 * 86400)
        self.pairs = RefView("user_shop", pair_rows(rng), ["user_id", "shop_id"], PAIR_FEATURES)
        (root / "features").mkdir(parents=True)
        (root / "featurectl.yaml").write_text(yaml.safe_dump({"project": "shop", "online_store": online}))
        self.write_definitions(DEFINITIONS)
        self.write_data()

    def write_definitions(self, definitions: dict) -> None:
        (self.root / "features" / "defs.yaml").write_text(yaml.safe_dump(definitions, sort_keys=False))

    def write_data(self) -> None:
        (self.root / "data").mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.users.rows, USER_SCHEMA), self.root / "data" / "users.parquet")
        pq.write_table(pa.Table.from_pylist(self.pairs.rows, PAIR_SCHEMA), self.root / "data" / "pairs.parquet")

    def store(self, clock: Callable[[], datetime] | None = None) -> FeatureStore:
        return FeatureStore(self.root, clock=clock or Clock(FIXED_NOW), actor="tester")


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def online_config(request) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"type": "sqlite", "path": ".featurectl/online.db"}
    if request.param == "redis":
        return {"type": "redis", "url": request.getfixturevalue("clean_redis")}
    return {"type": "redis", "nodes": request.getfixturevalue("clean_redis_cluster").addresses}


@pytest.fixture
def repo(tmp_path: Path, online_config: dict[str, Any]) -> Repo:
    repo = Repo(tmp_path / "repo", online_config)
    with repo.store() as fs:
        fs.apply()
    return repo


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo", {"type": "sqlite", "path": ".featurectl/online.db"})
    with repo.store() as fs:
        fs.apply()
    return repo


@pytest.fixture
def fs(repo: Repo):
    with repo.store() as store:
        yield store


# -- the oracle and reading back -----------------------------------------------------------


Window = tuple[datetime, datetime]


def expected_after(view: RefView, windows: list[Window]) -> dict[tuple, dict]:
    """The online state after materializing `windows` in order: per entity the window's latest
    row replaces the stored one unless the stored one has a newer event time."""
    state: dict[tuple, dict] = {}
    for start, end in windows:
        for key, row in latest_in_window(view, start, end).items():
            if key not in state or as_utc(row["event_timestamp"]) >= as_utc(state[key]["event_timestamp"]):
                state[key] = row
    return state


def all_keys(view: RefView) -> list[tuple]:
    if view.keys == ["user_id"]:
        return [(u,) for u in USERS]
    return list(itertools.product(USERS, SHOPS))


def online_state(fs: FeatureStore, view: RefView) -> dict[tuple, dict | None]:
    """Every key's online values (None: no value), read with get_online_features."""
    keys = all_keys(view)
    columns = fs.get_online_features([f"{view.name}:*"], [dict(zip(view.keys, key)) for key in keys])
    assert list(columns) == [*view.keys, *view.features]
    state = {}
    for i, key in enumerate(keys):
        assert tuple(columns[k][i] for k in view.keys) == key
        values = {f: columns[f][i] for f in view.features}
        state[key] = None if values["tag"] is None else values
    return state


def as_state(view: RefView, rows: dict[tuple, dict]) -> dict[tuple, dict | None]:
    return {key: ({f: rows[key][f] for f in view.features} if key in rows else None) for key in all_keys(view)}


def assert_online(fs: FeatureStore, view: RefView, windows: list[Window]) -> None:
    expected = as_state(view, expected_after(view, windows))
    got = online_state(fs, view)
    wrong = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    assert not wrong, f"{view.name}: (online, expected) differ for {len(wrong)} keys: {wrong}"


def watermark(fs: FeatureStore, view: str, major: int = 1) -> datetime | None:
    value = fs.online.get_watermark(OnlineTable(fs.project, view, major, (), (), 0))
    return None if value is None else as_utc(value)


def runs_by_view(runs) -> dict[str, Any]:
    return {run.view: run for run in runs}


def ok(result, code: int = 0):
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


# -- windows ---------------------------------------------------------------------------------


def test_full_window_matches_the_oracle(repo: Repo, fs: FeatureStore):
    runs = runs_by_view(fs.materialize(BASE, END))
    assert {r.status for r in runs.values()} == {"ok"}
    for view in (repo.users, repo.pairs):
        run = runs[view.name]
        assert run.rows_read == len(view.rows)
        assert run.entities_written == len(latest_in_window(view, BASE, END))
        assert_online(fs, view, [(BASE, END)])
        assert watermark(fs, view.name) == END


def test_partial_windows_include_start_exclude_end_and_strings_are_accepted(repo: Repo, fs: FeatureStore):
    start, end = hours(11), hours(36)  # rows sit exactly on both bounds
    fs.materialize(start.isoformat(), end.isoformat().replace("+00:00", ""))  # no zone: UTC
    for view in (repo.users, repo.pairs):
        assert_online(fs, view, [(start, end)])
    assert online_state(fs, repo.users)[(12,)] is None


def test_incremental_runs_start_at_the_watermark_or_ttl_before_end(repo: Repo, fs: FeatureStore):
    first = runs_by_view(fs.materialize_incremental(hours(20)))
    assert (first["user_stats"].start, first["user_stats"].end) == (hours(20) - timedelta(days=3), hours(20))
    assert first["user_shop"].start == EPOCH  # ttl 0: all time
    second = runs_by_view(fs.materialize_incremental(END))
    assert {(r.start, r.end, r.status) for r in second.values()} == {(hours(20), END, "ok")}
    for view in (repo.users, repo.pairs):
        assert_online(fs, view, [(EPOCH, hours(20)), (hours(20), END)])
        assert watermark(fs, view.name) == END
    assert {r.status for r in fs.materialize_incremental(END)} == {"skipped"}


def test_a_backfill_never_overwrites_newer_values_nor_moves_the_watermark_back(repo: Repo, fs: FeatureStore):
    newer, older = (hours(24), END), (BASE, hours(24))
    fs.materialize(*newer)
    backfill = runs_by_view(fs.materialize(*older))
    for view in (repo.users, repo.pairs):
        # Only entities the newer window did not hold count as written.
        only_older = latest_in_window(view, *older).keys() - latest_in_window(view, *newer).keys()
        assert backfill[view.name].entities_written == len(only_older) > 0
        assert_online(fs, view, [newer, older])
        # ...which is the state one run over the whole span gives.
        assert as_state(view, expected_after(view, [newer, older])) == as_state(view, latest_in_window(view, BASE, END))
        assert watermark(fs, view.name) == END
    # Users 9 and 10 have data only in the older window: the backfill filled them in.
    assert online_state(fs, repo.users)[(9,)] is not None


def test_ttl_on_read_with_the_injected_clock(repo: Repo):
    clock = Clock(FIXED_NOW)
    with repo.store(clock) as fs:
        fs.materialize(BASE, END)
        latest = latest_in_window(repo.users, BASE, END)
        oldest_key = min(latest, key=lambda k: as_utc(latest[k]["event_timestamp"]))
        at = as_utc(latest[oldest_key]["event_timestamp"])
        others = [k for k in latest if as_utc(latest[k]["event_timestamp"]) > at]
        clock.now = at + timedelta(days=3)  # exactly at the boundary: still counts
        state = online_state(fs, repo.users)
        assert state[oldest_key] == as_state(repo.users, latest)[oldest_key]
        clock.now += timedelta(microseconds=1)
        state = online_state(fs, repo.users)
        assert state[oldest_key] is None
        assert all(state[k] is not None for k in others)
        # ttl 0 never expires.
        clock.now = END + timedelta(days=3650)
        assert_online(fs, repo.pairs, [(BASE, END)])


# -- invalid data ----------------------------------------------------------------------------


def add_bad_rows(repo: Repo) -> None:
    """Two rows in the last hours that break user_stats' rules: score above max, null clicks."""
    bad = dict(repo.users.rows[0])
    repo.users.rows += [
        {**bad, "user_id": 3, "event_timestamp": hours(40), "created": hours(41), "score": 1.5, "tag": "bad-max"},
        {**bad, "user_id": 4, "event_timestamp": hours(41), "created": hours(41), "clicks": None, "tag": "bad-null"},
    ]
    repo.write_data()


def test_a_constraint_violation_writes_nothing_of_that_view_and_other_views_run(repo: Repo, fs: FeatureStore):
    fs.materialize(BASE, hours(24))
    add_bad_rows(repo)
    runs = runs_by_view(fs.materialize_incremental(END))
    bad, good = runs["user_stats"], runs["user_shop"]
    assert bad.status == "invalid" and bad.entities_written == 0
    assert bad.report.violations == {"score: above max 1": 1, "clicks: null in a non-nullable feature": 1}
    assert bad.report.rows_checked == sum(hours(24) <= as_utc(r["event_timestamp"]) < END for r in repo.users.rows)
    samples = {(s["user_id"], s["violation"]) for s in bad.report.samples}
    assert samples == {(3, "score: above max 1"), (4, "clicks: null in a non-nullable feature")}
    assert_online(fs, repo.users, [(BASE, hours(24))])  # unchanged
    assert watermark(fs, "user_stats") == hours(24)
    assert good.status == "ok"
    assert_online(fs, repo.pairs, [(BASE, hours(24)), (hours(24), END)])
    assert watermark(fs, "user_shop") == END


def test_invalid_data_through_the_cli_is_exit_1_naming_the_view(repo: Repo):
    add_bad_rows(repo)
    result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), cwd=repo.root), 1)
    assert "user_stats" in result.stderr and "above max 1" in result.stderr
    assert "null in a non-nullable feature" in result.stderr and "sample" in result.stderr and "1.5" in result.stderr
    assert "invalid data in user_stats: nothing of it was written" in result.stderr
    assert "user_shop" in result.stdout and "entities written" in result.stdout
    with repo.store() as fs:
        assert watermark(fs, "user_stats") is None and watermark(fs, "user_shop") == END
        assert set(online_state(fs, repo.users).values()) == {None}


# -- failing writers -------------------------------------------------------------------------


class SmallBatches(DuckDBOfflineStore):
    """The real offline store, streaming a few entities per batch so a run has many batches."""

    def latest_rows(self, request, start, end, batch_size: int = 100_000, rows=None):
        return super().latest_rows(request, start, end, batch_size=3, rows=rows)


class FailingWrites:
    """The real online store; before its `fail_at`th write, `fault` runs (it may break the real
    server, or raise itself)."""

    def __init__(self, inner, fail_at: int, fault: Callable[[], None]) -> None:
        self.inner, self.fail_at, self.fault, self.calls = inner, fail_at, fault, 0

    def write(self, table, batch):
        self._count()
        return self.inner.write(table, batch)

    def write_prepared(self, prepared):  # a store that splits its write (Redis): the same count
        self._count()
        return self.inner.write_prepared(prepared)

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            self.fault()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def raise_store_error() -> None:
    raise OnlineStoreError("injected failure: the store refused batch 3")


def small_batch_store(repo: Repo, fail_at: int | None = None, fault: Callable[[], None] = raise_store_error):
    fs = repo.store()
    fs.offline = SmallBatches(repo.root, fs.offline.config)
    if fail_at is not None:
        fs.online = FailingWrites(fs.online, fail_at, fault)
    return fs


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "featurectl-prefetch"]


def assert_failed_run_is_old_or_new(repo: Repo, fault: Callable[[], None] = raise_store_error,
                                    heal: Callable[[], None] = lambda: None) -> None:
    older, newer = (BASE, hours(24)), (hours(24), END)
    with small_batch_store(repo) as fs:
        fs.materialize(*older)
    with small_batch_store(repo, fail_at=3, fault=fault) as fs:
        (run,) = fs.materialize(*newer, views=["user_shop"])
        assert fs.online.calls >= 3
    heal()
    assert run.status == "failed" and run.error
    with repo.store() as fs:
        old = as_state(repo.pairs, expected_after(repo.pairs, [older]))
        new = as_state(repo.pairs, expected_after(repo.pairs, [older, newer]))
        got = online_state(fs, repo.pairs)
        torn = {k: got[k] for k in got if got[k] not in (old[k], new[k])}
        assert not torn, f"values that are neither the old nor the new one: {torn}"
        changed = [k for k in got if old[k] != new[k]]
        assert any(got[k] == new[k] for k in changed), "the first batches should have been written"
        assert any(got[k] == old[k] for k in changed), "the failing batch should not have been written"
        assert watermark(fs, "user_shop") == hours(24)
    with small_batch_store(repo) as fs:
        (rerun,) = fs.materialize_incremental(END, views=["user_shop"])
        assert rerun.status == "ok" and rerun.start == hours(24)
        assert_online(fs, repo.pairs, [older, newer])
        assert_online(fs, repo.pairs, [(BASE, END)])
        assert watermark(fs, "user_shop") == END


def test_a_writer_failing_mid_run_leaves_old_or_new_values_and_the_watermark(repo: Repo):
    assert_failed_run_is_old_or_new(repo)


def test_a_failed_run_leaves_no_prefetch_thread_behind(repo: Repo):
    before = set(prefetch_threads())
    with small_batch_store(repo, fail_at=2) as fs:
        (run,) = fs.materialize(BASE, END, views=["user_shop"])
    assert run.status == "failed"
    for thread in set(prefetch_threads()) - before:
        thread.join(timeout=5)
    assert not set(prefetch_threads()) - before, "the prefetch thread still holds its DuckDB stream"


def redis_repo(tmp_path: Path, url: str) -> Repo:
    repo = Repo(tmp_path / "repo", {"type": "redis", "url": url})
    with repo.store() as fs:
        fs.apply()
    return repo


def test_redis_out_of_memory_mid_run_leaves_old_or_new_values(tmp_path: Path, clean_redis: str):
    admin = redis_client.Redis.from_url(clean_redis)
    try:
        assert_failed_run_is_old_or_new(
            redis_repo(tmp_path, clean_redis),
            fault=lambda: admin.config_set("maxmemory", 1),  # noeviction: every write is refused
            heal=lambda: admin.config_set("maxmemory", 0))
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()


def test_redis_killed_mid_run_fails_the_view_and_a_rerun_completes(tmp_path: Path, redis_server, clean_redis: str):
    repo = redis_repo(tmp_path, clean_redis)
    with small_batch_store(repo, fail_at=3, fault=redis_server.kill) as fs:
        runs = runs_by_view(fs.materialize(BASE, END))
    assert runs["user_shop"].status == "failed" and clean_redis in runs["user_shop"].error
    assert runs["user_stats"].status == "failed"  # the server is still down for the next view
    redis_server.start()
    with repo.store() as fs:
        assert watermark(fs, "user_shop") is None and watermark(fs, "user_stats") is None
        assert {r.status for r in fs.materialize_incremental(END)} == {"ok"}
        assert_online(fs, repo.pairs, [(EPOCH, END)])
        assert_online(fs, repo.users, [(END - timedelta(days=3), END)])


def test_redis_batches_are_prepared_on_the_reading_thread_in_its_batch_size(tmp_path: Path, clean_redis: str,
                                                                             monkeypatch):
    """The server writes one batch while the next is read and encoded (docs/benchmarks.md)."""
    repo = redis_repo(tmp_path, clean_redis)
    monkeypatch.setattr(RedisOnlineStore, "write_batch_rows", 2)
    threads, prepare = [], RedisOnlineStore.prepare_write

    def spied(self, table, batch):
        threads.append((threading.current_thread().name, batch.num_rows))
        return prepare(self, table, batch)

    monkeypatch.setattr(RedisOnlineStore, "prepare_write", spied)
    with repo.store() as fs:
        runs = runs_by_view(fs.materialize(BASE, END))
        assert {r.status for r in runs.values()} == {"ok"}
        assert_online(fs, repo.pairs, [(BASE, END)])
    assert len(threads) > 2 and {rows for _, rows in threads} <= {1, 2}
    assert {name for name, _ in threads} == {"featurectl-prefetch"}


def test_rows_redis_cannot_hold_fail_the_view_when_found_on_the_reading_thread(tmp_path: Path, clean_redis: str,
                                                                              monkeypatch):
    """A ValueError of `prepare_write` (e.g. a timestamp beyond what the store holds) is the
    view's failure, as from `write`, and the reading thread ends."""
    repo = redis_repo(tmp_path, clean_redis)
    monkeypatch.setattr(RedisOnlineStore, "write_batch_rows", 2)
    calls = []

    def refusing(self, table, batch):
        calls.append(batch.num_rows)
        if len(calls) == 2:
            raise ValueError("event timestamps must lie between the years 385 and 3554")
        return prepare(self, table, batch)

    prepare = RedisOnlineStore.prepare_write
    monkeypatch.setattr(RedisOnlineStore, "prepare_write", refusing)
    before = set(prefetch_threads())
    with repo.store() as fs:
        (run,) = fs.materialize(BASE, END, views=["user_shop"])
        assert run.status == "failed"
        assert run.error == ("cannot write view 'user_shop' to the online store: event timestamps must lie "
                             "between the years 385 and 3554")
        assert watermark(fs, "user_shop") is None
    for thread in set(prefetch_threads()) - before:
        thread.join(timeout=5)
    assert not set(prefetch_threads()) - before


def test_an_unreachable_redis_through_the_cli_is_exit_3_naming_the_url(tmp_path: Path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    repo = redis_repo(tmp_path, url)
    result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), "--views", "user_stats",
                               cwd=repo.root), 3)
    assert url in result.output and "user_stats" in result.output
    assert "redis-server" in result.output  # says how to fix it
    assert "rerun" in result.stderr and "watermarks did not move" in result.stderr


def test_a_missing_source_file_fails_only_its_view(repo: Repo, fs: FeatureStore):
    (repo.root / "data" / "pairs.parquet").unlink()
    runs = runs_by_view(fs.materialize(BASE, END))
    assert runs["user_shop"].status == "bad_source" and "data/pairs.parquet" in runs["user_shop"].error
    assert watermark(fs, "user_shop") is None
    assert runs["user_stats"].status == "ok"
    assert_online(fs, repo.users, [(BASE, END)])


# -- versions and usage ----------------------------------------------------------------------


def test_a_major_bump_reads_from_an_empty_namespace_until_materialized(repo: Repo):
    with repo.store() as fs:
        fs.materialize(BASE, END)
    definitions = yaml.safe_load(yaml.safe_dump(DEFINITIONS))
    definitions["feature_views"][0]["version"] = "2.0.0"
    repo.write_definitions(definitions)
    with repo.store() as fs:
        fs.apply()
        assert set(online_state(fs, repo.users).values()) == {None}
        assert watermark(fs, "user_stats", 2) is None and watermark(fs, "user_stats", 1) == END
        assert_online(fs, repo.pairs, [(BASE, END)])  # other views keep their values
        (run,) = fs.materialize_incremental(END, views=["user_stats"])
        assert run.major == 2 and run.start == END - timedelta(days=3)
        assert_online(fs, repo.users, [(BASE, END)])
        assert watermark(fs, "user_stats", 2) == END


def test_a_minor_bump_keeps_values_and_watermark_and_a_new_feature_reads_null(repo: Repo):
    with repo.store() as fs:
        fs.materialize(BASE, END)
    for row in repo.users.rows:
        row["bonus"] = row["clicks"] * 2
    table = pa.Table.from_pylist(repo.users.rows, USER_SCHEMA.append(pa.field("bonus", pa.int64())))
    pq.write_table(table, repo.root / "data" / "users.parquet")
    definitions = yaml.safe_load(yaml.safe_dump(DEFINITIONS))
    view = definitions["feature_views"][0]
    view["version"] = "1.1.0"
    view["features"].append({"name": "bonus", "dtype": "int64"})
    repo.write_definitions(definitions)
    with repo.store() as fs:
        fs.apply()
        assert watermark(fs, "user_stats") == END  # same major: same namespace and watermark
        old = as_state(repo.users, latest_in_window(repo.users, BASE, END))
        repo.users.features = [*USER_FEATURES, "bonus"]
        expected = as_state(repo.users, latest_in_window(repo.users, BASE, END))
        before = online_state(fs, repo.users)
        assert before == {k: v and {**v, "bonus": None} for k, v in old.items()}
        assert {r.status for r in fs.materialize(BASE, END, views=["user_stats"])} == {"ok"}
        assert online_state(fs, repo.users) == expected


def test_a_ttl_increase_serves_values_written_under_the_shorter_ttl(tmp_path: Path, online_config):
    """TTL_INCREASED is a minor change: same namespace, no rematerialization needed, so values
    written before it must be served for the longer ttl. Real time passes here: Redis used to
    expire each key at event time + the ttl of its write, by its own clock."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    root = tmp_path / "ttl_repo"
    (root / "features").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "featurectl.yaml").write_text(yaml.safe_dump({"project": "ttl", "online_store": online_config}))
    definitions = {
        "entities": [{"name": "user", "join_key": "user_id", "dtype": "int64"}],
        "sources": [{"name": "events", "path": "data/events.parquet", "timestamp_field": "event_timestamp"}],
        "feature_views": [{"name": "recent", "version": "1.0.0", "entities": ["user"], "source": "events",
                           "ttl": "2s", "owner": "t@example.com", "features": [{"name": "n", "dtype": "int64"}]}],
    }
    (root / "features" / "defs.yaml").write_text(yaml.safe_dump(definitions))
    pq.write_table(pa.table({"user_id": [1], "event_timestamp": pa.array([t0], TS), "n": [7]}),
                   root / "data" / "events.parquet")
    clock = Clock(t0 + timedelta(seconds=1))
    with FeatureStore(root, clock=clock, actor="tester") as fs:
        fs.apply()
        fs.materialize(t0, t0 + timedelta(seconds=1))
        assert fs.get_online_features(["recent:n"], [{"user_id": 1}])["n"] == [7]
    definitions["feature_views"][0] |= {"version": "1.1.0", "ttl": "1h"}
    (root / "features" / "defs.yaml").write_text(yaml.safe_dump(definitions))
    with FeatureStore(root, clock=clock, actor="tester") as fs:
        fs.apply()
        wait = (t0 + timedelta(seconds=2.3) - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, wait))  # past the old expiry, well within the new ttl
        clock.now = t0 + timedelta(seconds=3)
        assert fs.get_online_features(["recent:n"], [{"user_id": 1}])["n"] == [7]


@pytest.mark.parametrize("start, end", [(END, END), (END, BASE)])
def test_start_not_before_end_is_a_usage_error(sqlite_repo: Repo, start: datetime, end: datetime):
    with sqlite_repo.store() as fs:
        with pytest.raises(UsageError, match="must be before END"):
            fs.materialize(start, end)
        assert watermark(fs, "user_stats") is None


def test_start_equal_to_end_through_the_cli_is_exit_2(sqlite_repo: Repo):
    result = ok(run_featurectl("materialize", END.isoformat(), END.isoformat(), cwd=sqlite_repo.root), 2)
    assert "START" in result.stderr and "END" in result.stderr and END.isoformat() in result.stderr


def test_a_push_is_one_write_of_the_online_store_all_or_nothing(sqlite_repo: Repo):
    """DuckDB hands a push's latest rows over in several chunks; written chunk by chunk, a store
    failing at the second would keep the first (and a push paid a commit and fsync per chunk)."""
    from featurectl.app.push import push

    n = 50_000
    columns = {"user_id": list(range(1, n + 1)),
               "event_timestamp": [(hours(30) + timedelta(seconds=i)).isoformat() for i in range(n)],
               "score": [0.5] * n, "clicks": [1] * n, "rate": [0.25] * n, "tier": ["gold"] * n, "tag": ["x"] * n}
    with sqlite_repo.store() as fs:
        online = FailingWrites(fs.online, fail_at=2, fault=raise_store_error)
        run = push(fs.project, fs.applied(), fs.offline, online, "user_stats", columns)
        assert (run.status, run.entities_written, online.calls) == ("ok", n, 1), run.error
