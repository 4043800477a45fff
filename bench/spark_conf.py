"""Spark session settings measured against today's defaults on featurectl's own calls (issue
10's 5x target; docs/benchmarks.md "Spark settings on local[2] at 10M (stream spark)").

  nice -n 19 .venv/bin/python bench/spark_conf.py --size 10M --pairs 3 --tasks latest,pit \
      --configs 'base;noshufcomp:spark.shuffle.compress=false,spark.shuffle.spill.compress=false'

Each configuration runs in its own process and session (started as bench/scaling.py starts
it: local[2], spark.driver.memory=3g, featurectl's defaults, then the configuration's
settings on top), the configurations taken in turn, `--pairs` rounds (A B, B A, A B, ... so
that drift in the machine's load falls on both). A process times, per task, the first call
(code generation and JIT included: what a fresh `featurectl materialize` pays) and then
`--reps` repeat calls, each consumed in full as featurectl consumes it (latest rows read back
in batches; the point-in-time join of the 1M entity rows, all chunks); per call it prints the
wall time and the CPU seconds of the whole process, Python and the JVM, and the JVM's command
line once (to show that JVM options reached it).

`--toggle k=v,...` instead alternates runtime SQL settings inside one session (base call,
toggled call, base call, ...): for spark.sql.* settings, which a session reads per query.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from harness import ensure_data, load_meta, window  # noqa: E402
from scaling import SIZES, SPARK_CONF, _jvm_pids, _proc_cpu_and_peak, _request  # noqa: E402


def _cpu() -> float:
    return _proc_cpu_and_peak(os.getpid())[0] + sum(_proc_cpu_and_peak(p)[0] for p in _jvm_pids())


def _threads() -> dict[str, float]:
    """CPU seconds per JVM thread group (names with their digits dropped: 'C2 CompilerThre',
    'GC Thread#0' -> 'GC Thread'; Linux cuts names to 15 characters: 'Executor task l')."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _jvm_pids():
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            group = re.sub(r"[\d#]+$", "", name).strip() or name
            out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def child(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from featurectl.offline import create_offline_store
    from featurectl.offline.config import SparkOfflineConfig

    data = ensure_data(*SIZES[args.size], python=sys.executable)
    conf = {**SPARK_CONF, **_pairs(args.conf or "")}
    t = time.perf_counter()
    store = create_offline_store(SparkOfflineConfig(master=args.master, conf=conf), data)
    spark = store.spark  # type: ignore[attr-defined]
    jvm = " ".join(Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in _jvm_pids())
    print(
        json.dumps(
            {
                "label": args.label,
                "featurectl": str(Path(sys.modules["featurectl"].__file__ or "").parent),
                "session_s": round(time.perf_counter() - t, 1),
                "jvm": " ".join(a for a in jvm.split() if a.startswith("-X")),
            }
        ),
        flush=True,
    )
    request = _request(data)
    start, end = window(load_meta(data))
    entity_rows = pq.read_table(data / "entity_df.parquet")
    calls = {
        "latest": lambda: store.latest_rows(request, start, end),
        "pit": lambda: store.get_historical_features(entity_rows, [request]),
    }
    toggles = _pairs(args.toggle or "")
    before = {k: spark.conf.get(k, None) for k in toggles}

    def run(task: str, rep: str, toggled: bool) -> None:
        for k, v in (toggles if toggled else before).items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
        threads, cpu, t = _threads(), _cpu(), time.perf_counter()
        rows = sum(b.num_rows for b in calls[task]())
        spent = {k: round(v - threads.get(k, 0.0), 1) for k, v in _threads().items()}
        print(
            json.dumps(
                {
                    "threads": {k: v for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v >= 0.3},
                    "label": args.label + ("+toggle" if toggled else ""),
                    "task": task,
                    "rep": rep,
                    "rows": rows,
                    "wall_s": round(time.perf_counter() - t, 2),
                    "cpu_s": round(_cpu() - cpu, 1),
                    "load": round(os.getloadavg()[0], 1),
                }
            ),
            flush=True,
        )

    for task in args.tasks.split(","):
        run(task, "first", False)
        for rep in range(args.reps):
            if toggles:
                run(task, str(rep), rep % 2 == 1)
                run(task, str(rep), rep % 2 == 0)
            else:
                run(task, str(rep), False)
    os._exit(0)  # skip Spark's shutdown hooks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="10M", choices=list(SIZES))
    ap.add_argument("--tasks", default="latest,pit")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--configs", default="base", help="'name:k=v,k=v;name2:...' ('base' alone: no settings)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--toggle", help="runtime SQL settings alternated inside each session: k=v,k=v")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", default="base", help=argparse.SUPPRESS)
    ap.add_argument("--conf", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    ensure_data(*SIZES[args.size], python=sys.executable)
    configs = [c.partition(":") for c in args.configs.split(";")]
    for i in range(args.pairs):
        for name, _, conf in configs if i % 2 == 0 else configs[::-1]:
            argv = [
                sys.executable,
                __file__,
                "--child",
                "--size",
                args.size,
                "--tasks",
                args.tasks,
                "--reps",
                str(args.reps),
                "--master",
                args.master,
                "--label",
                name,
                "--conf",
                conf,
            ]
            if args.toggle:
                argv += ["--toggle", args.toggle]
            subprocess.run(argv, check=False)


if __name__ == "__main__":
    main()
