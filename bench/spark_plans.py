"""Spark plan variants for latest rows and the point-in-time join, measured one stage at a
time (issue 10's 5x target; docs/benchmarks.md "Spark local[2] at 10M (stream sparkperf)").

  nice -n 19 .venv/bin/python bench/spark_plans.py --size 10M --variants latest,narrow-rid --reps 2

Every variant is written to Spark's `noop` sink (the plan runs in full, nothing is returned),
in one session started as bench/scaling.py starts it, and reports its wall time and the CPU
seconds of the whole process (Python and the JVM) for that call. Variants:

  latest        featurectl's latest_rows plan (max_by of a struct: a sort aggregate)
  narrow-rid    latest rows ranked on narrow columns (keys, times, a row id), the winners'
                rows fetched by a broadcast semi-join on the row id (a second scan)
  hash-long     the narrow hash aggregate alone: max(event time) per key
  hash-decimal  max_by(row id, ordering packed into a decimal(38)): a hash aggregate
  scan-narrow   the scan of keys and times alone
  pit           featurectl's point-in-time plan for one view (union + window, values carried)
  pit-narrow    the same window carrying a row id instead of the values (no fetch)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from harness import ensure_data, load_meta, window  # noqa: E402
from scaling import SIZES, SPARK_CONF, _jvm_pids, _proc_cpu_and_peak, _request  # noqa: E402

_OFFSET = 3 * 10**17  # above |microseconds| of any Spark timestamp (years 1-9999)


def _cpu() -> float:
    return _proc_cpu_and_peak(os.getpid())[0] + sum(_proc_cpu_and_peak(p)[0] for p in _jvm_pids())


def variants(store, request, start: datetime, end: datetime, entity_rows):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    import featurectl.offline.spark as S
    from featurectl.offline.duckdb import typed_entity_rows

    spark = store.spark

    def source(rid: bool = False):
        src = S._Source(spark, store.root, request)
        df = src.df.select("*", F.monotonically_increasing_id().alias("__rid")) if rid else src.df
        in_window = (F.col("__ts") >= F.lit(start)) & (F.col("__ts") < F.lit(end))
        return src, df.where(in_window & S._all(S.col(k).isNotNull() for k in src.keys))

    def rows_out(src, frame):
        return frame.select(*src.keys, F.col("__ts").alias("event_timestamp"),
                            *(src.feature(f, S.col("__v_" + f)).alias(f) for f in request.features))

    def order():
        return F.struct(F.col("__ts"), F.col("__cr").isNotNull(),
                        F.coalesce(F.col("__cr"), F.lit(datetime(1970, 1, 1, tzinfo=timezone.utc))))

    def decimal_rank():
        big = "decimal(38,0)"
        ts = F.unix_micros("__ts").cast(big) + F.lit(_OFFSET)
        cr = F.when(F.col("__cr").isNull(), F.lit(0)).otherwise(F.unix_micros("__cr").cast(big) + F.lit(_OFFSET + 1))
        return (ts * F.lit(10**18).cast(big) + cr).cast(big)

    def latest():
        captured = []
        keep = S._results
        S._results = lambda frame, schema, batch_size: captured.append(frame)  # type: ignore[assignment]
        try:
            store.latest_rows(request, start, end)
        finally:
            S._results = keep
        return captured[0]

    def narrow_rid():
        src, rows = source(rid=True)
        top = rows.groupBy(*src.keys).agg(F.max_by("__rid", order()).alias("__rid"))
        return rows_out(src, rows.join(F.broadcast(top), "__rid", "left_semi"))

    def hash_long():
        src, rows = source()
        return rows.groupBy(*src.keys).agg(F.max(F.unix_micros("__ts")).alias("__m"))

    def hash_decimal():
        src, rows = source(rid=True)
        return rows.groupBy(*src.keys).agg(F.max_by("__rid", decimal_rank()).alias("__m"))

    def scan_narrow():
        src, rows = source()
        return rows.select(*src.keys, "__ts", "__cr")

    typed = typed_entity_rows(entity_rows, [request], "event_timestamp")

    def entities():
        return spark.createDataFrame(typed, schema=S._spark_schema(typed))

    def pit():
        frame = S._pit_step(entities(), S._Source(spark, store.root, request), 0)
        return frame.select("__row", *(c for c in frame.columns if c.startswith("__f")))

    def pit_narrow():
        src = S._Source(spark, store.root, request)
        rows = src.df.where(S._all(S.col(k).isNotNull() for k in src.keys) & F.col("__ts").isNotNull()).select(
            *src.keys, F.col("__ts").alias("__t"), F.lit(0).alias("__kind"), "__cr",
            F.monotonically_increasing_id().alias("__rid"))
        marked = entities().select("*", F.col("__et").alias("__t"), F.lit(1).alias("__kind"))
        by_time = Window.partitionBy(*src.keys).orderBy(
            F.col("__t").asc_nulls_first(), "__kind", F.col("__cr").asc_nulls_first()
        ).rowsBetween(Window.unboundedPreceding, Window.currentRow)
        union = marked.unionByName(rows, allowMissingColumns=True)
        hit = F.last("__rid", ignorenulls=True).over(by_time)
        return union.select("*", hit.alias("__hit")).where("__kind = 1").select("__row", "__hit")

    return {"latest": latest, "narrow-rid": narrow_rid, "hash-long": hash_long, "hash-decimal": hash_decimal,
            "scan-narrow": scan_narrow, "pit": pit, "pit-narrow": pit_narrow}


def main() -> None:
    import pyarrow.parquet as pq

    from featurectl.offline import create_offline_store
    from featurectl.offline.config import SparkOfflineConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="10M", choices=list(SIZES))
    ap.add_argument("--variants", default="latest,narrow-rid")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--explain", action="store_true", help="print each variant's formatted physical plan")
    args = ap.parse_args()
    data = ensure_data(*SIZES[args.size], python=sys.executable)
    store = create_offline_store(SparkOfflineConfig(master=args.master, conf=SPARK_CONF), data)
    request = _request(data)
    start, end = window(load_meta(data))
    plans = variants(store, request, start, end, pq.read_table(data / "entity_df.parquet"))
    names = args.variants.split(",")
    if args.explain:
        for name in names:
            print(f"== {name}")
            plans[name]().explain(mode="formatted")
    for rep in range(args.reps):
        for name in names:
            frame = plans[name]()
            cpu, t = _cpu(), time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            print(json.dumps({"size": args.size, "variant": name, "rep": rep, "wall_s": round(time.perf_counter() - t, 2),
                              "cpu_s": round(_cpu() - cpu, 1), "load": round(os.getloadavg()[0], 1)}), flush=True)
    os._exit(0)  # skip Spark's shutdown hooks


if __name__ == "__main__":
    main()
