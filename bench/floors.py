"""The floors: what the engines alone take for the work featurectl does, on the same data.

Each featurectl figure is shown beside its floor as a ratio (`harness.FLOOR_RATIOS`), so the
report says how close to the machine each path is, measured in the same run under the same
load. Run by bench/featurectl_peer.py (`--task floor-*`), one task per process like every
other task; featurectl's own code only prepares the payloads of the online floors (untimed).

- `floor-latest`: DuckDB alone computing the latest row per entity: `arg_max` of a struct of
  the row over `(event_timestamp, created)`, grouped by key, to an Arrow table.
- `floor-pit`: DuckDB's bare `ASOF LEFT JOIN` of the entity rows and the feature rows (no
  created-timestamp tie-break, no ttl), entity order restored, to an Arrow table.
- `floor-sqlite`: the encoded rows materialization writes (key, event time, stored value) put
  into a SQLite table of the same shape and settings in one transaction, 1,000 rows per
  INSERT (multi-row VALUES: the fastest write from Python measured, ~25% less CPU than one
  `executemany` row at a time): an empty table first, then the same rows again over it.
- `floor-redis`: the same records (17-digit stamp + value) written with plain MSETs of 1,000
  keys, packed by hiredis and streamed on one connection: no newer-wins check at all.
"""
from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

from harness import FEATURES, timed, window

WARM_CALLS = 3


def _figures(call) -> dict:
    """First call in the process (engine start included, imports not), then the median of
    WARM_CALLS repeats."""
    cold = timed(call)[1]
    warm = statistics.median(timed(call)[1] for _ in range(WARM_CALLS))
    return {"seconds": round(cold, 3), "seconds_warm": round(warm, 3)}


def floor_latest(data: Path, meta: dict) -> dict:
    import duckdb

    path = (data / "features.parquet").as_posix()
    feats = ", ".join(FEATURES)
    sql = (f"SELECT driver_id, arg_max(struct_pack(event_timestamp, {feats}), "
           f"struct_pack(event_timestamp, created)) AS latest "
           f"FROM read_parquet('{path}') GROUP BY driver_id")
    rows = []

    def call() -> None:
        con = duckdb.connect()
        rows.append(con.sql(sql).to_arrow_table().num_rows)
        con.close()

    figures = _figures(call)
    return {**figures, "entities": meta["distinct_feature_ids"], "rows": rows[0],
            "rows_ok": rows[0] == meta["distinct_feature_ids"]}


def _pit_sql(data: Path) -> str:
    feats = ", ".join(f"f.{f}" for f in FEATURES)
    return (f"SELECT e.driver_id, e.event_timestamp, {feats} FROM "
            f"(SELECT *, row_number() OVER () AS __row FROM read_parquet('{(data / 'entity_df.parquet').as_posix()}')) e "
            f"ASOF LEFT JOIN read_parquet('{(data / 'features.parquet').as_posix()}') f "
            f"ON e.driver_id = f.driver_id AND e.event_timestamp >= f.event_timestamp ORDER BY e.__row")


def floor_pit(data: Path, meta: dict) -> dict:
    import duckdb

    sql = _pit_sql(data)
    rows = []

    def call() -> None:
        con = duckdb.connect()
        rows.append(con.sql(sql).to_arrow_table().num_rows)
        con.close()

    figures = _figures(call)
    return {**figures, "entity_rows": meta["entity_df_rows"], "feature_rows": meta["feature_rows"],
            "rows": rows[0], "rows_ok": rows[0] == meta["entity_df_rows"]}


def floor_pit_write(data: Path, out: Path) -> dict:
    """The floor of a whole `get-historical` process: floor-pit's query (repeat calls) plus
    writing its result as get-historical writes one (pyarrow's ParquetWriter, batch by batch,
    its default settings). Process start and imports are not in it."""
    import duckdb
    import pyarrow.parquet as pq

    sql = _pit_sql(data)
    tables = []

    def query() -> None:
        con = duckdb.connect()
        tables.append(con.sql(sql).to_arrow_table())
        con.close()

    def write() -> None:
        table = tables[-1]
        with pq.ParquetWriter(out, table.schema) as writer:
            for batch in table.to_batches():
                writer.write_batch(batch)

    query()
    pit = statistics.median(timed(query)[1] for _ in range(WARM_CALLS))
    seconds = statistics.median(timed(write)[1] for _ in range(WARM_CALLS))
    out.unlink(missing_ok=True)
    return {"pit_seconds": round(pit, 3), "write_seconds": round(seconds, 3), "rows": tables[-1].num_rows}


def _payloads(store, meta: dict, prefix: bool):
    """The latest rows of the bench view as featurectl's online stores receive them, encoded
    as they store them: (keys, event micros, values) Arrow arrays, in one batch."""
    import pyarrow as pa

    from featurectl.app.materialize import online_table, request_for
    from featurectl.online import encoding

    defs = store.applied()
    view = defs.feature_views["driver_stats"]
    table = online_table(store.project, defs, view)
    start, end = window(meta)
    batches = list(store.offline.latest_rows(request_for(defs, view), start, end))
    batch = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    encoder = encoding.ValueEncoder()
    try:
        values = encoder.encode(table, batch)
    finally:
        encoder.close()
    keys = encoding.encode_keys(table, batch, encoding.key_prefix(table) if prefix else b"")
    return keys, encoding.event_micros(batch), values


def floor_sqlite(store, meta: dict, work: Path) -> dict:
    import sqlite3

    import pyarrow.compute as pc

    keys, micros, values = _payloads(store, meta, prefix=False)
    order = pc.sort_indices(keys)  # as the store sends them: in key order
    flat = list(itertools.chain.from_iterable(zip(keys.take(order).to_pylist(), micros.take(order).to_pylist(),
                                                  values.take(order).to_pylist())))
    per = 1_000
    whole = len(flat) - len(flat) % (3 * per)
    path = work / "floor-sqlite.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")  # what the SQLite online store commits with
    con.execute("CREATE TABLE t (key BLOB PRIMARY KEY, event_ts INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID")

    def write(verb: str) -> None:
        def sql(rows: int) -> str:
            return f"{verb} INTO t VALUES {','.join(['(?, ?, ?)'] * rows)}"

        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql(per), (flat[i:i + 3 * per] for i in range(0, whole, 3 * per)))
        if whole < len(flat):
            con.execute(sql((len(flat) - whole) // 3), flat[whole:])
        con.execute("COMMIT")

    cold = timed(lambda: write("INSERT"))[1]
    warm = statistics.median(timed(lambda: write("INSERT OR REPLACE"))[1] for _ in range(WARM_CALLS))
    count = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    return {"seconds": round(cold, 3), "seconds_warm": round(warm, 3), "entities": len(flat) // 3,
            "rows_ok": count == meta["distinct_feature_ids"]}


def floor_redis(store, meta: dict, redis_url: str) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import redis
    from hiredis import pack_command

    keys, micros, values = _payloads(store, meta, prefix=True)
    stamps = pc.utf8_lpad(pc.cast(pc.add(micros, 5 * 10**16), pa.string()), width=17, padding="0")
    records = pc.binary_join_element_wise(pc.cast(stamps, pa.binary()), values, pa.scalar(b"", pa.binary()))
    # Database 1 of the same private server: the floor never touches featurectl's keys.
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    client.flushdb()
    keys_list, records_list = keys.to_pylist(), records.to_pylist()
    chunk = 1000

    def write() -> None:
        connection = client.connection_pool.get_connection()
        try:
            starts = range(0, len(keys_list), chunk)
            for s in starts:
                args = [x for pair in zip(keys_list[s:s + chunk], records_list[s:s + chunk]) for x in pair]
                connection.send_packed_command([pack_command(("MSET", *args))], check_health=False)
            for _ in starts:
                connection.read_response()
        finally:
            client.connection_pool.release(connection)

    cold = timed(write)[1]
    warm = statistics.median(timed(write)[1] for _ in range(WARM_CALLS))
    count = client.dbsize()
    client.flushdb()
    return {"seconds": round(cold, 3), "seconds_warm": round(warm, 3), "entities": len(keys_list),
            "rows_ok": count == meta["distinct_feature_ids"]}


def run_floor(task: str, store, meta: dict, args) -> dict:
    started = time.perf_counter()
    if task == "floor-latest":
        out = floor_latest(args.data, meta)
    elif task == "floor-pit":
        out = floor_pit(args.data, meta)
    elif task == "floor-sqlite":
        out = floor_sqlite(store, meta, args.work)
    else:
        out = floor_redis(store, meta, args.redis_url)
    return {**out, "task_s": round(time.perf_counter() - started, 3)}


if __name__ == "__main__":  # bench/cli_start.py's floor child: floors.py --pit-write DATA OUT
    import json
    import sys

    if sys.argv[1:2] != ["--pit-write"] or len(sys.argv) != 4:
        raise SystemExit("usage: floors.py --pit-write DATA_DIR OUT.parquet")
    print(json.dumps(floor_pit_write(Path(sys.argv[2]), Path(sys.argv[3]))))
