"""HTTP serving benchmark: `featurectl serve` vs `feast serve` (default and tuned) on the
same data, driven by wrk (installed from Debian when missing).

  .venv/bin/python bench/serve_bench.py [--quick] [--seconds 10] [--out docs/benchmarks.md]

Both repositories are built and materialized from the benchmark data (bench/harness.py), the
servers are started here, one at a time, and wrk posts Feast's request for 1 entity x 10
features (random ids) at 1, 4 and 16 connections, then 100 entities at 1 connection.
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
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features", data=body),
                                   timeout=2)
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
    out = subprocess.run([binary, "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"]), "errors": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    binary = ensure_wrk()
    data = ensure_data(*SIZES["quick" if args.quick else "default"], sys.executable)
    meta = load_meta(data)
    entities = meta["distinct_feature_ids"]
    work = Path(tempfile.mkdtemp(prefix="featurectl-serve-bench-"))
    servers = {
        "featurectl serve (defaults)": (lambda port: [sys.executable, "-m", "featurectl", "serve", "--port", str(port)],
                                        featurectl_repo(work, data, meta)),
    }
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
    if args.out:
        command = "`.venv/bin/python bench/serve_bench.py" + (" --quick" if args.quick else "") + "`"
        with open(args.out, "a") as f:
            f.write(f"\n\n## HTTP serving ({command}, {time.strftime('%Y-%m-%d')})\n\n{text}\n")


if __name__ == "__main__":
    main()
