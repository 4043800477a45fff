"""A/B of `featurectl serve` between two checkouts on the same data and the same online store.

  .venv/bin/python bench/serve_ab.py OLD_TREE NEW_TREE [--store redis|sqlite] [--sqlite-too]
      [--loads 16x1 1x1] [--rounds 6] [--seconds 5]

Each tree is a checkout (its `featurectl` package is put first on PYTHONPATH of its server). One
repository is built and materialized by this checkout (bench/serve_bench.py, private
redis-server on a free port), then both servers are started at once on it, and the loads are
run on each in alternating order round by round, so that a machine whose load drifts weighs on
both alike (the figures of a shared machine are noisy; CPU per request much less than req/s).
Per run: wrk's req/s, p50 and p99, the server's CPU per request and the redis-server's
(user+sys from /proc); at the end per load the medians and the paired new/old ratios.
`--sqlite-too` adds a third server, NEW_TREE on the SQLite store, as a reference.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_bench as sb  # noqa: E402
from harness import ensure_data, free_port, load_meta, redis_server  # noqa: E402


def _redis_pid(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as client:
        return int(client.info("server")["process_id"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def _start(tree: str, repo: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "featurectl", "serve", "--port", str(port)], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(Path(tree).resolve())}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"featurectl serve of {tree} did not start") from None
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--sqlite-too", action="store_true", help="a third server: NEW on SQLite")
    parser.add_argument("--loads", nargs="+", type=sb._load, default=[(16, 1), (1, 1)], metavar="CxE")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    wrk = sb.ensure_wrk()
    data = ensure_data(*sb.SIZES["default"], sys.executable)
    meta = load_meta(data)
    work = Path(tempfile.mkdtemp(prefix="featurectl-serve-ab-"))
    script = lambda per: sb.read_script(per, meta["distinct_feature_ids"], work / f"post{per}.lua")  # noqa: E731
    with ExitStack() as stack:
        url = stack.enter_context(redis_server()) if args.store == "redis" else None
        redis_pid = _redis_pid(url) if url else None
        repo = sb.featurectl_repo(work / args.store, data, meta, args.store, url)
        repos = {"old": (args.old, repo), "new": (args.new, repo)}
        if args.sqlite_too:
            repos["new on sqlite"] = (args.new, sb.featurectl_repo(work / "sqlite", data, meta, "sqlite", None))
        servers = {}
        for name, (tree, where) in repos.items():
            servers[name] = _start(tree, where)
            stack.callback(sb.stop, servers[name][0])
            sb.run_wrk(wrk, servers[name][0], servers[name][1], 16, sb.WARM_UP_SECONDS, script(1))
        runs: dict[tuple, list[dict]] = {(name, load): [] for name in servers for load in args.loads}
        for r in range(args.rounds):
            for load in args.loads:
                for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
                    proc, port = servers[name]
                    before = _cpu_seconds(redis_pid) if redis_pid and name != "new on sqlite" else 0.0
                    result = sb.run_wrk(wrk, proc, port, load[0], args.seconds, script(load[1]))
                    after = _cpu_seconds(redis_pid) if redis_pid and name != "new on sqlite" else 0.0
                    result["redis_us"] = (after - before) / max(result["rps"] * args.seconds, 1) * 1e6
                    result["load"] = os.getloadavg()[0]
                    runs[(name, load)].append(result)
                    print(f"round {r} {name} {load[0]}x{load[1]}: {result}", file=sys.stderr, flush=True)
    print("| server | connections | entities | req/s | p50 ms | p99 ms | server CPU µs/req | redis-server CPU µs/req | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for load in args.loads:
        for name in servers:
            m = {k: statistics.median(x[k] for x in runs[(name, load)])
                 for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "redis_us", "load")}
            print(f"| {name} | {load[0]} | {load[1]} | {m['rps']:,.0f} | {m['p50_ms']:.3f} | {m['p99_ms']:.2f} | "
                  f"{m['cpu_us_per_req']:.0f} | {m['redis_us']:.1f} | {m['load']:.2f} |")
    for load in args.loads:
        pairs = list(zip(runs[("old", load)], runs[("new", load)]))
        rps = [n["rps"] / o["rps"] for o, n in pairs]
        cpu = [(n["cpu_us_per_req"] + n["redis_us"]) / (o["cpu_us_per_req"] + o["redis_us"]) for o, n in pairs]
        print(f"{load[0]}x{load[1]}: req/s new/old median {statistics.median(rps):.2f} "
              f"({', '.join(f'{x:.2f}' for x in rps)}); server + redis-server CPU per request new/old median "
              f"{statistics.median(cpu):.2f}")


if __name__ == "__main__":
    main()
