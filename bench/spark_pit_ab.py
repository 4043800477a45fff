"""A/B of point-in-time variants in one warm Spark session, alternated (A B F A B F ...), with
wall and CPU seconds (this process + its JVM) per call; docs/benchmarks.md, "Entity rows from
files on Spark". A: the spill read-back in OLD_SPILL (a file holding another `_spill_in_chunks`,
e.g. the one of a previous commit), B: the current one, F: the current one with the entity rows
as a file Spark reads itself (`EntityFiles`) instead of an Arrow table.

  PYTHONPATH=$PWD nice -n 19 .venv/bin/python bench/spark_pit_ab.py DATA_DIR PAIRS OLD_SPILL
"""
import json
import os
import resource
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow.parquet as pq

import featurectl.offline.spark as S
from featurectl.offline import create_offline_store
from featurectl.offline.config import SparkOfflineConfig
from featurectl.offline.entity_rows import entity_files
from scaling import _jvm_pids, _proc_cpu_and_peak, _request  # noqa: E402

ns = dict(S.__dict__)
exec(Path(sys.argv[3]).read_text(), ns)
OLD, NEW = ns["_spill_in_chunks"], S._spill_in_chunks
data, pairs = Path(sys.argv[1]), int(sys.argv[2])
store = create_offline_store(SparkOfflineConfig(master="local[2]", conf={"spark.driver.memory": "3g"}), data)
req = _request(data)
table = pq.read_table(data / "entity_df.parquet")
files = entity_files(data / "entity_df.parquet")


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + sum(_proc_cpu_and_peak(p)[0] for p in _jvm_pids())


def run(kind):
    S._spill_in_chunks = OLD if kind == "A" else NEW
    rows = files if kind == "F" else table
    c, t = cpu(), time.perf_counter()
    out = store.get_historical_features(rows, [req]).read_all()
    return out, time.perf_counter() - t, cpu() - c


ref = None
for kind in "ABF":  # warm-up: each plan once
    out, _, _ = run(kind)
    ref = out if ref is None else ref
    assert out.equals(ref), kind
for i in range(pairs):
    for kind in "ABF":
        load = os.getloadavg()[0]
        out, wall, c = run(kind)
        assert out.equals(ref), kind
        print(json.dumps({"kind": kind, "pair": i, "wall_s": round(wall, 2), "cpu_s": round(c, 2), "load": load}), flush=True)
os._exit(0)
