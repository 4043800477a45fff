"""The benchmark command: featurectl and Feast 0.67 on the same data, in one run.

  .venv/bin/python bench/run.py [--quick | --large] [--skip-feast | --skip-featurectl]
                                [--tasks a,b] [--out docs/benchmarks.md]

Each task of each peer runs in its own child process (bench/featurectl_peer.py in this venv,
bench/feast_peer.py in bench/.venv-feast); the child's wall time and peak RSS are measured
from outside, the operation's own time from inside. Results go to bench/results/*.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (BENCH_DIR, DEFAULT_TTL_DAYS, ROOT, check_pit, ensure_data, floor_table, format_table,  # noqa: E402
                     load_meta, redis_server, run_task)

# Each floor runs next to the figures it bounds, so both see the same load; floors are
# featurectl-venv tasks (bench/floors.py), the Feast peer has none.
TASKS = ["floor-latest", "materialize-sqlite", "floor-sqlite", "online-sqlite", "materialize-redis",
         "floor-redis", "online-redis", "floor-pit", "pit", "plan"]
FLOORS = [t for t in TASKS if t.startswith("floor-")]
SIZES = {  # rows, entities, entity-df rows
    "quick": (50_000, 5_000, 5_000),
    "default": (1_000_000, 100_000, 100_000),
    "large": (10_000_000, 1_000_000, 1_000_000),  # PIT only (--large)
}
FEAST_PY = BENCH_DIR / ".venv-feast" / "bin" / "python"


def peer_argv(peer: str) -> list[str]:
    if peer == "feast":
        return [str(FEAST_PY), str(BENCH_DIR / "feast_peer.py")]
    return [sys.executable, str(BENCH_DIR / "featurectl_peer.py")]


def run_task_for(peer: str, task: str, data: Path, work: Path, url: str, iters: int,
                 nice: int, ttl_days: int) -> dict:
    """One task of one peer in its own child process; PIT output checked afterwards."""
    argv = peer_argv(peer) + ["--data", str(data), "--work", str(work), "--task", task,
                              "--redis-url", url, "--iters", str(iters), "--ttl-days", str(ttl_days)]
    out = work / f"pit-{peer}.parquet"
    if task == "pit":
        argv += ["--save-output", str(out)]
    print(f"[{peer}] {task} ...", file=sys.stderr, flush=True)
    res = run_task(argv, work / "logs" / f"{task}.log", nice=nice)
    if task == "pit" and "error" not in res:
        res["check"] = check_pit(data, out, ttl_days)
    print(f"[{peer}] {task}: {json.dumps(res)[:400]}", file=sys.stderr, flush=True)
    return res


def run_peers(peers: list[str], tasks: list[str], data: Path, pit_data: Path, iters: int,
              nice: int, ttl_days: int, repeat: int) -> dict:
    """`repeat` rounds; in each, every task for every peer in turn (so a busy machine weighs
    on both alike), each peer with a fresh work dir and its own fresh redis-server."""
    rounds: dict = {p: {t: [] for t in tasks if p != "feast" or t not in FLOORS} for p in peers}
    for r in range(repeat):
        with ExitStack() as stack:
            urls = {p: stack.enter_context(redis_server()) for p in peers}
            works = {p: BENCH_DIR / "data" / "_work" / p for p in peers}
            for w in works.values():
                shutil.rmtree(w, ignore_errors=True)
                w.mkdir(parents=True)
            for task in tasks:
                for p in peers:
                    if p == "feast" and task in FLOORS:
                        continue
                    d = pit_data if task in ("pit", "floor-pit") else data  # the PIT floor joins the same data
                    print(f"round {r + 1}/{repeat}", end=" ", file=sys.stderr)
                    rounds[p][task].append(
                        run_task_for(p, task, d, works[p], urls[p], iters, nice, ttl_days))
    return {p: {t: median_of(runs) for t, runs in by_task.items()} for p, by_task in rounds.items()}


def median_of(runs: list[dict], top: bool = True) -> dict:
    """Median of every number across rounds; a failed round or a PIT check with mismatches
    wins over the rest, so a bad round is never averaged away."""
    bad = [r for r in runs if "error" in r]
    if bad:
        return bad[0]
    if len(runs) == 1:
        return runs[0]
    out = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if key == "check":
            out[key] = max(values, key=lambda c: c["ref_rows_not_in_peer"] + c["peer_rows_not_in_ref"])
        elif isinstance(first, dict):
            out[key] = median_of(values, top=False)
        elif isinstance(first, int) and not isinstance(first, bool):
            out[key] = statistics.median_low(values)
        elif isinstance(first, float):
            out[key] = round(statistics.median(values), 4)
        else:
            out[key] = first
    if top:
        out["rounds"] = len(runs)
    return out


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}


def main() -> None:
    # a terminated run still stops its redis-servers (the ExitStack unwinds on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small smoke size (50k rows)")
    size.add_argument("--large", action="store_true", help="PIT on 1M entity rows x 10M rows")
    skip = ap.add_mutually_exclusive_group()
    skip.add_argument("--skip-feast", action="store_true")
    skip.add_argument("--skip-featurectl", action="store_true")
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"subset of {','.join(TASKS)}")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every task (fresh stores each round); figures are medians")
    ap.add_argument("--iters", type=int, help="online calls of 1 entity (100-entity calls: /5)")
    ap.add_argument("--ttl-days", type=int, default=DEFAULT_TTL_DAYS,
                    help="the view's ttl for both peers (0 = none; see harness.DEFAULT_TTL_DAYS)")
    ap.add_argument("--nice", type=int, default=0, help="niceness of the measured children")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    a = ap.parse_args()

    tasks = [t for t in a.tasks.split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        ap.error(f"unknown --tasks {sorted(unknown)}; choose from {TASKS}")
    base = SIZES["quick" if a.quick else "default"]
    iters = a.iters or (200 if a.quick else 1000)
    py = sys.executable
    data = ensure_data(*base, python=py)
    pit_data = ensure_data(*SIZES["large"], python=py) if a.large else data

    peers = [p for p in ("featurectl", "feast")
             if not (p == "feast" and a.skip_feast) and not (p == "featurectl" and a.skip_featurectl)]
    if "feast" in peers:
        subprocess.run(["bash", str(BENCH_DIR / "setup_feast.sh")], check=True)

    stamp = dt.datetime.now(dt.timezone.utc)
    niceness = os.nice(0)
    command = ((f"nice -n {niceness} " if niceness else "") + ".venv/bin/python bench/run.py "
               + shlex.join(sys.argv[1:]))
    header = {"date": stamp.isoformat(timespec="seconds"), "command": command.strip(),
              "ttl_days": a.ttl_days, "data": load_meta(data), "pit_data": load_meta(pit_data),
              "machine": machine(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    if "featurectl" in peers:
        header["featurectl_bytecode"] = compile_featurectl()
    results = run_peers(peers, tasks, data, pit_data, iters, a.nice, a.ttl_days, a.repeat)
    header["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    suffix = "-quick" if a.quick else "-large" if a.large else ""
    for peer in peers:
        save_results(BENCH_DIR / "results" / f"{peer}-{stamp:%Y-%m-%d}{suffix}.json", header,
                     results[peer], partial=set(tasks) != set(TASKS))

    table = format_table(results.get("featurectl", {}), results.get("feast", {}))
    floors = floor_table(results.get("featurectl", {}), results.get("feast", {}))
    if floors:
        table += "\n\n" + floors
    print(table)
    if a.out:
        a.out.write_text(report(header, table, results))


def compile_featurectl() -> str:
    """Byte-compile the featurectl package the peer imports, as installing a wheel does (pip
    compiles every module; Feast's venv has its bytecode). An editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 (this machine's environment) never gets any, so every child
    would compile featurectl's sources again: ~35 ms of a `get-online` process and more of a
    first materialization (docs/benchmarks.md). Stale files are rewritten, fresh ones kept."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("featurectl")
    if spec is None or not spec.submodule_search_locations:
        return "featurectl not found"
    package = list(spec.submodule_search_locations)[0]
    ok = compileall.compile_dir(package, quiet=1)
    return f"compiled {package}" if ok else f"compiling {package} failed"


def save_results(path: Path, header: dict, results: dict, partial: bool) -> None:
    """Write one peer's results; a run of a subset of --tasks updates the same day's file
    (the tasks it did not run keep their figures). Each task records the command that made
    it, and `commands` lists exactly those."""
    path.parent.mkdir(exist_ok=True)
    doc = {**header, "results": {}}
    if partial and path.exists():
        doc["results"] = json.loads(path.read_text()).get("results", {})
    doc["results"].update({t: {**r, "command": header["command"]} for t, r in results.items()})
    doc["commands"] = list(dict.fromkeys(r.get("command", "?") for r in doc["results"].values()))
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


def report(header: dict, table: str, results: dict) -> str:
    m, d, p = header["machine"], header["data"], header["pit_data"]
    checks = {peer: r.get("pit", {}).get("check") for peer, r in results.items()}
    return (
        "# Benchmarks\n\n"
        f"Command: `{header['command']}` ({header['date']}; Python {m['python']}, "
        f"{m['cpus']} CPUs, {m['platform']}; load average {header['load_average_before'][0]} "
        f"before, {header['load_average_after'][0]} after).\n\n"
        f"Data: `gen_data.py` seed {d['args']['seed']}: {d['feature_rows']:,} feature rows, "
        f"{d['distinct_feature_ids']:,} entities, 10 features; PIT on {p['entity_df_rows']:,} "
        f"entity rows over {p['feature_rows']:,} feature rows.\n\n"
        "The last column is >1 when featurectl is better (faster, higher throughput or "
        "less memory).\n\n" + table + "\n\n"
        f"Point-in-time check against an independent DuckDB reference:\n\n"
        f"```json\n{json.dumps(checks, indent=1)}\n```\n"
    )


if __name__ == "__main__":
    main()
