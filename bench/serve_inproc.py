"""CPU and instructions per `/get-online-features` request inside one serving worker, without
HTTP: the ASGI app `featurectl serve` runs (`server.app.create_app`) driven in process, so the
figure is featurectl's own request path (parsing, the plan, the store read, encoding, metrics),
apart from uvicorn, the kernel's sockets and the load generator.

    .venv/bin/python bench/serve_inproc.py [--store sqlite|redis] [--requests 5000] [--profile]
    .venv/bin/python bench/serve_inproc.py --callgrind [--store ...]   # instructions per request

The repository is bench/serve_bench.py's (the bench's 100,000-entity data, materialized once
under bench/data/_work/serve-inproc; Redis on a private redis-server). Bodies are serve_bench's
(10 features, one random driver, seed 7; 200 of them, taken in turn). 200 warm-up requests,
then `--requests` timed ones: process CPU per request, or with `--profile` cProfile's top
functions. `--callgrind` runs the driver twice under `valgrind --tool=callgrind` (1,000 and
3,000 requests) and prints the difference per request: start-up cancels out and, unlike a
server under callgrind, no timer-driven work scales with the (slowed) wall time. Put a tree
first on PYTHONPATH to measure it (each run prints which featurectl it imported).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BENCH_DIR, FEATURES, ID_BASE, VIEW, ensure_data, load_meta, redis_server  # noqa: E402

BODIES = 200
SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
         "path": "/get-online-features", "raw_path": b"/get-online-features", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"bench"), (b"content-type", b"application/json")],
         "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


def bodies(entities: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    features = [f"{VIEW}:{f}" for f in FEATURES]
    return [json.dumps({"features": features, "entities": {"driver_id": [ID_BASE + rng.randrange(entities)]}}).encode()
            for _ in range(BODIES)]


async def drive(repo: Path, payloads: list[bytes], requests: int, profile: bool) -> float:
    """CPU seconds per request of `requests` requests through a started app."""
    import featurectl.sdk
    from featurectl.server.app import create_app

    featurectl.sdk.FeatureStore.serving_cache_seconds = 3600.0  # no registry re-read while measuring
    app = create_app(str(repo))
    lifespan: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def life_receive():
        if not started.is_set():
            started.set()
            return {"type": "lifespan.startup"}
        return await lifespan.get()

    ready = asyncio.Event()

    async def life_send(message):
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, life_receive, life_send))
    await ready.wait()
    sent: list[dict] = []

    async def one(body: bytes) -> None:
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)
        await app(dict(SCOPE), receive, send)

    for body in payloads:  # warm-up; also waits for the first registry read
        await one(body)
    if sent[0]["status"] != 200:
        raise SystemExit(f"the app answered {sent[0]['status']}: {sent[1].get('body', b'')[:300]!r}")
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    began = time.process_time()
    for i in range(requests):
        await one(payloads[i % len(payloads)])
    cpu = time.process_time() - began
    if profiler is not None:
        import pstats
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    statuses = {m["status"] for m in sent if m["type"] == "http.response.start"}
    if statuses != {200}:
        raise SystemExit(f"statuses other than 200: {statuses}")
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    return cpu / requests


def run_child(repo: Path, entities: int, requests: int, profile: bool) -> None:
    import featurectl
    import uvloop
    per_request = uvloop.run(drive(repo, bodies(entities), requests, profile))
    print(json.dumps({"featurectl": str(Path(featurectl.__file__).parent), "requests": requests,
                      "cpu_us_per_request": round(per_request * 1e6, 1)}), flush=True)


def callgrind_total(repo: Path, entities: int, requests: int) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          __file__, "--child", str(repo), "--entities", str(entities), "--requests", str(requests)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"callgrind run failed ({out.returncode}): {out.stderr[-2000:]}")
    print(out.stdout.strip(), file=sys.stderr)
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--entities", type=int, default=100_000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return run_child(args.child, args.entities, args.requests, args.profile)
    from run import SIZES
    from serve_bench import featurectl_repo
    data = ensure_data(*SIZES["default"], python=sys.executable)
    meta = load_meta(data)
    entities = meta["distinct_feature_ids"]
    with ExitStack() as stack:
        url = stack.enter_context(redis_server()) if args.store == "redis" else None
        repo = featurectl_repo(BENCH_DIR / "data" / "_work" / "serve-inproc" / args.store, data, meta, args.store, url)
        if not args.callgrind:
            return run_child(repo, entities, args.requests, args.profile)
        small, large = 1000, 3000
        per_request = (callgrind_total(repo, entities, large) - callgrind_total(repo, entities, small)) / (large - small)
        print(json.dumps({"store": args.store, "instructions_per_request": round(per_request)}))


if __name__ == "__main__":
    main()
