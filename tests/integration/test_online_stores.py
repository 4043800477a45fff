"""One contract suite run against every online store backend (SQLite, Redis on a private
server, a private 3-node Redis Cluster)."""
from __future__ import annotations

import asyncio
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
import redis as redis_client
from redis.cluster import RedisCluster

from featurectl.online.config import RedisOnlineConfig, SqliteOnlineConfig
from featurectl.online import OnlineStoreError, OnlineTable, create_online_store, encoding
from featurectl.online.redis import RedisOnlineStore, redact
from tests.fixtures.redis_server import _free_port

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
# Event times close to the real clock (reads inject `now` to test the read-side ttl rule).
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

STATS = OnlineTable("rides", "driver_stats", 1, (("driver_id", "int64"),),
                    (("conv_rate", "float32"), ("trips", "int64"), ("name", "string")), 0)


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = create_online_store(SqliteOnlineConfig(path="nested/dir/online.db"), tmp_path)
        # Two rows per INSERT, so that batches span several statements and a remainder.
        s.rows_per_statement = 2
    elif request.param == "redis":
        # A small chunk size so streaming several script calls per batch is exercised everywhere.
        s = RedisOnlineStore(request.getfixturevalue("clean_redis"), chunk_size=3)
    else:
        s = RedisOnlineStore(request.getfixturevalue("clean_redis_cluster").url, chunk_size=3, cluster=True)
    yield s
    s.close()


def stats_batch(ids, at, conv=None, trips=None, names=None) -> pa.RecordBatch:
    n = len(ids)
    at = at if isinstance(at, list) else [at] * n
    return pa.record_batch({
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array(at, TS),
        "conv_rate": pa.array(conv if conv is not None else [0.5] * n, pa.float32()),
        "trips": pa.array(trips if trips is not None else list(range(n)), pa.int64()),
        "name": pa.array(names if names is not None else [f"d{i}" for i in ids], pa.string()),
    })


def read(store, table, keys, features=None, now=None):
    return store.read(table, keys, features or [f for f, _ in table.features], now or T0 + timedelta(days=1))


# ---- round trip ---------------------------------------------------------------------

ALL = {
    "bool": (pa.bool_(), [True, None, False]),
    "int32": (pa.int32(), [-2**31, None, 2**31 - 1]),
    "int64": (pa.int64(), [-2**63, 0, None]),
    "float32": (pa.float32(), [float("nan"), float("-inf"), None]),
    "float64": (pa.float64(), [0.1, float("inf"), float("nan")]),
    "string": (pa.string(), ["héllo \U0001F600\x00\"\\", "", None]),
    "bytes": (pa.binary(), [b"\x00\xff", None, b""]),
    "timestamp": (TS, [datetime(1969, 7, 20, 20, 17, tzinfo=UTC), None, datetime(2262, 1, 1, tzinfo=UTC)]),
    "list<bool>": (pa.list_(pa.bool_()), [[True, None], [], None]),
    "list<int32>": (pa.list_(pa.int32()), [[1, None, -2], None, []]),
    "list<int64>": (pa.list_(pa.int64()), [[2**62], [None], None]),
    "list<float32>": (pa.list_(pa.float32()), [[float("nan"), 1.5], None, [float("inf")]]),
    "list<float64>": (pa.list_(pa.float64()), [[None, -0.5], [float("nan")], []]),
    "list<string>": (pa.list_(pa.string()), [["a", None, "ü"], [], None]),
    "list<bytes>": (pa.list_(pa.binary()), [[b"\x00", None], None, [b""]]),
    "list<timestamp>": (pa.list_(TS), [[datetime(2020, 1, 1, tzinfo=UTC), None], None, []]),
}


def same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_every_dtype_round_trips_with_nulls_lists_and_nan(store):
    names = [d.replace("<", "_").replace(">", "") for d in ALL]
    table = OnlineTable("rides", "all_types", 1, (("id", "int64"),), tuple(zip(names, ALL)), 0)
    columns = {"id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([T0] * 3, TS)}
    columns.update({n: pa.array(values, typ) for n, (typ, values) in zip(names, ALL.values())})
    assert store.write(table, pa.record_batch(columns)) == 3
    rows = read(store, table, [(1,), (2,), (3,)])
    assert rows.event_timestamps == [T0] * 3
    for name, (typ, values) in zip(names, ALL.values()):
        expected = pa.array(values, typ).to_pylist()  # float32 values as Arrow gives them back
        assert same(rows.values[name], expected), (name, rows.values[name], expected)


def test_only_requested_features_come_back_in_the_requested_order(store):
    store.write(STATS, stats_batch([1], T0, trips=[9], names=["ann"]))
    rows = read(store, STATS, [(1,)], ["name", "trips"])
    assert list(rows.values) == ["name", "trips"] and rows.values == {"name": ["ann"], "trips": [9]}


# ---- newer wins ---------------------------------------------------------------------

def test_an_older_write_never_replaces_a_newer_value_and_an_equal_one_does(store):
    new, old = T0, T0 - timedelta(minutes=5)
    assert store.write(STATS, stats_batch([1, 2], new, trips=[10, 20])) == 2
    assert store.write(STATS, stats_batch([1, 2], old, trips=[11, 21])) == 0
    assert read(store, STATS, [(1,), (2,)]).values["trips"] == [10, 20]
    assert store.write(STATS, stats_batch([1], new, trips=[12])) == 1  # equal time overwrites
    newer = new + timedelta(microseconds=1)
    # Mixed batch: 1 is older than stored, 2 is newer, 3 is new: two written.
    assert store.write(STATS, stats_batch([1, 2, 3], [old, newer, old], trips=[13, 23, 33])) == 2
    rows = read(store, STATS, [(1,), (2,), (3,)])
    assert rows.values["trips"] == [12, 23, 33]
    assert rows.event_timestamps == [new, newer, old]


def test_values_in_the_json_format_of_earlier_versions_read_and_newer_packed_ones_replace_them(store, monkeypatch):
    """A store filled before the packed format holds JSON values: they read as before, and a
    write keeps newer-wins across the two formats (Redis compares the stamps, not the value)."""
    monkeypatch.setattr(encoding.ValueEncoder, "encode", encoding.ValueEncoder.encode_json)  # what they wrote
    store.write(STATS, stats_batch([1, 2], T0, conv=[0.42, 0.5], trips=[3, 4], names=["ann", "bo"]))
    monkeypatch.undo()
    rows = read(store, STATS, [(1,), (2,)])
    assert rows.values == {"conv_rate": [0.42, 0.5], "trips": [3, 4], "name": ["ann", "bo"]}
    later, earlier = T0 + timedelta(minutes=1), T0 - timedelta(minutes=1)
    assert store.write(STATS, stats_batch([1, 2], [later, earlier], conv=[0.25, 0.75], trips=[30, 40])) == 1
    rows = read(store, STATS, [(1,), (2,)])
    assert rows.values == {"conv_rate": [0.25, 0.5], "trips": [30, 4], "name": ["d1", "bo"]}
    assert rows.event_timestamps == [later, T0]


def test_a_key_twice_in_one_batch_leaves_its_newest_row_and_the_last_of_equal_ones(store):
    """As if each row were written in turn: Redis compares each key with what is stored in bulk,
    so the store keeps one row per key of the batch first."""
    new, old = T0, T0 - timedelta(minutes=5)
    store.write(STATS, stats_batch([4], new, trips=[40]))
    store.write(STATS, stats_batch([1, 1, 2, 2, 3, 5, 5, 4], [new, old, old, new, old, new, new, old],
                                   trips=[10, 11, 20, 21, 30, 50, 51, 41]))
    rows = read(store, STATS, [(1,), (2,), (3,), (4,), (5,)])
    assert rows.values["trips"] == [10, 21, 30, 40, 51]
    assert rows.event_timestamps == [new, new, old, new, new]
    # Keys that are not one integer column are compared encoded: a composite key repeated.
    pairs = OnlineTable("rides", "pairs", 1, (("driver_id", "int64"), ("city", "string")), (("trips", "int64"),), 0)
    store.write(pairs, pa.record_batch({
        "driver_id": pa.array([1, 1, 1, 2], pa.int64()), "city": pa.array(["a", "a", "b", "a"]),
        "event_timestamp": pa.array([new, old, old, old], TS), "trips": pa.array([1, 2, 3, 4])}))
    assert read(store, pairs, [(1, "a"), (1, "b"), (2, "a")]).values["trips"] == [1, 3, 4]


def test_an_empty_batch_writes_nothing(store):
    assert store.write(STATS, stats_batch([], T0)) == 0


# ---- ttl ----------------------------------------------------------------------------

def test_ttl_on_read_with_an_injected_now(store):
    table = OnlineTable("rides", "ttl_view", 1, (("driver_id", "int64"),), (("trips", "int64"),), 3600)
    batch = pa.record_batch({"driver_id": pa.array([1, 2]), "event_timestamp": pa.array([T0, T0 - timedelta(hours=2)], TS),
                             "trips": pa.array([1, 2])})
    assert store.write(table, batch) == 2
    boundary = T0 + timedelta(hours=1)  # event time == now - ttl still counts
    rows = store.read(table, [(1,), (2,)], ["trips"], boundary)
    assert rows.values == {"trips": [1, None]} and rows.event_timestamps == [T0, None]
    later = store.read(table, [(1,)], ["trips"], boundary + timedelta(microseconds=1))
    assert later.values == {"trips": [None]} and later.event_timestamps == [None]


def test_ttl_zero_never_expires(store):
    store.write(STATS, stats_batch([1], T0))
    assert read(store, STATS, [(1,)], now=T0 + timedelta(days=3650)).values["trips"] == [0]


# ---- keys and namespaces ------------------------------------------------------------

def test_missing_entities_and_unknown_tables_read_as_none(store):
    store.write(STATS, stats_batch([1], T0))
    rows = read(store, STATS, [(2,), (1,)])
    assert rows.event_timestamps == [None, T0]
    assert rows.values == {"conv_rate": [None, 0.5], "trips": [None, 0], "name": [None, "d1"]}
    never = OnlineTable("rides", "never_written", 1, (("driver_id", "int64"),), (("x", "int64"),), 0)
    assert read(store, never, [(1,)]).values == {"x": [None]}


def test_composite_string_and_bytes_keys(store):
    table = OnlineTable("rides", "pairs", 1, (("driver_id", "int32"), ("city", "string"), ("tag", "bytes")),
                        (("trips", "int64"),), 0)
    keys = [(1, "a\x00", b""), (1, "a", b"\x00"), (1, "Zürich \U0001F600", b"\xff"), (2, "a", b"\x00")]
    batch = pa.record_batch({
        "driver_id": pa.array([k[0] for k in keys], pa.int32()),
        "city": pa.array([k[1] for k in keys]), "tag": pa.array([k[2] for k in keys], pa.binary()),
        "event_timestamp": pa.array([T0] * 4, TS), "trips": pa.array([10, 20, 30, 40]),
    })
    assert store.write(table, batch) == 4
    assert read(store, table, list(reversed(keys)) + [(1, "a", b"")]).values["trips"] == [40, 30, 20, 10, None]


def test_a_new_major_version_starts_empty_and_other_namespaces_are_untouched(store):
    store.write(STATS, stats_batch([1], T0, trips=[5]))
    for other in (OnlineTable("rides", "driver_stats", 2, STATS.join_keys, STATS.features, 0),
                  OnlineTable("rides", "other_view", 1, STATS.join_keys, STATS.features, 0),
                  OnlineTable("taxis", "driver_stats", 1, STATS.join_keys, STATS.features, 0)):
        assert read(store, other, [(1,)]).event_timestamps == [None]
    major2 = OnlineTable("rides", "driver_stats", 2, STATS.join_keys, STATS.features, 0)
    store.write(major2, stats_batch([1], T0 - timedelta(days=1), trips=[6]))  # older, but another namespace
    assert read(store, STATS, [(1,)]).values["trips"] == [5]
    assert read(store, major2, [(1,)]).values["trips"] == [6]


def test_request_order_is_kept_with_duplicates(store):
    store.write(STATS, stats_batch([1, 2, 3], T0, trips=[10, 20, 30]))
    rows = read(store, STATS, [(3,), (1,), (3,), (9,), (2,), (1,)], ["trips"])
    assert rows.values["trips"] == [30, 10, 30, None, 20, 10]


def test_delete_table_removes_only_that_namespace(store):
    major2 = OnlineTable("rides", "driver_stats", 2, STATS.join_keys, STATS.features, 0)
    store.write(STATS, stats_batch(list(range(10)), T0))
    store.write(major2, stats_batch([1], T0))
    store.delete_table(STATS)
    assert read(store, STATS, [(1,), (5,)]).event_timestamps == [None, None]
    assert read(store, major2, [(1,)]).event_timestamps == [T0]
    assert store.write(STATS, stats_batch([1], T0 - timedelta(days=9))) == 1  # nothing newer left


def test_a_batch_missing_a_feature_column_is_refused_by_name(store):
    batch = stats_batch([1], T0).drop_columns(["trips"])
    with pytest.raises(ValueError, match="no column 'trips'"):
        store.write(STATS, batch)


def test_the_factory_picks_the_backend_by_type(tmp_path, clean_redis):
    sqlite = create_online_store(SqliteOnlineConfig(path="x/online.db"), tmp_path)
    redis_store = create_online_store(RedisOnlineConfig(type="redis", url=clean_redis), tmp_path)
    try:
        assert type(sqlite).__name__ == "SqliteOnlineStore" and sqlite.path == tmp_path / "x/online.db"
        assert isinstance(redis_store, RedisOnlineStore) and redis_store.url == clean_redis
    finally:
        sqlite.close()
        redis_store.close()


# ---- failures -----------------------------------------------------------------------

def test_redis_dying_between_batches_raises_an_error_naming_the_url(redis_server, clean_redis):
    store = RedisOnlineStore(clean_redis, chunk_size=100)
    try:
        assert store.write(STATS, stats_batch(list(range(500)), T0)) == 500
        redis_server.kill()
        with pytest.raises(OnlineStoreError) as failure:
            store.write(STATS, stats_batch(list(range(500)), T0 + timedelta(seconds=1)))
        assert clean_redis in str(failure.value) and "redis-server" in str(failure.value)
        with pytest.raises(OnlineStoreError, match="reading view 'driver_stats'"):
            read(store, STATS, [(1,)])
    finally:
        store.close()
        redis_server.start()


def test_an_unreachable_redis_names_the_url_without_its_password():
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    store = RedisOnlineStore(url)
    try:
        with pytest.raises(OnlineStoreError) as failure:
            store.write(STATS, stats_batch([1], T0))
        message = str(failure.value)
        assert "hunter2" not in message and "redis://:***@127.0.0.1:" in message and "online_store.url" in message
    finally:
        store.close()


def test_redact_keeps_user_host_and_port():
    assert redact("redis://u:p@h:1/2") == "redis://u:***@h:1/2"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_redis_reloads_its_scripts_after_a_script_flush(clean_redis):
    store = RedisOnlineStore(clean_redis, chunk_size=2)
    try:
        store.write(STATS, stats_batch([1], T0))
        read(store, STATS, [(1,)])
        redis_client.Redis.from_url(clean_redis).script_flush()
        assert store.write(STATS, stats_batch([1, 2, 3, 4, 5], T0)) == 5
        assert read(store, STATS, [(5,), (1,)]).values["trips"] == [4, 0]
    finally:
        store.close()


def test_a_redis_connection_the_server_closed_between_calls_is_reconnected_not_an_error(clean_redis):
    """The store keeps one connection per thread (not a pool checkout per call); one the server
    closed meanwhile (its idle timeout, CLIENT KILL, a restart) must be reconnected before use,
    as the pool does, or the first read after it fails."""
    store = RedisOnlineStore(clean_redis)
    raw = redis_client.Redis.from_url(clean_redis)
    try:
        store.write(STATS, stats_batch([1, 2], T0))
        assert read(store, STATS, [(2,)]).values["trips"] == [1]
        for _ in range(2):  # after each write and read: the thread's one connection is closed
            assert raw.client_kill_filter(_type="normal", skipme=True) >= 1
            assert read(store, STATS, [(1,), (2,)]).values["trips"] == [0, 1]
            assert store.write(STATS, stats_batch([3], T0)) == 1
    finally:
        store.close()
        raw.close()


def _mget_calls(url: str) -> int:
    with redis_client.Redis.from_url(url) as raw:
        return int(raw.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


def _gather(store, *reads, now):
    """read_batched of each request's reads, all awaited at once on one event loop (as a server
    worker's concurrent requests are); an error comes back in the request's place."""
    async def main():
        return await asyncio.gather(*(store.read_batched(r, now) for r in reads), return_exceptions=True)
    return asyncio.run(main())


MAJOR2 = OnlineTable("rides", "driver_stats", 2, STATS.join_keys, STATS.features, 0)


def test_concurrent_reads_on_one_event_loop_share_one_mget_and_each_gets_its_own_rows(redis_store):
    """The server's Redis reads: the keys of every request a worker has in hand go in one MGET
    (one round trip between them); each request must still get exactly its own rows: newer-wins,
    majors side by side, missing entities, repeated keys, the features it asked for."""
    store, _ = redis_store()
    now = T0 + timedelta(days=1)
    store.write(STATS, stats_batch([1, 2, 3], T0, trips=[10, 20, 30]))
    store.write(STATS, stats_batch([2], T0 - timedelta(hours=1), trips=[99]))  # older: never wins
    store.write(MAJOR2, stats_batch([1], T0, trips=[7]))
    requests = [
        [(STATS, [(2,), (4,)], ["trips"])],
        [(STATS, [(1,)], ["trips", "name"]), (MAJOR2, [(1,), (2,)], ["trips"])],
        [(STATS, [(3,), (3,), (1,)], ["name"])],
    ]
    before = 0 if store.cluster else _mget_calls(store.url)
    answers = _gather(store, *requests, now=now)
    if not store.cluster:  # a cluster's reads go per slot, as `read` sends them
        assert _mget_calls(store.url) - before == 1
    for reads, rows in zip(requests, answers):
        assert [(r.event_timestamps, r.values) for r in rows] == \
            [(e.event_timestamps, e.values) for e in (read(store, t, k, f, now) for t, k, f in reads)]
    assert answers[0][0].values == {"trips": [20, None]}
    assert answers[1][1].values == {"trips": [7, None]}
    assert answers[2][0].values == {"name": ["d3", "d3", "d1"]}


def test_a_redis_outage_fails_every_read_of_a_batch_and_the_next_batch_reconnects(redis_server, clean_redis):
    store = RedisOnlineStore(clean_redis, timeout=2)
    raw = redis_client.Redis.from_url(clean_redis)
    now = T0 + timedelta(days=1)
    requests = [[(STATS, [(1,)], ["trips"])], [(STATS, [(2,), (1,)], ["trips"])]]
    try:
        store.write(STATS, stats_batch([1, 2], T0, trips=[5, 6]))
        assert [rows[0].values for rows in _gather(store, *requests, now=now)] == [{"trips": [5]}, {"trips": [6, 5]}]
        raw.client_kill_filter(_type="normal", skipme=True)  # the server closed the loop thread's connection
        assert [rows[0].values for rows in _gather(store, *requests, now=now)] == [{"trips": [5]}, {"trips": [6, 5]}]
        redis_server.kill()
        failed = _gather(store, *requests, now=now)
        assert all(isinstance(f, OnlineStoreError) and clean_redis in str(f) and "'driver_stats'" in str(f)
                   for f in failed), failed
        redis_server.start()
        store.write(STATS, stats_batch([1], T0, trips=[8]))
        assert [rows[0].values for rows in _gather(store, *requests, now=now)] == [{"trips": [8]}, {"trips": [None, 8]}]
    finally:
        store.close()
        raw.close()
        redis_server.start()


def test_a_read_left_waiting_by_a_loop_that_stopped_does_not_block_the_next_loop(clean_redis):
    """A loop stopped between queueing a read and its MGET callback (a shutdown) must not leave
    the thread's queue looking busy: the next loop's reads would wait for a flush never scheduled."""
    store = RedisOnlineStore(clean_redis)
    now = T0 + timedelta(days=1)
    try:
        store.write(STATS, stats_batch([1], T0, trips=[5]))
        stopped = asyncio.new_event_loop()

        async def queue_and_stop():
            stopped.stop()  # the loop ends before the MGET callback runs
            await store.read_batched([(STATS, [(1,)], ["trips"])], now)

        stopped.create_task(queue_and_stop())
        stopped.run_forever()
        stopped.close()
        answer = asyncio.run(asyncio.wait_for(store.read_batched([(STATS, [(1,)], ["trips"])], now), 5))
        assert answer[0].values == {"trips": [5]}
    finally:
        store.close()


def test_a_lone_read_is_answered_after_one_loop_turn_and_a_cancelled_leader_still_reads_for_the_others(clean_redis):
    """At one request in flight the batch costs one loop turn (the first read yields once, then
    sends the MGET and goes on), not two (a callback turn, then a future's). The first read of a
    batch sends it: cancelled while it yields, the reads queued behind it are still answered."""
    store = RedisOnlineStore(clean_redis)
    now = T0 + timedelta(days=1)

    async def lone():
        read = asyncio.ensure_future(store.read_batched([(STATS, [(1,)], ["trips"])], now))
        turns = 0
        while not read.done():
            turns += 1
            await asyncio.sleep(0)
        return turns, read.result()

    async def cancelled_leader():
        leader = asyncio.ensure_future(store.read_batched([(STATS, [(1,)], ["trips"])], now))
        follower = asyncio.ensure_future(store.read_batched([(STATS, [(2,)], ["trips"])], now))
        await asyncio.sleep(0)  # the leader has queued and yields; the follower has joined
        leader.cancel()
        return await asyncio.gather(leader, follower, return_exceptions=True)

    try:
        store.write(STATS, stats_batch([1, 2], T0, trips=[5, 6]))
        turns, rows = asyncio.run(lone())
        assert (turns, rows[0].values) == (2, {"trips": [5]})  # this loop's own turn, then the read's one
        leader, follower = asyncio.run(asyncio.wait_for(cancelled_leader(), 5))
        assert isinstance(leader, asyncio.CancelledError) and follower[0].values == {"trips": [6]}
    finally:
        store.close()


def test_a_foreign_value_fails_only_the_request_of_a_batch_that_reads_it(clean_redis):
    store = RedisOnlineStore(clean_redis)
    raw = redis_client.Redis.from_url(clean_redis)
    now = T0 + timedelta(days=1)
    try:
        store.write(STATS, stats_batch([1], T0, trips=[5]))
        raw.set(encoding.key_prefix(STATS) + b"2", b"not featurectl's")
        mine, theirs = _gather(store, [(STATS, [(1,)], ["trips"])], [(STATS, [(2,)], ["trips"])], now=now)
        assert mine[0].values == {"trips": [5]}
        assert isinstance(theirs, OnlineStoreError) and "holds a value featurectl did not write" in str(theirs)
    finally:
        store.close()
        raw.close()


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_store(request):
    """make(**options) -> a RedisOnlineStore on a private server or cluster, and a raw client of it."""
    opened = []

    def make(**options):
        if request.param == "redis":
            url = request.getfixturevalue("clean_redis")
            store, raw = RedisOnlineStore(url, **options), redis_client.Redis.from_url(url)
        else:
            url = request.getfixturevalue("clean_redis_cluster").url
            store, raw = RedisOnlineStore(url, cluster=True, **options), RedisCluster.from_url(url)
        opened.extend([store, raw])
        return store, raw

    yield make
    for item in opened:
        item.close()


TTL_VIEW = OnlineTable("rides", "ttl_view", 1, (("driver_id", "int64"),), (("trips", "int64"),), 3600)


def ttl_batch(at: datetime, trips: int = 1) -> pa.RecordBatch:
    return pa.record_batch({"driver_id": pa.array([1]), "event_timestamp": pa.array([at], TS),
                            "trips": pa.array([trips])})


def value_keys(raw) -> list[bytes]:
    """The value keys (strings) of TTL_VIEW, on a server or across a cluster's nodes."""
    return [k for k in raw.scan_iter(match="fc:*ttl_view*") if raw.type(k) == b"string"]


def test_redis_keys_do_not_expire_by_default_and_a_rewrite_clears_an_old_expiry(redis_store):
    """The view's ttl is applied when reading; a Redis-side expiry at event time + ttl would drop
    values still served after a ttl increase (docs/decisions.md)."""
    store, raw = redis_store()
    store.write(TTL_VIEW, ttl_batch(T0 - timedelta(days=30)))
    (key,) = value_keys(raw)
    assert raw.pttl(key) == -1  # no expiry
    raw.pexpire(key, 3_600_000)  # as featurectl before 0.x wrote them: event time + ttl
    assert store.write(TTL_VIEW, ttl_batch(T0 - timedelta(days=29), trips=2)) == 1
    assert raw.pttl(key) == -1
    assert read(store, TTL_VIEW, [(1,)], now=T0 - timedelta(days=29)).values == {"trips": [2]}


def test_key_ttl_seconds_expires_keys_that_long_after_their_last_write(redis_store):
    store, raw = redis_store(key_ttl_seconds=600)
    store.write(TTL_VIEW, ttl_batch(T0 - timedelta(days=30)))  # long past the view's ttl: kept anyway
    (key,) = value_keys(raw)
    assert 595_000 < raw.pttl(key) <= 600_000
    assert store.write(TTL_VIEW, ttl_batch(T0 - timedelta(days=31))) == 0  # older: refused, expiry kept
    assert raw.pttl(key) <= 600_000


def test_an_identical_record_is_left_in_place_and_counted_as_written(redis_store):
    """A repeated window rewrites nothing it would not change (a third of the script's server
    time); an expiry put on the key from outside shows that it was left in place."""
    store, raw = redis_store()
    store.write(TTL_VIEW, ttl_batch(T0))
    (key,) = value_keys(raw)
    raw.pexpire(key, 3_600_000)
    assert store.write(TTL_VIEW, ttl_batch(T0)) == 1
    assert raw.pttl(key) > 0  # not rewritten
    assert store.write(TTL_VIEW, ttl_batch(T0, trips=2)) == 1  # same time, another value: rewritten
    assert raw.pttl(key) == -1
    assert read(store, TTL_VIEW, [(1,)], now=T0).values == {"trips": [2]}


def test_an_identical_rewrite_without_key_ttl_seconds_clears_an_expiry_written_with_it(redis_store):
    """Identical records are skipped only in a group no expiring write has touched: after
    key_ttl_seconds is dropped from the config, rewriting the window clears every key's expiry,
    whichever write came first."""
    expiring, raw = redis_store(key_ttl_seconds=600)
    plain, _ = redis_store()
    expiring.write(TTL_VIEW, ttl_batch(T0))  # the group's first write sets an expiry
    (key,) = value_keys(raw)
    assert plain.write(TTL_VIEW, ttl_batch(T0)) == 1
    assert raw.pttl(key) == -1
    other = replace(TTL_VIEW, major=2)
    plain.write(other, ttl_batch(T0))  # the group's first write sets none, then one with an expiry
    assert expiring.write(other, ttl_batch(T0)) == 1
    (key2,) = [k for k in value_keys(raw) if k != key]
    assert 0 < raw.pttl(key2) <= 600_000
    assert plain.write(other, ttl_batch(T0)) == 1
    assert raw.pttl(key2) == -1


def test_a_key_of_another_type_fails_the_write_before_its_chunk_writes_anything(redis_store):
    store, raw = redis_store(chunk_size=1_000)
    store.write(STATS, stats_batch([9], T0))
    (key,) = [k for k in raw.scan_iter(match="fc:*driver_stats*") if raw.type(k) == b"string"]
    raw.delete(key)
    raw.hset(key, "x", "1")  # entity 9's key now holds a hash that featurectl did not write
    with pytest.raises(OnlineStoreError, match="another type"):
        store.write(STATS, stats_batch([1, 9, 3], T0))
    assert raw.type(key) == b"hash"
    if not store.cluster:  # one chunk: nothing of it was written (on a cluster 1 and 3 are other buckets)
        assert read(store, STATS, [(1,), (3,)]).values["trips"] == [None, None]


def test_key_ttl_seconds_is_checked_in_the_config():
    assert RedisOnlineConfig(type="redis", key_ttl_seconds=86400).key_ttl_seconds == 86400
    for bad in (0, -5, 10**12):
        with pytest.raises(ValueError, match="key_ttl_seconds"):
            RedisOnlineConfig(type="redis", key_ttl_seconds=bad)


def test_sqlite_with_an_unusable_path_names_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OnlineStoreError, match=f"{blocker}.*online_store.path"):
        create_online_store(SqliteOnlineConfig(path="a_file/online.db"), tmp_path)


def test_sqlite_on_a_file_that_is_not_a_database_names_the_path(tmp_path):
    (tmp_path / "online.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(OnlineStoreError, match=f"{tmp_path / 'online.db'}.*online_store.path"):
        store = create_online_store(SqliteOnlineConfig(path="online.db"), tmp_path)
        store.write(STATS, stats_batch([1], T0))


def test_sqlite_disk_full_mid_batch_keeps_every_entity_old_and_names_the_file(tmp_path):
    store = create_online_store(SqliteOnlineConfig(path="online.db"), tmp_path)
    try:
        assert store.write(STATS, stats_batch(list(range(100)), T0, trips=[1] * 100)) == 100
        # A real SQLITE_FULL: cap the file a few pages above its current size for this connection.
        pages = store._con.execute("PRAGMA page_count").fetchone()[0]
        store._con.execute(f"PRAGMA max_page_count = {pages + 3}")
        newer = T0 + timedelta(seconds=1)
        with pytest.raises(OnlineStoreError, match=f"{tmp_path / 'online.db'}.*full.*disk has space"):
            store.write(STATS, stats_batch(list(range(20_000)), newer, trips=[2] * 20_000))
        rows = read(store, STATS, [(0,), (99,), (100,), (19_999,)], ["trips"])
        assert rows.values["trips"] == [1, 1, None, None] and rows.event_timestamps == [T0, T0, None, None]
    finally:
        store.close()


def test_sqlite_rewrites_in_statements_of_100_rows_whose_journal_stays_in_memory(tmp_path):
    """A push rewrites ~1,000 random stored keys. Each upsert statement keeps the pages it
    changes in a statement journal: on disk (SQLite's default) that was a temporary file of ~4 MB
    created, written and unlinked at every push, and 1,000 rows per statement made glibc give
    the memory back and fault it in again at each push. In memory, 100 rows a statement."""
    store = create_online_store(SqliteOnlineConfig(path="online.db"), tmp_path)
    try:
        ids = list(range(5_000))
        assert store.write(STATS, stats_batch(ids, T0, trips=[1] * 5_000, names=["x" * 300] * 5_000)) == 5_000
        assert store._con.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        statements: list[str] = []
        store._con.set_trace_callback(statements.append)
        newer = sorted(random.Random(3).sample(ids, 1_000), reverse=True)  # out of key order
        assert store.write(STATS, stats_batch(newer, T0 + timedelta(seconds=1), trips=[2] * 1_000)) == 1_000
        store._con.set_trace_callback(None)
        inserts = [s for s in statements if s.startswith('INSERT INTO "fc:')]  # as run: values bound
        assert len(inserts) == 10 and all(s.count("),(x'") == 99 for s in inserts)
        rows = read(store, STATS, [(i,) for i in ids], ["trips"])
        chosen = set(newer)
        assert rows.values["trips"] == [2 if i in chosen else 1 for i in ids]
    finally:
        store.close()


def test_sqlite_new_stores_use_2048_byte_pages_and_an_existing_store_keeps_its_own(tmp_path):
    """A push upserts ~1,000 random keys of ~180-byte rows: each dirties a page the WAL writes
    whole, so a new store takes 2 KiB pages (half the WAL bytes of 4 KiB). A file SQLite already
    laid out keeps its page size (only a VACUUM outside WAL changes it) and works as before."""
    import sqlite3

    store = create_online_store(SqliteOnlineConfig(path="new.db"), tmp_path)
    try:
        assert store.write(STATS, stats_batch([1, 2], T0, trips=[1, 1])) == 2
        assert store._con.execute("PRAGMA page_size").fetchone()[0] == 2048
    finally:
        store.close()

    old = sqlite3.connect(tmp_path / "old.db")  # as an earlier version left it: 4 KiB, WAL, one table
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.close()
    store = create_online_store(SqliteOnlineConfig(path="old.db"), tmp_path)
    try:
        assert store.write(STATS, stats_batch([1, 2], T0, trips=[1, 1])) == 2
        store.close()
        store = create_online_store(SqliteOnlineConfig(path="old.db"), tmp_path)
        assert store._con.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert store.write(STATS, stats_batch([1, 2], T0 - timedelta(seconds=1), trips=[9, 9])) == 0
        assert store.write(STATS, stats_batch([2], T0 + timedelta(seconds=1), trips=[3])) == 1
        rows = read(store, STATS, [(1,), (2,)], ["trips"])
        assert rows.values["trips"] == [1, 3]
    finally:
        store.close()
