"""Shared helpers of the benchmark: servers, child-process measurement, data, tables.

Standard library only at import time: the Feast peer (its own venv) imports the latency
helpers from here too, so both peers are timed by the same code.
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# ../shared/bench/gen_data.py beside the checkout; from a git worktree (/work/wt/<name>) or
# another clone, the nearest ancestor holding shared/bench/gen_data.py, or $FEATURECTL_GEN_DATA.
GEN_DATA = Path(os.environ.get("FEATURECTL_GEN_DATA") or next(
    (p / "shared" / "bench" / "gen_data.py" for p in ROOT.parents if (p / "shared" / "bench" / "gen_data.py").exists()),
    ROOT.parent / "shared" / "bench" / "gen_data.py"))
ID_BASE = 1_000_000  # gen_data.py assigns driver ids ID_BASE .. ID_BASE+entities-1
FEATURES = [f"f{i}" for i in range(10)]
VIEW = "driver_stats"
# The view's ttl in days, for both peers. 0 (no expiry) by default: gen_data.py's window ends
# 2026-01-31, and featurectl's Redis store expires keys at event time + ttl by the server's
# wall clock, so with a 30-day ttl every value would be gone the moment it is written.
# On this data a 30-day ttl never nulls a PIT row anyway (the whole window is 30 days).
DEFAULT_TTL_DAYS = 0


# --- latency -------------------------------------------------------------------------

def timed(call) -> tuple:
    """(call's result, its wall seconds)."""
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0


def run_peer(doc: str, peer: str, version, write_repo, open_store, tasks: dict) -> None:
    """The main of both peers: write the repository the task needs, open the store, run the
    task (chosen by prefix: materialize, pit, online, plan) and print one JSON object."""
    args = peer_args(doc)
    meta = load_meta(args.data)
    repo = write_repo(args.work, args.data, "pit" if args.task in ("pit", "plan", "floor-latest", "floor-pit") else args.store,
                      args.redis_url, args.ttl_days)
    store = open_store(repo, meta)
    family = next(name for name in tasks if args.task.startswith(name))
    emit({"peer": peer, "version": version(), "task": args.task, **tasks[family](store, meta, repo, args)})


def materialize_figures(run, entities: int) -> dict:
    """Time `run()` twice: the first call pays a fresh process's one-time costs (imports,
    engine start-up, creating tables), the repeat call rewrites the same values."""
    cold, warm = timed(run)[1], timed(run)[1]
    return {"seconds": round(cold, 3), "seconds_warm": round(warm, 3), "entities": entities,
            "entities_per_s": round(entities / cold, 1), "entities_per_s_warm": round(entities / warm, 1)}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty list")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def sample_ids(entities: int, n: int, seed: int) -> list[int]:
    """Deterministic ids that exist in the feature table."""
    rng = random.Random(seed)
    return [ID_BASE + rng.randrange(entities) for _ in range(n)]


def measure_latency(call, batches: list, warmup: int) -> dict:
    """Time call(batch) for each batch after `warmup` untimed calls; figures in ms."""
    for b in batches[:warmup]:
        call(b)
    times = []
    for b in batches:
        t0 = time.perf_counter()
        call(b)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "iters": len(times),
        "p50_ms": round(percentile(times, 50), 4),
        "p99_ms": round(percentile(times, 99), 4),
        "mean_ms": round(sum(times) / len(times), 4),
    }


def online_batches(entities: int, iters: int, per_call: int, seed: int) -> list[list[int]]:
    ids = sample_ids(entities, iters * per_call, seed)
    return [ids[i * per_call:(i + 1) * per_call] for i in range(iters)]


def time_command(argv: list[str], cwd: Path, runs: int, env: dict | None = None) -> dict:
    """Whole-process wall time of a CLI command (e.g. `plan`), median of `runs`."""
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if p.returncode not in (0, 4, 5):  # featurectl --detailed-exitcode codes are fine
            raise RuntimeError(f"{argv} exited {p.returncode}: {p.stderr[-2000:]}")
    return {"runs": [round(w, 4) for w in walls], "seconds": round(percentile(walls, 50), 4)}


def emit(result: dict) -> None:
    """A peer's single JSON line on stdout, read by run_task."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --- what both peers share ------------------------------------------------------------

TASK_NAMES = ["materialize-sqlite", "materialize-redis", "pit", "online-redis", "online-sqlite", "plan",
              "floor-latest", "floor-pit", "floor-sqlite", "floor-redis"]


def peer_args(doc: str):
    """The command line both peers take, so run.py drives them identically."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="gen_data.py output directory")
    ap.add_argument("--work", type=Path, required=True, help="where the peer builds its repository")
    ap.add_argument("--redis-url", help="redis://127.0.0.1:PORT/0 (the *-redis tasks)")
    ap.add_argument("--task", required=True, choices=TASK_NAMES)
    ap.add_argument("--iters", type=int, default=1000, help="online calls of 1 entity (100-entity calls: /5)")
    ap.add_argument("--plan-runs", type=int, default=5)
    ap.add_argument("--save-output", help="pit: write the training frame here (untimed)")
    ap.add_argument("--ttl-days", type=int, default=DEFAULT_TTL_DAYS, help="the view's ttl; 0 = none")
    args = ap.parse_args()
    args.store = "redis" if args.task.endswith("redis") else "sqlite"
    if args.store == "redis" and not args.redis_url:
        ap.error(f"--task {args.task} needs --redis-url redis://127.0.0.1:PORT/0")
    return args


def window(meta: dict):
    """The whole generated event-time window, with a day's margin on each side."""
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(meta["window_start"]) - timedelta(days=1),
            datetime.fromisoformat(meta["window_end"]) + timedelta(days=1))


def online_figures(call, load, meta: dict, iters: int) -> dict:
    """p50/p99 of call(ids) -> {feature: [values]} for 1 and for 100 entities per call.
    `load()` materializes first (untimed) when the online store turns out to be empty."""
    ents = meta["args"]["entities"]
    probe_ids = online_batches(ents, 1, 100, seed=99)[0]
    probe = call(probe_ids)
    if all(v is None for v in probe["f0"]):
        load()
        probe = call(probe_ids)
    if all(v is None for v in probe["f0"]):  # timing reads of nothing would mean nothing
        raise SystemExit(f"online reads return no values for ids {probe_ids[:3]}...: "
                         "materialize failed, or the ttl hides the data (check the clock)")
    warm = max(iters // 10, 5)
    return {"single": measure_latency(call, online_batches(ents, iters, 1, seed=1), warm),
            "batch100": measure_latency(call, online_batches(ents, max(iters // 5, 20), 100, seed=2), warm),
            "probe_nonnull_of_100": sum(v is not None for v in probe["f0"])}


def pit_figures(to_arrow, to_pandas, entity_rows: int, meta: dict, save: str | None) -> dict:
    """Time a point-in-time retrieval three times in one process: the first call to an Arrow
    table (cold: what a one-shot training job pays), a second one (warm), and one to pandas."""
    out, cold = timed(to_arrow)
    warm, df = timed(to_arrow)[1], timed(to_pandas)[1]
    if save:
        import pyarrow.parquet as pq

        pq.write_table(out, save)
    return {"seconds": round(cold, 3), "seconds_warm": round(warm, 3), "seconds_to_pandas": round(df, 3),
            "entity_rows": entity_rows, "feature_rows": meta["feature_rows"],
            "output_rows": out.num_rows, "rows_per_s": round(entity_rows / cold, 1)}


# --- private redis-server ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port == 6379:  # never the machine's shared Redis
        return free_port()
    return port


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(binary: str = "redis-server"):
    """Yield the URL of a private, non-persistent redis-server; stop it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _redis_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on 127.0.0.1:{port} did not start "
                                   f"(is `{binary}` installed? apt-get install redis-server)")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- child processes -----------------------------------------------------------------

def run_task(argv: list[str], log: Path, env: dict | None = None, nice: int = 0) -> dict:
    """Run one peer task in a child process; return its JSON plus that child's own wall
    time and peak RSS. A fresh, small wrapper process starts the child and reads its rusage:
    Linux carries a process's peak RSS across fork and exec, so a child forked straight from
    this (large, by now) process would report our memory as its own."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = tempfile.TemporaryFile(mode="w+")
    with tempfile.NamedTemporaryFile(mode="r", suffix=".json") as usage, open(log, "w") as err:
        wrapper = [sys.executable, "-S", __file__, "measure", usage.name, str(nice), "--", *argv]
        code = subprocess.run(wrapper, stdout=out, stderr=err, env=env).returncode
        measured = json.loads(usage.read() or "{}")
    out.seek(0)
    lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
    if code != 0 or not lines or not measured:
        return {"error": f"exit {code}; see {log}", "stderr_tail": log.read_text()[-3000:]}
    result = json.loads(lines[-1])
    result["process_wall_s"] = round(measured["wall_s"], 3)
    result["peak_rss_mb"] = round(measured["maxrss_kib"] / 1024.0, 1)
    return result


def _measure(usage_path: str, nice: int, argv: list[str]) -> int:
    """The wrapper: run argv, write its wall time and peak RSS (os.wait4: that child only)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, preexec_fn=(lambda: os.nice(nice)) if nice else None)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    Path(usage_path).write_text(json.dumps({"wall_s": wall, "maxrss_kib": usage.ru_maxrss}))
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


# --- data ----------------------------------------------------------------------------

def data_dir(rows: int, entities: int, entity_rows: int, seed: int = 0) -> Path:
    return BENCH_DIR / "data" / f"r{rows}-e{entities}-q{entity_rows}-s{seed}"


def ensure_data(rows: int, entities: int, entity_rows: int, python: str,
                seed: int = 0, nice: int = 10) -> Path:
    """Generate (once, cached by parameters) the benchmark data with gen_data.py."""
    out = data_dir(rows, entities, entity_rows, seed)
    if (out / "gen_meta.json").exists():
        return out
    probe = subprocess.run([python, "-c", "import numpy, pandas, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        raise RuntimeError(f"{python} lacks numpy/pandas/pyarrow needed by {GEN_DATA}: "
                           "run `make install` (the dev extras bring pandas and numpy)")
    subprocess.run(["nice", "-n", str(nice), python, str(GEN_DATA), "--out", str(out),
                    "--rows", str(rows), "--entities", str(entities),
                    "--entity-rows", str(entity_rows), "--seed", str(seed)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def load_meta(data: Path) -> dict:
    return json.loads((data / "gen_meta.json").read_text())


# --- results table -------------------------------------------------------------------

# (label, task, key path, unit, higher_is_better)
METRICS = [
    ("materialize -> SQLite (first call)", "materialize-sqlite", "entities_per_s", "entities/s", True),
    ("materialize -> SQLite (repeat call)", "materialize-sqlite", "entities_per_s_warm", "entities/s", True),
    ("materialize -> SQLite peak RSS", "materialize-sqlite", "peak_rss_mb", "MB", False),
    ("materialize -> Redis (first call)", "materialize-redis", "entities_per_s", "entities/s", True),
    ("materialize -> Redis (repeat call)", "materialize-redis", "entities_per_s_warm", "entities/s", True),
    ("materialize -> Redis peak RSS", "materialize-redis", "peak_rss_mb", "MB", False),
    ("PIT retrieval (first call)", "pit", "seconds", "s", False),
    ("PIT retrieval (repeat call)", "pit", "seconds_warm", "s", False),
    ("PIT retrieval peak RSS", "pit", "peak_rss_mb", "MB", False),
    ("online Redis 1 entity p50", "online-redis", "single.p50_ms", "ms", False),
    ("online Redis 1 entity p99", "online-redis", "single.p99_ms", "ms", False),
    ("online Redis 100 entities p50", "online-redis", "batch100.p50_ms", "ms", False),
    ("online Redis 100 entities p99", "online-redis", "batch100.p99_ms", "ms", False),
    ("online SQLite 1 entity p50", "online-sqlite", "single.p50_ms", "ms", False),
    ("online SQLite 1 entity p99", "online-sqlite", "single.p99_ms", "ms", False),
    ("online SQLite 100 entities p50", "online-sqlite", "batch100.p50_ms", "ms", False),
    ("online SQLite 100 entities p99", "online-sqlite", "batch100.p99_ms", "ms", False),
    ("`plan` (whole process)", "plan", "seconds", "s", False),
]


def _get(results: dict, task: str, key: str):
    node = results.get(task)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt(v) -> str:
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def format_table(fctl: dict, feast: dict) -> str:
    """Markdown table; the last column reads '>1 = featurectl better' for every metric."""
    lines = ["| metric | unit | featurectl | Feast 0.67 | featurectl advantage |",
             "|---|---|---:|---:|---:|"]
    for label, task, key, unit, higher in METRICS:
        a, b = _get(fctl, task, key), _get(feast, task, key)
        if a is None and b is None:  # task not run (--tasks, --skip-*)
            continue
        ratio = "—"
        if a and b:
            ratio = f"{(a / b) if higher else (b / a):.2f}×"
        lines.append(f"| {label} | {unit} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    return "\n".join(lines)


# --- point-in-time reference ---------------------------------------------------------

def check_pit(data: Path, output: Path, ttl_days: int) -> dict:
    """Compare a peer's training frame with an independent DuckDB ASOF reference of the
    SPEC §5 semantics (greatest event time <= T, created breaks ties, ttl inclusive).
    Order-insensitive row comparison, plus whether the input order was kept."""
    import duckdb  # main venv only; imported here so the Feast peer never needs it

    feats = ", ".join(FEATURES)
    keep = f"fts >= ts - INTERVAL {ttl_days} DAY" if ttl_days else "true"
    picked = ", ".join(f"CASE WHEN {keep} THEN {f} END AS {f}" for f in FEATURES)
    con = duckdb.connect()
    con.execute(f"""
      CREATE TEMP TABLE ref AS
      WITH f AS (SELECT driver_id, event_timestamp AS fts, {feats}
                 FROM read_parquet('{data / "features.parquet"}')
                 QUALIFY row_number() OVER (PARTITION BY driver_id, event_timestamp
                                            ORDER BY created DESC) = 1),
           e AS (SELECT driver_id, event_timestamp AS ts FROM read_parquet('{data / "entity_df.parquet"}'))
      SELECT e.driver_id, e.ts AS event_timestamp, {picked}
      FROM e ASOF LEFT JOIN f ON e.driver_id = f.driver_id AND e.ts >= f.fts""")
    cols = ", ".join(["driver_id", "CAST(event_timestamp AS TIMESTAMPTZ) AS event_timestamp"]
                     + [f"CAST({f} AS {'VARCHAR' if f == 'f9' else 'DOUBLE'}) AS {f}" for f in FEATURES])
    as_text = "* REPLACE (CAST(event_timestamp AS VARCHAR) AS event_timestamp)"  # no pytz needed
    con.execute(f"CREATE TEMP TABLE peer AS SELECT {cols} FROM read_parquet('{output}')")
    con.execute(f"CREATE TEMP TABLE refc AS SELECT {cols} FROM ref")
    missing = con.execute(f"SELECT {as_text} FROM (SELECT * FROM refc EXCEPT ALL SELECT * FROM peer) "
                          "ORDER BY driver_id LIMIT 3").fetchall()
    n_missing = con.execute("SELECT count(*) FROM (SELECT * FROM refc EXCEPT ALL SELECT * FROM peer)").fetchone()[0]
    n_extra = con.execute("SELECT count(*) FROM (SELECT * FROM peer EXCEPT ALL SELECT * FROM refc)").fetchone()[0]
    extra = con.execute(f"SELECT {as_text} FROM (SELECT * FROM peer EXCEPT ALL SELECT * FROM refc) "
                        "ORDER BY driver_id LIMIT 3").fetchall()
    same_order = con.execute(
        "SELECT count(*) = 0 FROM (SELECT driver_id, rowid FROM peer) p "
        f"FULL JOIN (SELECT driver_id, row_number() OVER () - 1 AS rowid FROM read_parquet('{data / 'entity_df.parquet'}')) e "
        "USING (rowid) WHERE p.driver_id IS DISTINCT FROM e.driver_id").fetchone()[0]
    return {"rows_ref": con.execute("SELECT count(*) FROM refc").fetchone()[0],
            "rows_peer": con.execute("SELECT count(*) FROM peer").fetchone()[0],
            "ref_rows_not_in_peer": n_missing, "peer_rows_not_in_ref": n_extra,
            "input_order_kept": bool(same_order),
            "sample_ref_not_in_peer": [str(r) for r in missing],
            "sample_peer_not_in_ref": [str(r) for r in extra]}


if __name__ == "__main__" and sys.argv[1:2] == ["measure"]:
    sys.exit(_measure(sys.argv[2], int(sys.argv[3]), sys.argv[5:]))


# --- featurectl beside its floors ------------------------------------------------------

# (label, featurectl task, key, floor tasks summed (their seconds_warm), target ratio or None)
FLOOR_RATIOS = [
    ("materialize -> SQLite, repeat call", "materialize-sqlite", "seconds_warm", ["floor-latest"], 1.5),
    ("materialize -> SQLite, first call", "materialize-sqlite", "seconds", ["floor-latest"], 2.0),
    ("materialize -> SQLite, repeat call vs latest + raw write", "materialize-sqlite", "seconds_warm",
     ["floor-latest", "floor-sqlite"], None),
    ("materialize -> Redis, repeat call", "materialize-redis", "seconds_warm", ["floor-latest"], 1.5),
    ("materialize -> Redis, first call", "materialize-redis", "seconds", ["floor-latest"], 2.0),
    ("materialize -> Redis, repeat call vs latest + raw write", "materialize-redis", "seconds_warm",
     ["floor-latest", "floor-redis"], None),
    ("PIT, repeat call", "pit", "seconds_warm", ["floor-pit"], 1.15),
    ("PIT, first call", "pit", "seconds", ["floor-pit"], None),
]


def floor_table(fctl: dict, feast: dict) -> str:
    """featurectl's seconds beside the floor measured in the same run (the floors' repeat
    calls), the ratio, and Feast's seconds for the same call."""
    lines = ["| path | featurectl s | floor | floor s | featurectl / floor | Feast 0.67 s | target | met |",
             "|---|---:|---|---:|---:|---:|---|---|"]
    for label, task, key, floors, target in FLOOR_RATIOS:
        mine = _get(fctl, task, key)
        parts = [_get(fctl, f, "seconds_warm") for f in floors]
        if mine is None or any(p is None for p in parts):
            continue
        floor = sum(parts)
        ratio = mine / floor if floor else None
        theirs = _get(feast, task, key)
        met = "" if target is None or ratio is None else ("yes" if ratio <= target else "**no**")
        lines.append(f"| {label} | {_fmt(mine)} | {' + '.join(floors)} | {_fmt(floor)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}×'} | {_fmt(theirs)} | "
                     f"{'' if target is None else f'≤ {target}×'} | {met} |")
    return "\n".join(lines) if len(lines) > 2 else ""
