"""What a worker does at start for its latency tail: its event-loop thread asks the kernel for
a short CPU slice (server/scheduling.py; read back from the running server's threads with
sched_getattr), and what start-up made is frozen out of the garbage collector."""
from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from featurectl.server.scheduling import thread_slice_ns
from tests.fixtures.feature_server import FeatureServer, ServingRepo, wait_for
from tests.fixtures.repos import run_featurectl

pytestmark = pytest.mark.xdist_group("serve")

_PROBE = "from featurectl.server.scheduling import request_slice, thread_slice_ns as s; print(request_slice(250), s())"


def _kernel_takes_slices() -> bool:
    """A kernel with per-task fair-scheduler slices (Linux 6.12+) reports one it was asked for."""
    if thread_slice_ns() in (None, 0):
        return False
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return probe.stdout.split() == ["True", "250000"]


# Where the kernel has no per-task slices (Linux < 6.12, another OS) the same tests check the
# other half of the promise instead of skipping: the workers keep the kernel's slice and serve.
TAKES_SLICES = _kernel_takes_slices()


def _granted(microseconds: int) -> int | None:
    """The slice a worker asking for `microseconds` runs with here."""
    return microseconds * 1000 if TAKES_SLICES else thread_slice_ns()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return ServingRepo.served(tmp_path_factory.mktemp("scheduling") / "repo")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            children = [int(c) for c in (task / "children").read_text().split()]
            found += children
            todo += children
    return found


def _worker_slices(server: FeatureServer) -> dict[int, int | None]:
    """{worker pid: its main (event-loop) thread's slice in ns}: uvicorn's spawned workers."""
    assert server.process is not None
    workers = [p for p in _descendants(server.process.pid)
               if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return {p: thread_slice_ns(p) for p in workers}


def test_each_worker_serves_with_a_short_slice_and_the_supervisor_keeps_the_kernels(repo):
    with FeatureServer(repo.root, workers=2) as server:
        assert server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})[0] == 200
        slices = wait_for(lambda: (lambda s: s if len(s) == 2 and set(s.values()) == {_granted(100)} else None)(
            _worker_slices(server)), timeout=30)
        assert slices, _worker_slices(server)
        assert server.process is not None
        assert thread_slice_ns(server.process.pid) == thread_slice_ns()  # uvicorn's supervisor: unchanged


def test_the_slice_is_configurable_and_zero_keeps_the_kernels(repo):
    # One worker: uvicorn serves in the `featurectl serve` process itself.
    for value, expected in (("400", _granted(400)), ("0", thread_slice_ns())):
        with FeatureServer(repo.root, env={"FEATURECTL_SERVE_SLICE_US": value}) as server:
            assert server.get("/health")[0] == 200
            assert server.process is not None
            assert thread_slice_ns(server.process.pid) == expected


def test_a_slice_out_of_the_kernels_range_is_refused_before_serving(repo):
    result = run_featurectl("serve", cwd=repo.root, env={"FEATURECTL_SERVE_SLICE_US": "50"})
    assert result.code == 2 and "FEATURECTL_SERVE_SLICE_US='50' is not 0 or a number" in result.output
    assert "Traceback" not in result.output


def test_a_worker_freezes_what_its_start_up_made_out_of_the_collector(repo):
    """After the app's lifespan start-up (the first reader built) gc.freeze() has run: a full
    collection no longer walks the start-up objects. Driven through the ASGI lifespan of the
    app uvicorn builds (create_app), on a thread of its own (the slice it asks for stays there)."""
    from featurectl.server.app import create_app

    seen: dict[str, object] = {}

    async def lifespan() -> None:
        app = create_app(str(repo.root))
        messages: asyncio.Queue = asyncio.Queue()
        sent: list[str] = []

        async def send(message) -> None:
            sent.append(message["type"])

        await messages.put({"type": "lifespan.startup"})
        running = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                            messages.get, send))
        for _ in range(600):
            if sent:
                break
            await asyncio.sleep(0.05)
        seen["frozen"], seen["started"] = gc.get_freeze_count(), list(sent)
        await messages.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(running, 30)

    gc.unfreeze()
    worker = threading.Thread(target=asyncio.run, args=(lifespan(),))
    worker.start()
    worker.join(60)
    gc.unfreeze()
    assert seen.get("started") == ["lifespan.startup.complete"], seen
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
