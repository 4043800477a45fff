"""HTTP serving benchmark: `featurectl serve` vs `feast serve` (default and tuned) on the
same data, driven by wrk (installed from Debian when missing).

  .venv/bin/python bench/serve_bench.py [--part all|read|push|logging] [--stores sqlite redis]
      [--featurectl-only] [--loads 1x1 4x1 16x1 1x100] [--rounds 3] [--seconds 10] [--out FILE]

Both repositories are built and materialized from the benchmark data (bench/harness.py), once
per online store: SQLite, and Redis on a private redis-server per peer started here on a free
port (as bench/run.py does for materialize-redis). The servers are started here, one at a
time, and wrk posts Feast's request for 1 entity x 10 features (random ids) at 1, 4 and 16
connections, then 100 entities at 1 connection (`--loads CONNECTIONSxENTITIES` picks some).
Beside wrk's figures each row has the server's CPU per request (user+sys of its whole process
tree over the run, from /proc: what a loaded machine does not disturb much) and, after the
loads, the resident memory of each worker process (VmRSS).

`--part logging` (featurectl only) starts two servers, `--log-features DIR` off and on, and
runs the same loads on each in alternating order for `--rounds` rounds; it reports the
medians and the on/off ratios of throughput and of CPU per request (SPEC §8 target: logging
costs at most 10%), and the feature-log writer process apart: its RSS beside the workers',
and its share of the server's CPU per request (a child of the server, it is in the total),
and each run's busiest worker's share of the workers' CPU (1.00: one worker got every
connection, and that run's req/s is about half). Every server gets a 2-second wrk run before it is measured.

`--part push` posts `POST /push` bodies of 1,000 rows x 10 features to `featurectl serve` at 1
and 4 connections (SPEC §8 target: 50,000 rows/s): each row a random driver with event times
after the materialized window, so every row is validated and written. `--push-values fresh`
(the default) gives every request new values, so the store writes every row; `repeated` sends
20 bodies again unchanged, which SQLite then skips writing (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BENCH_DIR, FEATURES, ID_BASE, VIEW, ensure_data, free_port, load_meta, window  # noqa: E402

FEAST_PY = BENCH_DIR / ".venv-feast" / "bin" / "python"
SIZES = {"quick": (50_000, 5_000, 5_000), "default": (1_000_000, 100_000, 100_000)}
LUA = """
math.randomseed(7)
local base, span, per = {base}, {span}, {per}
request = function()
  local ids = {{}}
  for i = 1, per do ids[i] = tostring(base + math.random(0, span - 1)) end
  local body = '{{"features": [{features}], "entities": {{"driver_id": [' .. table.concat(ids, ",") .. ']}}}}'
  return wrk.format("POST", "/get-online-features", {{["Content-Type"] = "application/json"}}, body)
end
"""

# Bodies are built once per wrk thread: the client's Lua should not be what is measured. With
# `fresh`, each request carries a new column of ints (the first int feature; ~0.1 ms of Lua),
# so every row's stored value changes: a body sent again unchanged rewrites identical rows,
# which SQLite leaves unwritten (it compares an overwritten cell with the old one), so
# repeated bodies measure a store that barely writes.
PUSH_LUA = """
math.randomseed(11)
local base, span, rows, fresh, bodies = {base}, {span}, {rows}, {fresh}, {{}}
local headers = {{["Content-Type"] = "application/json"}}
for b = 1, 20 do
  local ids, times, floats, ints, texts = {{}}, {{}}, {{}}, {{}}, {{}}
  for i = 1, rows do
    ids[i] = tostring(base + math.random(0, span - 1))
    times[i] = '"' .. os.date("!%Y-%m-%dT%H:%M:%S", {start} + b * rows + i) .. '"'
    floats[i] = string.format("%.4f", math.random())
    ints[i] = tostring(math.random(0, 500))
    texts[i] = '"v' .. math.random(0, 9) .. '"'
  end
  local cols = {{'"driver_id": [' .. table.concat(ids, ",") .. ']',
                 '"event_timestamp": [' .. table.concat(times, ",") .. ']'}}
  for _, f in ipairs({{{floats}}}) do cols[#cols + 1] = '"' .. f .. '": [' .. table.concat(floats, ",") .. ']' end
  for _, f in ipairs({{{texts}}}) do cols[#cols + 1] = '"' .. f .. '": [' .. table.concat(texts, ",") .. ']' end
  local int_names = {{{ints}}}
  for i = 2, #int_names do cols[#cols + 1] = '"' .. int_names[i] .. '": [' .. table.concat(ints, ",") .. ']' end
  local head = '{{"feature_view": "{view}", "to": "online", "df": {{' .. table.concat(cols, ", ")
  local first = ', "' .. int_names[1] .. '": ['
  bodies[b] = {{head = head, first = first, whole = wrk.format("POST", "/push", headers,
                head .. first .. table.concat(ints, ",") .. ']}}}}')}}
end
local n, column = 0, {{}}
request = function()
  n = n % #bodies + 1
  local body = bodies[n]
  if not fresh then return body.whole end
  for i = 1, rows do column[i] = tostring(math.random(0, 500)) end
  return wrk.format("POST", "/push", headers, body.head .. body.first .. table.concat(column, ",") .. ']}}}}')
end
"""
PUSH_ROWS = 1_000
LOADS = ((1, 1), (4, 1), (16, 1), (1, 100))  # (connections, entities per request)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def featurectl_repo(work: Path, data: Path, meta: dict, store: str = "sqlite", redis_url: str | None = None) -> Path:
    from featurectl import FeatureStore
    from featurectl_peer import write_repo

    repo = write_repo(work, data, store, redis_url, 0)
    with FeatureStore(repo) as sdk:
        sdk.apply()
        sdk.materialize(*window(meta))
    return repo


def feast_repo(work: Path, data: Path, store: str, redis_url: str | None) -> Path:
    subprocess.run([str(FEAST_PY), str(BENCH_DIR / "feast_peer.py"), "--data", str(data), "--work", str(work),
                    "--task", f"materialize-{store}", "--ttl-days", "0",
                    *(["--redis-url", redis_url] if redis_url else [])], check=True, stdout=subprocess.DEVNULL)
    return work / f"feast-{store}"


def start(argv: list[str], cwd: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "FEAST_USAGE": "False"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            body = json.dumps({"features": [f"{VIEW}:f0"], "entities": {"driver_id": [ID_BASE]}}).encode()
            # urllib's default Content-Type is a form; Feast's server refuses a JSON body sent as one (422).
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features", data=body,
                                                          headers={"Content-Type": "application/json"}), timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"{argv[0]} did not answer on port {port}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


# --- the server's processes, from /proc ------------------------------------------------

def _tree(pid: int) -> list[int]:
    """pid and its descendants, alive now (children of any of a process's threads: featurectl
    restarts its feature-log writer from a thread)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            children = " ".join(t.read_text() for t in Path(f"/proc/{p}/task").glob("*/children")).split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """user+sys of the server's process tree. Reaped children (a recycled Feast worker) count
    in their parent's cutime/cstime, live ones in their own utime/stime: none twice."""
    return sum(_cpu_seconds(p) for p in _tree(pid))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def writer_cpu_seconds(pid: int) -> float:
    """user+sys of featurectl's feature-log writer under the server (0 when there is none)."""
    total = 0.0
    for p in _tree(pid)[1:]:
        try:
            if LOG_WRITER in Path(f"/proc/{p}/cmdline").read_bytes():
                total += _cpu_seconds(p)
        except OSError:
            continue
    return total


LOG_WRITER = b"featurectl.server.log_writer"  # featurectl's feature-log writer process


def worker_cpu_seconds(pid: int) -> list[float]:
    """user+sys of each serving worker (the processes `worker_rss_mb` measures)."""
    return [_cpu_seconds(p) for p in _serving(pid)] or [_cpu_seconds(pid)]


def worker_rss_mb(pid: int, writer: bool = False) -> list[float]:
    """VmRSS of each worker: the descendants that serve (uvicorn's spawned workers, gunicorn's
    forks; not multiprocessing's resource tracker nor featurectl's feature-log writer), or the
    process itself when it has none. writer=True: the feature-log writer's instead."""
    rss = [mb for p in _serving(pid, writer) for mb in _rss_mb(p)]
    return rss or ([] if writer else _rss_mb(pid))


def _serving(pid: int, writer: bool = False) -> list[int]:
    """The descendants that serve, or with writer=True the feature-log writer."""
    found = []
    for p in _tree(pid)[1:]:
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline and (LOG_WRITER in cmdline) == writer:
            found.append(p)
    return found


def _rss_mb(pid: int) -> list[float]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    kb = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return [int(kb.group(1)) / 1024] if kb else []


# --- wrk -------------------------------------------------------------------------------

def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def read_script(per: int, entities: int, script: Path) -> Path:
    features = ", ".join(f'"{VIEW}:{f}"' for f in FEATURES)
    script.write_text(LUA.format(base=ID_BASE, span=entities, per=per, features=features))
    return script


def push_script(entities: int, meta: dict, script: Path, fresh: bool = True) -> Path:
    """1,000-row push bodies; event times start after the materialized window; `fresh`: new
    values in every request (see PUSH_LUA)."""
    def names(part: slice) -> str:
        return ", ".join(f'"{f}"' for f in FEATURES[part])

    start = int(window(meta)[1].timestamp())
    script.write_text(PUSH_LUA.format(base=ID_BASE, span=entities, rows=PUSH_ROWS, start=start, view=VIEW,
                                      fresh="true" if fresh else "false",
                                      floats=names(slice(0, 6)), ints=names(slice(6, 9)), texts=names(slice(9, 10))))
    return script


def run_wrk(binary: str, proc: subprocess.Popen, port: int, connections: int, seconds: int, script: Path) -> dict:
    """wrk's rate and latency, and the server's CPU per request over the same run."""
    cpu, writer, workers = tree_cpu_seconds(proc.pid), writer_cpu_seconds(proc.pid), worker_cpu_seconds(proc.pid)
    out = subprocess.run([binary, "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    cpu = tree_cpu_seconds(proc.pid) - cpu
    writer = writer_cpu_seconds(proc.pid) - writer
    workers = [after - before for after, before in zip(worker_cpu_seconds(proc.pid), workers)]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(latency) != 2:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]), "errors": int(errors.group(1)) if errors else 0,
            "cpu_us_per_req": cpu / max(requests, 1) * 1e6, "writer_cpu_us_per_req": writer / max(requests, 1) * 1e6,
            # uvicorn's workers accept from one socket: all of a run's connections can land on
            # one worker (38 of 153 runs measured at 4 connections), which halves its req/s
            "busiest_worker_share": max(workers) / sum(workers) if sum(workers) > 0 else 1.0}


Argv = Callable[[int], list[str]]  # a server's command line for a port


WARM_UP_SECONDS = 2  # one short wrk run before measuring: first requests pay imports and caches


@contextmanager
def serving(binary: str, argv: Argv, repo: Path, warm_up: tuple[int, Path]):
    """A started, warmed-up server: (process, port). Stopped on exit."""
    port = free_port()
    proc = start(argv(port), repo, port)
    try:
        run_wrk(binary, proc, port, warm_up[0], WARM_UP_SECONDS, warm_up[1])
        yield proc, port
    finally:
        stop(proc)


def measure(binary: str, name: str, argv: Argv, repo: Path, loads, seconds: int, script) -> tuple[list, list]:
    """Start one server, run each (connections, entities/request) load, read its workers' RSS."""
    with serving(binary, argv, repo, (loads[0][0], script(loads[0][1]))) as (proc, port):
        results = []
        for connections, per in loads:
            result = run_wrk(binary, proc, port, connections, seconds, script(per))
            results.append(result)
            print(name, connections, per, result, file=sys.stderr, flush=True)
        return results, worker_rss_mb(proc.pid)


def _wrk_cells(r: dict) -> str:
    """A wrk result's table cells: req/s, p50, p99, server CPU per request."""
    return f"{r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us_per_req']:,.0f}"


def _printed(table: list[str]) -> str:
    """The markdown table as one text, printed."""
    text = "\n".join(table)
    print(text)
    return text


def _rss(rss: list[float]) -> str:
    return " / ".join(f"{mb:.0f}" for mb in rss)


# --- the parts -------------------------------------------------------------------------

def featurectl_argv(*extra: str) -> Argv:
    return lambda port: [sys.executable, "-m", "featurectl", "serve", "--port", str(port), *extra]


def feast_servers(feast: Path) -> dict[str, Argv]:
    return {"feast serve (defaults)": lambda port: [str(feast), "serve", "-p", str(port)],
            "feast serve (tuned: -w 2 --no-access-log --max-requests 0)": lambda port: [
                str(feast), "serve", "-p", str(port), "-w", "2", "--no-access-log", "--max-requests", "0"]}


READ_HEADER = ["| server | online store | connections | entities/request | req/s | p50 ms | p99 ms | "
               "server CPU µs/request | non-2xx | RSS MB per worker |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]


def read_section(args, binary: str, data: Path, meta: dict, work: Path) -> str:
    """get-online-features against featurectl serve and (unless --featurectl-only, and when its
    venv is there) feast serve, on each online store."""
    from harness import redis_server

    entities = meta["distinct_feature_ids"]
    with_feast = FEAST_PY.exists() and not args.featurectl_only
    table = list(READ_HEADER)
    for store in args.stores:
        with redis_server() as featurectl_url, redis_server() as feast_url:
            urls = (featurectl_url, feast_url) if store == "redis" else (None, None)
            servers = {"featurectl serve (defaults)": (featurectl_argv(), featurectl_repo(
                work / store, data, meta, store, urls[0]))}
            if with_feast:
                repo = feast_repo(work / store, data, store, urls[1])
                servers.update({name: (argv, repo) for name, argv in feast_servers(FEAST_PY.with_name("feast")).items()})
            for name, (argv, repo) in servers.items():
                results, rss = measure(binary, name, argv, repo, args.loads, args.seconds,
                                       lambda per: read_script(per, entities, work / "post.lua"))
                table += [f"| {name} | {store} | {c} | {p} | {_wrk_cells(r)} | {r['errors']} | {_rss(rss)} |"
                          for (c, p), r in zip(args.loads, results)]
    return _printed(table)


def logging_section(args, binary: str, data: Path, meta: dict, work: Path) -> str:
    """featurectl serve with --log-features off and on, same loads, alternating."""
    entities = meta["distinct_feature_ids"]
    repo = featurectl_repo(work / "logging", data, meta)
    logs = work / "feature-logs"
    argvs = {"off": featurectl_argv(), "on": featurectl_argv("--log-features", str(logs))}
    script = lambda per: read_script(per, entities, work / "post.lua")  # noqa: E731
    runs: dict[str, list[list[dict]]] = {"off": [], "on": []}
    # Both servers up at once, the two measured load by load in alternating order: a machine
    # whose load drifts weighs on both alike.
    with ExitStack() as stack:
        servers = {mode: stack.enter_context(serving(binary, argv, repo, (16, script(1))))
                   for mode, argv in argvs.items()}
        for r in range(args.rounds):
            for mode in ("off", "on"):
                runs[mode].append([])
            for connections, per in args.loads:
                for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    proc, port = servers[mode]
                    result = run_wrk(binary, proc, port, connections, args.seconds, script(per))
                    runs[mode][-1].append(result)
                    print(f"--log-features {mode}", connections, per, result, file=sys.stderr, flush=True)
        rss = {mode: worker_rss_mb(proc.pid) for mode, (proc, _) in servers.items()}
        writer_rss = worker_rss_mb(servers["on"][0].pid, writer=True)
    logged = _parquet_rows(logs)  # after the stop: every file closed; logging did happen
    print("feature-log rows written:", logged, file=sys.stderr)
    table = ["| --log-features | connections | entities/request | req/s (median) | p50 ms | p99 ms | "
             "server CPU µs/request | of which the log writer | req/s on/off | CPU/request on/off | "
             "busiest worker's CPU share (runs) | RSS MB per worker (at the end) | RSS MB of the log writer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    medians = {mode: [_median([results[i] for results in rounds]) for i in range(len(args.loads))]
               for mode, rounds in runs.items()}
    shares = {mode: {load: " / ".join(f"{results[i]['busiest_worker_share']:.2f}" for results in rounds)
                     for i, load in enumerate(args.loads)} for mode, rounds in runs.items()}
    for mode in ("off", "on"):
        for (c, p), r, off in zip(args.loads, medians[mode], medians["off"]):
            table.append(f"| {mode} | {c} | {p} | {_wrk_cells(r)} | {r['writer_cpu_us_per_req']:,.0f} | "
                         f"{r['rps'] / off['rps']:.2f} | "
                         f"{r['cpu_us_per_req'] / off['cpu_us_per_req']:.2f} | {shares[mode][(c, p)]} | {_rss(rss[mode])} | "
                         f"{_rss(writer_rss) if mode == 'on' and writer_rss else '-'} |")
    return _printed(table)


def push_section(args, binary: str, data: Path, meta: dict, work: Path) -> str:
    """POST /push of 1,000-row batches against `featurectl serve` at 1 and 4 connections."""
    entities = meta["distinct_feature_ids"]
    repo = featurectl_repo(work / "push", data, meta)
    loads = [(1, PUSH_ROWS), (4, PUSH_ROWS)]
    results, rss = measure(binary, "featurectl serve, POST /push", featurectl_argv(), repo, loads, args.seconds,
                           lambda _: push_script(entities, meta, work / "push.lua", args.push_values == "fresh"))
    table = ["| server | connections | rows/request | rows/s | req/s | p50 ms | p99 ms | server CPU ms/request | "
             "non-2xx | RSS MB per worker |", "|---|---|---|---|---|---|---|---|---|---|"]
    table += [f"| featurectl serve (defaults), POST /push, {args.push_values} values | {c} | {p:,} | {r['rps'] * p:,.0f} | {r['rps']:,.1f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us_per_req'] / 1000:.1f} | {r['errors']} | {_rss(rss)} |"
              for (c, p), r in zip(loads, results)]
    return _printed(table)


def _median(results: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def _parquet_rows(directory: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in directory.rglob("*.parquet"))


def _load(text: str) -> tuple[int, int]:
    connections, per = text.lower().split("x")
    return int(connections), int(per)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the servers and redis-servers
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data (50k rows, 5k entities)")
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--out", type=Path, help="append the tables to this file")
    parser.add_argument("--part", choices=("all", "read", "push", "logging"), default="all",
                        help="read: get-online-features, both servers; push: POST /push, featurectl only; "
                             "logging: --log-features off vs on, featurectl only")
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "redis"), default=["sqlite", "redis"],
                        help="online stores of the read part")
    parser.add_argument("--featurectl-only", action="store_true", help="read part: skip feast serve")
    parser.add_argument("--loads", nargs="+", type=_load, default=list(LOADS), metavar="CxE",
                        help="connections x entities per request, e.g. 16x1 (read and logging parts)")
    parser.add_argument("--rounds", type=int, default=3, help="logging part: off/on rounds, alternating")
    parser.add_argument("--push-values", choices=("fresh", "repeated"), default="fresh",
                        help="push part: new values in every request (default), or 20 bodies sent again "
                             "unchanged (what this benchmark did before: SQLite then skips the identical rows)")
    args = parser.parse_args()
    binary = ensure_wrk()
    data = ensure_data(*SIZES["quick" if args.quick else "default"], sys.executable)
    meta = load_meta(data)
    work = Path(tempfile.mkdtemp(prefix="featurectl-serve-bench-"))
    parts = {"read": read_section, "logging": logging_section, "push": push_section}
    try:
        sections = [part(args, binary, data, meta, work) for name, part in parts.items() if args.part in ("all", name)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        command = "`.venv/bin/python bench/serve_bench.py " + " ".join(sys.argv[1:]) + "`"
        with open(args.out, "a") as f:
            f.write(f"\n\n## HTTP serving ({command}, {time.strftime('%Y-%m-%d')})\n\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
