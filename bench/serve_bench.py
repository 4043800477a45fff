"""HTTP serving benchmark: `featurectl serve` vs `feast serve` (default and tuned) on the
same data, driven by wrk (installed from Debian when missing).

  .venv/bin/python bench/serve_bench.py [--quick] [--seconds 10] [--out docs/benchmarks.md]

Both repositories are built and materialized from the benchmark data (bench/harness.py), the
servers are started here, one at a time, and wrk posts Feast's request for 1 entity x 10
features (random ids) at 1, 4 and 16 connections, then 100 entities at 1 connection.

The push part (`--part push` alone) posts `POST /push` bodies of 1,000 rows x 10 features to
`featurectl serve` at 1 and 4 connections (SPEC §8 target: 50,000 rows/s): each row a random
driver with event times after the materialized window, so every row is validated and written.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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

# Bodies are built once per wrk thread: the client's Lua should not be what is measured.
PUSH_LUA = """
math.randomseed(11)
local base, span, rows, bodies = {base}, {span}, {rows}, {{}}
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
  for _, f in ipairs({{{ints}}}) do cols[#cols + 1] = '"' .. f .. '": [' .. table.concat(ints, ",") .. ']' end
  for _, f in ipairs({{{texts}}}) do cols[#cols + 1] = '"' .. f .. '": [' .. table.concat(texts, ",") .. ']' end
  local body = '{{"feature_view": "{view}", "to": "online", "df": {{' .. table.concat(cols, ", ") .. '}}}}'
  bodies[b] = wrk.format("POST", "/push", {{["Content-Type"] = "application/json"}}, body)
end
local n = 0
request = function()
  n = n % #bodies + 1
  return bodies[n]
end
"""
PUSH_ROWS = 1_000


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or "wrk"


def featurectl_repo(work: Path, data: Path, meta: dict) -> Path:
    from featurectl import FeatureStore
    from featurectl_peer import write_repo

    repo = write_repo(work, data, "sqlite", None, 0)
    with FeatureStore(repo) as store:
        store.apply()
        store.materialize(*window(meta))
    return repo


def feast_repo(work: Path, data: Path) -> Path:
    subprocess.run([str(FEAST_PY), str(BENCH_DIR / "feast_peer.py"), "--data", str(data), "--work", str(work),
                    "--task", "materialize-sqlite", "--ttl-days", "0"], check=True, stdout=subprocess.DEVNULL)
    return work / "feast-sqlite"


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


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(binary: str, port: int, connections: int, seconds: int, per: int, entities: int, script: Path) -> dict:
    features = ", ".join(f'"{VIEW}:{f}"' for f in FEATURES)
    script.write_text(LUA.format(base=ID_BASE, span=entities, per=per, features=features))
    return run_wrk(binary, port, connections, seconds, script)


def push_wrk(binary: str, port: int, connections: int, seconds: int, entities: int, meta: dict,
             script: Path) -> dict:
    """wrk posting 1,000-row push bodies; event times start after the materialized window."""
    def names(part: slice) -> str:
        return ", ".join(f'"{f}"' for f in FEATURES[part])

    start = int(window(meta)[1].timestamp())
    script.write_text(PUSH_LUA.format(base=ID_BASE, span=entities, rows=PUSH_ROWS, start=start, view=VIEW,
                                      floats=names(slice(0, 6)), ints=names(slice(6, 9)), texts=names(slice(9, 10))))
    result = run_wrk(binary, port, connections, seconds, script)
    result["rows_per_s"] = result["rps"] * PUSH_ROWS
    return result


def run_wrk(binary: str, port: int, connections: int, seconds: int, script: Path) -> dict:
    out = subprocess.run([binary, "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(latency) != 2:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]), "errors": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--part", choices=("all", "read", "push"), default="all",
                        help="read: get-online-features, both servers; push: POST /push, featurectl only")
    args = parser.parse_args()
    binary = ensure_wrk()
    data = ensure_data(*SIZES["quick" if args.quick else "default"], sys.executable)
    meta = load_meta(data)
    entities = meta["distinct_feature_ids"]
    work = Path(tempfile.mkdtemp(prefix="featurectl-serve-bench-"))
    featurectl_argv = lambda port: [sys.executable, "-m", "featurectl", "serve", "--port", str(port)]  # noqa: E731
    sections = []
    if args.part in ("all", "read"):
        sections.append(read_section(args, binary, data, meta, entities, work, featurectl_argv))
    if args.part in ("all", "push"):
        sections.append(push_section(args, binary, meta, entities, work, featurectl_argv, featurectl_repo(
            work / "push", data, meta)))
    if args.out:
        command = "`.venv/bin/python bench/serve_bench.py" + (" --quick" if args.quick else "") + "`"
        with open(args.out, "a") as f:
            f.write(f"\n\n## HTTP serving ({command}, {time.strftime('%Y-%m-%d')})\n\n" + "\n\n".join(sections) + "\n")


def push_section(args, binary: str, meta: dict, entities: int, work: Path, argv, repo: Path) -> str:
    """POST /push of 1,000-row batches against `featurectl serve` at 1 and 4 connections."""
    port = free_port()
    proc = start(argv(port), repo, port)
    rows = []
    try:
        for connections in (1, 4):
            result = push_wrk(binary, port, connections, args.seconds, entities, meta, work / "push.lua")
            rows.append((connections, result))
            print("push", connections, result, file=sys.stderr, flush=True)
    finally:
        stop(proc)
    table = ["| server | connections | rows/request | rows/s | req/s | p50 ms | p99 ms | non-2xx |",
             "|---|---|---|---|---|---|---|---|"]
    table += [f"| featurectl serve (defaults), POST /push | {c} | {PUSH_ROWS:,} | {r['rows_per_s']:,.0f} | "
              f"{r['rps']:,.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |" for c, r in rows]
    text = "\n".join(table)
    print(text)
    return text


def read_section(args, binary: str, data: Path, meta: dict, entities: int, work: Path, argv) -> str:
    """get-online-features against featurectl serve and, when its venv is there, feast serve."""
    servers = {"featurectl serve (defaults)": (argv, featurectl_repo(work, data, meta))}
    if FEAST_PY.exists():
        feast = FEAST_PY.with_name("feast")
        repo = feast_repo(work, data)
        servers["feast serve (defaults)"] = (lambda port: [str(feast), "serve", "-p", str(port)], repo)
        servers["feast serve (tuned: -w 2 --no-access-log --max-requests 0)"] = (
            lambda port: [str(feast), "serve", "-p", str(port), "-w", "2", "--no-access-log", "--max-requests", "0"], repo)
    rows = []
    for name, (argv, repo) in servers.items():
        port = free_port()
        proc = start(argv(port), repo, port)
        try:
            for connections, per in ((1, 1), (4, 1), (16, 1), (1, 100)):
                result = wrk(binary, port, connections, args.seconds, per, entities, work / "post.lua")
                rows.append((name, connections, per, result))
                print(name, connections, per, result, file=sys.stderr, flush=True)
        finally:
            stop(proc)
    table = ["| server | connections | entities/request | req/s | p50 ms | p99 ms | non-2xx |", "|---|---|---|---|---|---|---|"]
    table += [f"| {n} | {c} | {p} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |"
              for n, c, p, r in rows]
    text = "\n".join(table)
    print(text)
    return text


if __name__ == "__main__":
    main()
