"""What only a Redis Cluster online store has to get right, on a real local 3-node cluster
(tests/fixtures/redis_cluster.py): hash-tagged keys spread over every node, slots that move
(MOVED, ASK, TRYAGAIN) between and during writes, a node restarting or down mid-run, and its
configuration. The contract suites (test_online_stores.py, test_materialize.py,
test_online_bookkeeping.py) run on the cluster too."""
from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from redis.crc import key_slot

from featurectl.online import OnlineStoreError, OnlineTable
from featurectl.online.redis import RedisOnlineStore
from tests.fixtures.redis_cluster import RedisClusterServers
from tests.integration.test_materialize import (BASE, END, Repo, assert_failed_run_is_old_or_new, assert_online,
                                                 ok, runs_by_view, small_batch_store, watermark)
from tests.fixtures.repos import run_featurectl

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
TABLE = OnlineTable("rides", "driver_stats", 1, (("driver_id", "int64"),), (("trips", "int64"),), 0)


def batch(ids, at, trips=None) -> pa.RecordBatch:
    return pa.record_batch({"driver_id": pa.array(ids, pa.int64()), "event_timestamp": pa.array([at] * len(ids), TS),
                            "trips": pa.array(trips if trips is not None else list(ids), pa.int64())})


def trips(store: RedisOnlineStore, ids) -> list:
    return store.read(TABLE, [(i,) for i in ids], ["trips"], T0 + timedelta(days=1)).values["trips"]


@pytest.fixture
def cluster(clean_redis_cluster: RedisClusterServers) -> RedisClusterServers:
    return clean_redis_cluster


@pytest.fixture
def store(cluster: RedisClusterServers):
    s = RedisOnlineStore(cluster.url, cluster=True, chunk_size=50)
    yield s
    s.close()


def value_key(store: RedisOnlineStore, entity: int) -> bytes:
    return store._space.key(TABLE, (entity,))[0]


# ---- keys ---------------------------------------------------------------------------------


def test_a_batch_spreads_over_every_node_and_each_bucket_keeps_its_bookkeeping_in_its_slot(cluster, store):
    assert store.write(TABLE, batch(range(3000), T0)) == 3000
    sizes = []
    for node in cluster.nodes:
        with node.client() as client:
            sizes.append(client.dbsize())
            for key in client.scan_iter(match="fc:{rides:driver_stats:v1:*", count=1000):
                tag = key[key.index(b"{") + 1:key.index(b"}")]
                assert tag.startswith(b"rides:driver_stats:v1:") and len(tag.rsplit(b":", 1)[1]) == 2
                assert key_slot(key) == key_slot(b"fc:{" + tag + b"}")  # value and bucket hash: one slot
    assert all(size > 500 for size in sizes), sizes  # on all three nodes:
    assert sum(sizes) == 3000 + 256 + 1  # values, bucket hashes and the store id
    assert trips(store, [2999, 0, 1500, 3000]) == [2999, 0, 1500, None]
    assert store.newest_event_times([TABLE]) == [T0]


# ---- slots that move ---------------------------------------------------------------------


def test_a_slot_moved_between_writes_is_followed_by_reads_and_writes(cluster, store):
    """MOVED: the store's slot map is stale after a reshard; its next commands are redirected."""
    assert store.write(TABLE, batch(range(200), T0)) == 200
    slot = key_slot(value_key(store, 7))
    source = cluster.node_of_slot(slot)
    target = next(n for n in cluster.nodes if n is not source)
    cluster.move_slot(slot, target)
    assert cluster.node_of_key(value_key(store, 7)) is target
    assert trips(store, [7, 8, 199]) == [7, 8, 199]
    newer = T0 + timedelta(hours=1)
    assert store.write(TABLE, batch(range(200), newer, trips=[i + 1000 for i in range(200)])) == 200
    assert store.write(TABLE, batch([7], T0, trips=[-1])) == 0  # older: still refused after the move
    assert trips(store, [7, 8, 199]) == [1007, 1008, 1199]
    assert store.newest_event_times([TABLE]) == [newer]
    with target.client() as client:
        assert client.exists(value_key(store, 7))


def test_a_slot_in_the_middle_of_a_migration_is_followed_with_ask_and_tryagain(cluster, store):
    """During a migration the source answers ASK for a group whose keys all moved, and TRYAGAIN
    for one split between the nodes (until the migration ends): both are re-sent."""
    assert store.write(TABLE, batch(range(200), T0)) == 200
    slot = key_slot(value_key(store, 7))
    source = cluster.node_of_slot(slot)
    target = next(n for n in cluster.nodes if n is not source)
    cluster.begin_migration(slot, source, target)
    try:
        assert cluster.migrate_keys(slot, source, target) > 1  # every key moved, the slot still MIGRATING: ASK
        assert trips(store, [7, 8]) == [7, 8]
        assert store.write(TABLE, batch(range(200), T0 + timedelta(hours=1), trips=[i + 1000 for i in range(200)])) == 200
        assert trips(store, [7]) == [1007]
        with source.client() as client:  # written on the target, after ASKING
            assert value_key(store, 7) not in client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000)
        cluster.finish_migration(slot, target)
        # Move them back half way: the slot's keys are split, so its scripts get TRYAGAIN until
        # the migration is finished (here, a moment later, by another thread).
        cluster.begin_migration(slot, target, source)
        assert cluster.migrate_keys(slot, target, source, count=1) == 1
        finisher = threading.Timer(0.5, lambda: (cluster.migrate_keys(slot, target, source),
                                                 cluster.finish_migration(slot, source)))
        finisher.start()
        started = time.monotonic()
        assert store.write(TABLE, batch(range(200), T0 + timedelta(hours=2), trips=[i + 2000 for i in range(200)])) == 200
        finisher.join()
        assert time.monotonic() - started >= 0.4  # it waited for the migration
    finally:
        cluster.heal()
    assert trips(store, [7, 8, 199]) == [2007, 2008, 2199]
    assert cluster.node_of_key(value_key(store, 7)) is source


# ---- nodes that go away --------------------------------------------------------------------


def cluster_repo(tmp_path: Path, cluster: RedisClusterServers) -> Repo:
    repo = Repo(tmp_path / "repo", {"type": "redis", "nodes": cluster.addresses})
    with repo.store() as fs:
        fs.apply()
    return repo


def test_a_node_down_mid_run_leaves_old_or_new_values_and_the_watermark(tmp_path: Path, cluster):
    """A node crashes (its snapshot kept, as with persistence) before the run's third batch: the
    run fails, every entity holds its old or its new value, the watermark stays, and a rerun
    after the node is back completes."""
    victim = cluster.nodes[1]
    assert_failed_run_is_old_or_new(cluster_repo(tmp_path, cluster), fault=victim.save_and_kill, heal=cluster.heal)


def test_a_node_restarted_mid_run_is_reconnected_and_the_run_completes(tmp_path: Path, cluster):
    repo = cluster_repo(tmp_path, cluster)
    victim = cluster.nodes[2]

    def restart() -> None:
        victim.save_and_kill()
        victim.start()  # same port, same nodes.conf: it rejoins with its slots and its data

    with small_batch_store(repo, fail_at=3, fault=restart) as fs:
        runs = runs_by_view(fs.materialize(BASE, END))
    assert {r.status for r in runs.values()} == {"ok"}, {v: r.error for v, r in runs.items()}
    cluster.heal()
    with repo.store() as fs:
        assert_online(fs, repo.pairs, [(BASE, END)])
        assert_online(fs, repo.users, [(BASE, END)])
        assert watermark(fs, "user_shop") == END and watermark(fs, "user_stats") == END


def test_a_node_down_through_the_cli_is_exit_3_naming_the_node(tmp_path: Path, cluster):
    repo = cluster_repo(tmp_path, cluster)
    ok(run_featurectl("materialize", BASE.isoformat(), (BASE + timedelta(hours=24)).isoformat(), cwd=repo.root))
    victim = cluster.nodes[0]
    victim.kill()
    try:
        result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), "--views", "user_stats",
                                   cwd=repo.root), 3)
    finally:
        cluster.heal()  # it comes back empty: its slots lost their values (no persistence here)
    assert victim.address in result.output and "user_stats" in result.output, result.output
    assert "Restart that redis-server" in result.output or "cluster is down" in result.output, result.output
    assert "watermarks did not move" in result.stderr


def test_a_hung_node_fails_after_the_timeout_naming_the_timeout(cluster):
    """SPEC §7: a paused (SIGSTOP) node is a store failure after `timeout`, without a retry."""
    store = RedisOnlineStore(cluster.url, cluster=True, timeout=1, connect_timeout=1)
    victim = cluster.nodes[2]
    try:
        assert store.write(TABLE, batch(range(100), T0)) == 100
        victim.process.send_signal(signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(OnlineStoreError, match="no answer within the timeout.*online_store.timeout"):
            store.write(TABLE, batch(range(100), T0 + timedelta(hours=1)))
        assert time.monotonic() - began < 10
    finally:
        victim.process.send_signal(signal.SIGCONT)
        store.close()
        cluster.heal()


def test_a_cluster_nobody_answers_is_exit_3_naming_the_nodes(tmp_path: Path):
    from tests.fixtures.redis_cluster import free_cluster_port

    nodes = [f"127.0.0.1:{free_cluster_port(set())}"]
    repo = Repo(tmp_path / "repo", {"type": "redis", "nodes": nodes})
    with repo.store() as fs:
        fs.apply()
    result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), "--views", "user_stats",
                               cwd=repo.root), 3)
    assert nodes[0] in result.output and "Redis Cluster" in result.output


# ---- configuration -------------------------------------------------------------------------


def write_config(tmp_path: Path, online: dict) -> Repo:
    repo = Repo(tmp_path / "repo", {"type": "sqlite"})
    (repo.root / "featurectl.yaml").write_text(yaml.safe_dump({"project": "shop", "online_store": online}))
    return repo


@pytest.mark.parametrize("online, message", [
    ({"type": "redis", "nodes": ["127.0.0.1"]}, "host:port"),
    ({"type": "redis", "nodes": []}, "at least one cluster node"),
    ({"type": "redis", "nodes": ["127.0.0.1:7000"], "url": "redis://127.0.0.1:7000/0"}, "not both"),
    ({"type": "redis", "nodes": ["127.0.0.1:7000"], "cluster": False}, "cluster: false"),
])
def test_a_bad_cluster_config_is_exit_2_naming_the_field(tmp_path: Path, online: dict, message: str):
    repo = write_config(tmp_path, online)
    result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), cwd=repo.root), 2)
    assert "featurectl.yaml" in result.stderr and "online_store" in result.stderr and message in result.stderr


def test_a_cluster_url_with_another_database_is_exit_2(tmp_path: Path, cluster):
    repo = write_config(tmp_path, {"type": "redis", "url": f"redis://{cluster.nodes[0].address}/3", "cluster": True})
    result = ok(run_featurectl("materialize", BASE.isoformat(), END.isoformat(), cwd=repo.root), 2)
    assert "only database 0" in result.stderr and "online_store.url" in result.stderr


def test_cluster_true_on_a_plain_server_says_so(clean_redis: str):
    store = RedisOnlineStore(clean_redis, cluster=True)
    try:
        with pytest.raises(OnlineStoreError, match="not a Redis Cluster node.*cluster: true"):
            store.write(TABLE, batch([1], T0))
    finally:
        store.close()


def test_a_plain_config_on_a_cluster_node_says_to_add_cluster_true(cluster):
    store = RedisOnlineStore(cluster.url)
    try:
        with pytest.raises(OnlineStoreError, match="is a Redis Cluster node.*cluster: true"):
            store.write(TABLE, batch(range(50), T0))
    finally:
        store.close()
