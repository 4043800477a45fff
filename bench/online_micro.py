"""Online store micro-benchmark: write throughput and read latency, SQLite, Redis and a
3-node Redis Cluster.

    .venv/bin/python bench/online_micro.py [--entities 100000] [--batch 10000] [--repeat 1] [--redis-url URL]
        [--no-cluster]

Data is generated deterministically (seeded). Writes: `--entities` entities x 10 features
in batches of `--batch` rows, as materialization sends them; `ent/cpu-s` is entities per
CPU-second of client plus server, steadier than wall time when the machine is shared.
Reads: 1 entity x 10 features per call, and 100 entities x 10 features per call, in
process. Without --redis-url a private redis-server is started on a free loopback port
(never 6379) and killed afterwards. The cluster row runs on a private 3-node Redis Cluster
(tests/fixtures/redis_cluster.py: free ports with free bus ports, no persistence), its
`ent/cpu-s` counting the CPU of all three nodes; the last line gives its write throughput as
a share of the single server's (the target is >= 70%).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featurectl.online.config import RedisOnlineConfig, SqliteOnlineConfig  # noqa: E402
from featurectl.online import OnlineTable, create_online_store  # noqa: E402

FEATURES = tuple((f"f{i}", dtype) for i, dtype in enumerate(
    ["float32", "float32", "float32", "float64", "float64", "int64", "int64", "int64", "string", "bool"]))
TABLE = OnlineTable("bench", "driver_stats", 1, (("driver_id", "int64"),), FEATURES, 0)
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def batches(entities: int, size: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    for start in range(0, entities, size):
        n = min(size, entities - start)
        columns = {
            "driver_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "event_timestamp": pa.array([NOW - timedelta(minutes=1)] * n, pa.timestamp("us", tz="UTC")),
        }
        for name, dtype in FEATURES:
            if dtype.startswith("float"):
                columns[name] = pa.array(rng.random(n).astype(dtype))
            elif dtype == "int64":
                columns[name] = pa.array(rng.integers(0, 10_000, n))
            elif dtype == "string":
                columns[name] = pa.array(rng.integers(0, 1000, n).astype(str).astype(object))
            else:
                columns[name] = pa.array(rng.random(n) < 0.5)
        yield pa.record_batch(columns)


def measure_writes(store, data: list, entities: int, server_cpu=lambda: 0.0) -> dict[str, float]:
    """One write of every batch into an empty view. `server_cpu()`: CPU seconds used so far by
    the store's server processes, if any."""
    store.delete_table(TABLE)
    started, cpu = time.perf_counter(), time.process_time() + server_cpu()
    written = sum(store.write(TABLE, b) for b in data)
    elapsed, cpu = time.perf_counter() - started, time.process_time() + server_cpu() - cpu
    assert written == entities, (written, entities)
    # Entities per CPU-second spent by client and server together: the rate on a single
    # dedicated core, a steadier figure than wall time on a shared machine.
    return {"write_entities_per_s": entities / elapsed, "write_entities_per_cpu_s": entities / cpu}


def measure_reads(store, entities: int) -> dict[str, float]:
    """Read latencies, on the values the last write round left."""
    result = {}
    rng = np.random.default_rng(11)
    names = [name for name, _ in FEATURES]
    for label, per_call, calls in (("1x10", 1, 3000), ("100x10", 100, 500)):
        samples = []
        for _ in range(calls):
            keys = [(int(k),) for k in rng.integers(0, entities, per_call)]
            t = time.perf_counter_ns()
            rows = store.read(TABLE, keys, names, NOW)
            samples.append((time.perf_counter_ns() - t) / 1e6)
            assert rows.event_timestamps[0] is not None
        result[f"read_{label}_p50_ms"] = float(np.percentile(samples, 50))
        result[f"read_{label}_p99_ms"] = float(np.percentile(samples, 99))
    return result


def _server_cpu(*urls: str):
    import redis

    clients = [redis.Redis.from_url(url) for url in urls]
    return lambda: sum((lambda info: info["used_cpu_user"] + info["used_cpu_sys"])(c.info("cpu")) for c in clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--redis-url")
    parser.add_argument("--repeat", type=int, default=1, help="write rounds per store (median reported)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the 3-node Redis Cluster row")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="featurectl-bench-"))
    server = cluster = None
    try:
        url = args.redis_url
        if url is None:
            from tests.fixtures.redis_server import RedisServer
            server = RedisServer(shutil.which("redis-server") or "redis-server", work)
            server.start()
            url = server.url
        stores = [("sqlite", SqliteOnlineConfig(path="online.db"), lambda: 0.0),
                  ("redis", RedisOnlineConfig(type="redis", url=url), _server_cpu(url))]
        if not args.no_cluster:
            from tests.fixtures.redis_cluster import RedisClusterServers
            (work / "cluster").mkdir()
            cluster = RedisClusterServers(shutil.which("redis-server") or "redis-server",
                                          shutil.which("redis-cli") or "redis-cli", work / "cluster")
            cluster.create()
            stores.append(("cluster3", RedisOnlineConfig(type="redis", nodes=tuple(cluster.addresses)),
                           _server_cpu(*(f"redis://{a}/0" for a in cluster.addresses))))
        opened = [(name, create_online_store(config, work), server_cpu) for name, config, server_cpu in stores]
        try:
            data = list(batches(args.entities, args.batch))
            # Rounds in turn (store A, B, C, A, B, C, ...) so that a busy machine weighs on all
            # alike; the median round of each store is reported.
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in opened}
            for _ in range(args.repeat):
                for name, store, server_cpu in opened:
                    rounds[name].append(measure_writes(store, data, args.entities, server_cpu))
            results = {}
            for name, store, _ in opened:
                writes = {key: statistics.median(r[key] for r in rounds[name]) for key in rounds[name][0]}
                results[name] = {**writes, **measure_reads(store, args.entities)}
                if name != "sqlite":
                    store.delete_table(TABLE)
        finally:
            for _, store, _ in opened:
                store.close()
        print(f"{args.entities} entities x {len(FEATURES)} features, write batches of {args.batch}, "
              f"median of {args.repeat} write round(s)")
        print(f"{'store':8} {'write ent/s':>12} {'ent/cpu-s':>10} {'1x10 p50':>9} {'1x10 p99':>9} {'100x10 p50':>11} {'100x10 p99':>11}  (ms)")
        for name, r in results.items():
            print(f"{name:8} {r['write_entities_per_s']:12,.0f} {r['write_entities_per_cpu_s']:10,.0f} {r['read_1x10_p50_ms']:9.3f} {r['read_1x10_p99_ms']:9.3f}"
                  f" {r['read_100x10_p50_ms']:11.3f} {r['read_100x10_p99_ms']:11.3f}")
        if "cluster3" in results:
            share = results["cluster3"]["write_entities_per_s"] / results["redis"]["write_entities_per_s"]
            cpu_share = results["cluster3"]["write_entities_per_cpu_s"] / results["redis"]["write_entities_per_cpu_s"]
            print(f"3-node cluster write throughput: {share:.0%} of one Redis server ({cpu_share:.0%} per CPU-second)")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
              f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    finally:
        if server is not None:
            server.kill()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
