"""A/B of `featurectl serve`'s POST /push between checkouts: server CPU per request, alternating.

  .venv/bin/python bench/push_ab.py NAME=TREE NAME=TREE ... [--pairs 5] [--seconds 8] [--conns 1 4]
      [--values fresh|repeated]

Each TREE is a checkout whose `featurectl` package is put first on its server's PYTHONPATH. The
benchmark's SQLite repository (bench/serve_bench.py's, 100,000 entities) is built and
materialized once; each run starts one tree's server on a fresh copy of it (pushes move the
store on: each run starts from the same file), gives it 2 s of wrk, then runs wrk with
serve_bench.py's push bodies (1,000 rows, fresh values by default) for `--seconds` at each
`--conns`. Per run: the server's CPU per request (user+sys of its process tree from /proc, as
serve_bench.py reads it), rows/s, non-2xx responses, the page faults per request of its
processes, the workers' RSS. The trees alternate, the order flipped at each pair, so that a
machine whose load drifts weighs on all alike; on a shared machine the CPU per request is the
figure to read, not rows/s. The medians per tree and connections are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_bench as sb  # noqa: E402
from harness import ensure_data, free_port, load_meta  # noqa: E402


def faults(pid: int) -> int:
    """Minor page faults of the server's process tree so far (the workers' are most of it)."""
    total = 0
    for p in sb._tree(pid):
        try:
            total += int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[7])
        except OSError:
            continue
    return total


def set_page_size(db: Path, size: int) -> None:
    """Rewrite a store file at another page size: SQLite changes it only on a VACUUM outside WAL."""
    import sqlite3

    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute(f"PRAGMA page_size={int(size)}")
        con.execute("VACUUM")
        con.execute("PRAGMA journal_mode=WAL")
        if con.execute("PRAGMA page_size").fetchone()[0] != size:
            raise SystemExit(f"{db}: page size {size} not taken")
    finally:
        con.close()


def one_run(tree: str, source: Path, work: Path, binary: str, script: Path, args, page_size: int | None = None) -> dict:
    repo = work / "run"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(source, repo)
    if page_size:
        set_page_size(repo / ".featurectl" / "online.db", page_size)
    os.environ["PYTHONPATH"] = tree  # sb.start passes the environment on to the server
    port = free_port()
    proc = sb.start([sys.executable, "-m", "featurectl", "serve", "--port", str(port)], repo, port)
    try:
        sb.run_wrk(binary, proc, port, 1, sb.WARM_UP_SECONDS, script)
        row: dict = {}
        for connections in args.conns:
            before = faults(proc.pid)
            r = sb.run_wrk(binary, proc, port, connections, args.seconds, script)
            requests = max(1.0, r["rps"] * args.seconds)
            row[connections] = {
                "cpu_ms_per_request": round(r["cpu_us_per_req"] / 1000, 2),
                "rows_per_s": round(r["rps"] * sb.PUSH_ROWS),
                "non_2xx": r["errors"],
                "faults_per_request": round((faults(proc.pid) - before) / requests),
            }
        row["rss_mb"] = [round(mb) for mb in sb.worker_rss_mb(proc.pid)]
        row["load"] = round(os.getloadavg()[0], 1)
        return row
    finally:
        sb.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", metavar="NAME=TREE")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--conns", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--values", choices=("fresh", "repeated"), default="fresh")
    parser.add_argument("--page-size", nargs="*", default=[], metavar="NAME=BYTES",
                        help="rebuild that tree's copy of the store at this SQLite page size (VACUUM)")
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.trees)
    page_sizes = {name: int(size) for name, size in (p.split("=", 1) for p in args.page_size)}
    binary = sb.ensure_wrk()
    data = ensure_data(*sb.SIZES["default"], sys.executable)
    meta = load_meta(data)
    work = Path(tempfile.mkdtemp(prefix="featurectl-push-ab-"))
    try:
        source = sb.featurectl_repo(work / "base", data, meta)
        script = sb.push_script(meta["distinct_feature_ids"], meta, work / "push.lua", args.values == "fresh")
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for pair in range(args.pairs):
            for name in list(trees) if pair % 2 == 0 else list(reversed(trees)):
                row = one_run(trees[name], source, work, binary, script, args, page_sizes.get(name))
                runs[name].append(row)
                print(pair, name, json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, rows in runs.items():
        for c in args.conns:
            cpu = [r[c]["cpu_ms_per_request"] for r in rows]
            print(
                f"{name} {c} connection(s): CPU ms/request {cpu} median {statistics.median(cpu):.2f}; "
                f"rows/s {[r[c]['rows_per_s'] for r in rows]}"
            )


if __name__ == "__main__":
    main()
