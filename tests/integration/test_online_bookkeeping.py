"""Watermarks and newest event times belong to the online store they describe (SPEC §7, §9):
a new, replaced, deleted, emptied or flushed online store has none, so
`materialize-incremental` fills it from scratch; concurrent runs never move a watermark back."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from featurectl.online.config import SqliteOnlineConfig
from featurectl.online import OnlineTable, create_online_store
from featurectl.online.redis import RedisOnlineStore
from tests.fixtures.repos import cli_env, copy_example_repo, run_featurectl
from tests.integration.test_materialize import BASE, END, Repo, assert_online, hours, ok, watermark

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
TABLE = OnlineTable("p", "v", 1, (("id", "int64"),), (("x", "int64"),), 0)
OTHER = OnlineTable("p", "v", 2, (("id", "int64"),), (("x", "int64"),), 0)
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def open_store(request, tmp_path):
    """open_store() -> a new client on the same online store (SQLite file, private Redis or
    private Redis Cluster)."""
    opened = []

    def open_one():
        if request.param == "sqlite":
            store = create_online_store(SqliteOnlineConfig(path="online.db"), tmp_path)
        elif request.param == "redis":
            store = RedisOnlineStore(request.getfixturevalue("clean_redis"))
        else:
            store = RedisOnlineStore(request.getfixturevalue("clean_redis_cluster").url, cluster=True)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def batch(ids, at) -> pa.RecordBatch:
    at = at if isinstance(at, list) else [at] * len(ids)
    return pa.record_batch({"id": pa.array(ids, pa.int64()), "event_timestamp": pa.array(at, TS),
                            "x": pa.array(ids, pa.int64())})


# -- the store contract ------------------------------------------------------------------------


def test_a_new_store_has_no_watermark_and_no_newest_event(open_store):
    store = open_store()
    assert store.get_watermark(TABLE) is None
    assert store.newest_event_times([TABLE, OTHER]) == [None, None]
    assert store.watermarks([TABLE, OTHER]) == [None, None] and store.watermarks([]) == []


def test_the_watermark_only_moves_forwards_per_view_and_major(open_store):
    store = open_store()
    assert store.advance_watermark(TABLE, T0) == T0
    assert store.advance_watermark(TABLE, T0 - timedelta(days=1)) == T0
    assert store.get_watermark(TABLE) == T0
    assert store.advance_watermark(TABLE, T0 + timedelta(microseconds=1)) == T0 + timedelta(microseconds=1)
    assert store.get_watermark(OTHER) is None
    assert open_store().get_watermark(TABLE) == T0 + timedelta(microseconds=1)  # kept in the store itself
    assert store.watermarks([OTHER, TABLE]) == [None, T0 + timedelta(microseconds=1)]  # in the order asked


def test_every_write_keeps_the_newest_event_time(open_store):
    store = open_store()
    store.write(TABLE, batch([1, 2], [T0, T0 + timedelta(hours=3)]))
    store.write(TABLE, batch([3], T0 - timedelta(days=9)))  # older: the newest stays
    store.write(OTHER, batch([1], T0 - timedelta(days=1)))
    assert store.newest_event_times([TABLE, OTHER]) == [T0 + timedelta(hours=3), T0 - timedelta(days=1)]
    assert store.get_watermark(TABLE) is None  # writing is not materializing a window


def test_concurrent_advances_end_at_the_largest(open_store):
    stores = [open_store() for _ in range(4)]
    marks = [T0 + timedelta(minutes=m) for m in random.Random(7).sample(range(10_000), 200)]

    def advance(store, mine):
        for mark in mine:
            store.advance_watermark(TABLE, mark)

    threads = [threading.Thread(target=advance, args=(s, marks[i::4])) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].get_watermark(TABLE) == max(marks)


def test_each_store_has_its_own_stable_identity(open_store, tmp_path):
    store = open_store()
    assert store.store_id() == open_store().store_id() == store.store_id()
    elsewhere = create_online_store(SqliteOnlineConfig(path="elsewhere.db"), tmp_path)
    try:
        assert elsewhere.store_id() != store.store_id()
    finally:
        elsewhere.close()


def test_delete_table_removes_the_bookkeeping_of_that_namespace_only(open_store):
    store = open_store()
    for table in (TABLE, OTHER):
        store.write(table, batch([1], T0))
        store.advance_watermark(table, T0)
    store.delete_table(TABLE)
    assert store.get_watermark(TABLE) is None and store.newest_event_times([TABLE]) == [None]
    assert store.get_watermark(OTHER) == T0 and store.newest_event_times([OTHER]) == [T0]


# -- through the CLI: an online store that lost its data is refilled ------------------------------


def incremental(repo: Repo, end: datetime = END) -> None:
    ok(run_featurectl("materialize-incremental", end.isoformat(), cwd=repo.root))


def assert_full(repo: Repo) -> None:
    """materialize-incremental END from nothing: user_stats from its ttl (3d) before END, user_shop all."""
    with repo.store() as fs:
        assert_online(fs, repo.users, [(END - timedelta(days=3), END)])
        assert_online(fs, repo.pairs, [(BASE, END)])
        assert watermark(fs, "user_stats") == END and watermark(fs, "user_shop") == END


def sqlite_repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo", {"type": "sqlite", "path": ".featurectl/online.db"})
    ok(run_featurectl("apply", cwd=repo.root))
    incremental(repo)
    assert_full(repo)
    return repo


def test_a_deleted_sqlite_online_store_is_refilled(tmp_path: Path):
    repo = sqlite_repo(tmp_path)
    (repo.root / ".featurectl" / "online.db").unlink()
    incremental(repo)
    assert_full(repo)


def test_an_emptied_sqlite_online_store_is_refilled(tmp_path: Path):
    repo = sqlite_repo(tmp_path)
    (repo.root / ".featurectl" / "online.db").write_bytes(b"")
    incremental(repo)
    assert_full(repo)


def test_switching_the_online_store_to_redis_fills_it_from_scratch(tmp_path: Path, clean_redis: str):
    repo = sqlite_repo(tmp_path)
    config = repo.root / "featurectl.yaml"
    config.write_text(yaml.safe_dump({"project": "shop", "online_store": {"type": "redis", "url": clean_redis}}))
    incremental(repo)
    assert_full(repo)


def test_a_flushed_redis_is_refilled(tmp_path: Path, redis_server, clean_redis: str):
    repo = Repo(tmp_path / "repo", {"type": "redis", "url": clean_redis})
    ok(run_featurectl("apply", cwd=repo.root))
    incremental(repo)
    redis_server.flush()
    with repo.store() as fs:
        assert watermark(fs, "user_stats") is None
    incremental(repo)
    assert_full(repo)


def test_a_flushed_redis_cluster_is_refilled(tmp_path: Path, clean_redis_cluster):
    repo = Repo(tmp_path / "repo", {"type": "redis", "url": clean_redis_cluster.url, "cluster": True})
    ok(run_featurectl("apply", cwd=repo.root))
    incremental(repo)
    assert_full(repo)
    clean_redis_cluster.flush()
    with repo.store() as fs:
        assert watermark(fs, "user_stats") is None and fs.online.newest_event_times([]) == []
    incremental(repo)
    assert_full(repo)


def test_an_incremental_run_continues_from_the_watermark_of_this_store(tmp_path: Path):
    repo = sqlite_repo(tmp_path)
    with repo.store() as fs:
        (run,) = fs.materialize_incremental(END + timedelta(hours=1), views=["user_shop"])
        assert run.start == END
        (status,) = fs.online_status(["user_shop"])
        assert status.watermark == END + timedelta(hours=1)
        newest = max(r["event_timestamp"] for r in repo.pairs.rows)
        assert status.newest_event_timestamp == newest.astimezone(UTC)


def test_a_version_1_registry_upgrades_and_its_online_store_is_refilled(tmp_path: Path):
    """tests/data/registry_v1.db was written by featurectl with schema 1 (watermarks in the
    registry) for example_repo after `apply` and `materialize`."""
    repo = copy_example_repo(tmp_path / "rides")
    (repo / ".featurectl").mkdir()
    shutil.copy(Path(__file__).parents[1] / "data" / "registry_v1.db", repo / ".featurectl" / "registry.db")
    listed = ok(run_featurectl("list", cwd=repo))
    assert "driver_stats" in listed.stdout
    assert "golden" in ok(run_featurectl("history", cwd=repo)).stdout
    ok(run_featurectl("plan", cwd=repo))
    # Its watermarks (2026-12-01T10:10:46.535642) named no online store: they are gone, and
    # each view starts at its ttl before END (driver_stats: 1d).
    ran = ok(run_featurectl("materialize-incremental", "2026-12-01T12:00:00", cwd=repo))
    assert "driver_stats v1" in ran.stdout and "[2026-11-30T12:00:00+00:00, 2026-12-01T12:00:00+00:00)" in ran.stdout
    assert "10:10:46" not in ran.stdout


def test_concurrent_materializations_never_move_the_watermark_back(tmp_path: Path):
    repo = sqlite_repo(tmp_path)
    later = END + timedelta(days=1)
    command = [sys.executable, "-m", "featurectl", "materialize"]
    for _ in range(3):
        procs = [subprocess.Popen([*command, BASE.isoformat(), end.isoformat()], cwd=repo.root, env=cli_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for end in (later, hours(24))]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.stderr.read()
        with repo.store() as fs:
            assert watermark(fs, "user_stats") == later and watermark(fs, "user_shop") == later
