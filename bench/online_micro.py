"""Online store micro-benchmark: write throughput and read latency, SQLite and Redis.

    .venv/bin/python bench/online_micro.py [--entities 100000] [--batch 10000] [--redis-url URL]

Data is generated deterministically (seeded). Writes: `--entities` entities x 10 features
in batches of `--batch` rows, as materialization sends them; `ent/cpu-s` is entities per
CPU-second of client plus server, steadier than wall time when the machine is shared.
Reads: 1 entity x 10 features per call, and 100 entities x 10 features per call, in
process. Without --redis-url a private redis-server is started on a free loopback port
(never 6379) and killed afterwards.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
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


def measure(store, entities: int, batch: int, server_cpu=lambda: 0.0) -> dict[str, float]:
    """`server_cpu()`: CPU seconds used so far by the store's server process, if any."""
    data = list(batches(entities, batch))
    started, cpu = time.perf_counter(), time.process_time() + server_cpu()
    written = sum(store.write(TABLE, b) for b in data)
    elapsed, cpu = time.perf_counter() - started, time.process_time() + server_cpu() - cpu
    assert written == entities, (written, entities)
    rng = np.random.default_rng(11)
    names = [name for name, _ in FEATURES]
    # Entities per CPU-second spent by client and server together: the rate on a single
    # dedicated core, a steadier figure than wall time on a shared machine.
    result = {"write_entities_per_s": entities / elapsed, "write_entities_per_cpu_s": entities / cpu}
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


def _server_cpu(url: str):
    import redis

    client = redis.Redis.from_url(url)
    return lambda: (lambda info: info["used_cpu_user"] + info["used_cpu_sys"])(client.info("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="featurectl-bench-"))
    server = None
    try:
        url = args.redis_url
        if url is None:
            from tests.fixtures.redis_server import RedisServer
            server = RedisServer(shutil.which("redis-server") or "redis-server", work)
            server.start()
            url = server.url
        results = {}
        for name, config in (("sqlite", SqliteOnlineConfig(path="online.db")),
                             ("redis", RedisOnlineConfig(type="redis", url=url))):
            store = create_online_store(config, work)
            try:
                results[name] = measure(store, args.entities, args.batch, _server_cpu(url) if name == "redis" else lambda: 0.0)
                if name == "redis":
                    store.delete_table(TABLE)
            finally:
                store.close()
        print(f"{args.entities} entities x {len(FEATURES)} features, write batches of {args.batch}")
        print(f"{'store':8} {'write ent/s':>12} {'ent/cpu-s':>10} {'1x10 p50':>9} {'1x10 p99':>9} {'100x10 p50':>11} {'100x10 p99':>11}  (ms)")
        for name, r in results.items():
            print(f"{name:8} {r['write_entities_per_s']:12,.0f} {r['write_entities_per_cpu_s']:10,.0f} {r['read_1x10_p50_ms']:9.3f} {r['read_1x10_p99_ms']:9.3f}"
                  f" {r['read_100x10_p50_ms']:11.3f} {r['read_100x10_p99_ms']:11.3f}")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
              f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
