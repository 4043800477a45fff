"""Feature logging's failure paths, on the real server: the log-writer process killed,
stalled, and what a serving worker loads. Every served row is either in a closed Parquet file
or counted as dropped; serving never waits."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from tests.fixtures.feature_server import FeatureServer, ServingRepo, wait_for

pytestmark = pytest.mark.xdist_group("serve")

WRITER = b"featurectl.server.log_writer"
UP = ("featurectl_feature_log_writer_up", ())
WRITTEN = ("featurectl_feature_log_rows_total", ())
DROPPED = ("featurectl_feature_log_dropped_rows_total", ())
RESTARTS = ("featurectl_feature_log_writer_restarts_total", ())


@pytest.fixture
def repo(tmp_path):
    return ServingRepo.served(tmp_path / "repo")


def children(pid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of each live child process, whichever thread started it."""
    out = []
    for child in " ".join(p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/children")).split():
        try:
            out.append((int(child), Path(f"/proc/{child}/cmdline").read_bytes()))
        except OSError:
            continue
    return out


def writer_pid(server: FeatureServer) -> int | None:
    found = [pid for pid, cmdline in children(server.process.pid) if WRITER in cmdline]
    return found[0] if found else None


def logged_rows(logs: Path) -> list[dict]:
    files = sorted(logs.rglob("*.parquet"))
    return ds.dataset(files, format="parquet").to_table().to_pylist() if files else []


def read(server: FeatureServer, drivers: list[int]) -> None:
    status, _ = server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": drivers}})
    assert status == 200


def test_a_killed_writer_is_reported_and_restarted_while_serving_goes_on(repo, tmp_path):
    logs = tmp_path / "logs"
    server = FeatureServer(repo.root, "--log-features", str(logs)).start()
    try:
        assert wait_for(lambda: server.metrics().get(UP) == 1), "the worker never met the writer"
        read(server, [1, 2])
        first = writer_pid(server)
        assert first is not None
        os.kill(first, signal.SIGKILL)  # rows it held are lost with it
        assert wait_for(lambda: server.metrics().get(UP) == 0, timeout=5), "a dead writer must show in /metrics"
        read(server, [3])  # serving goes on; this row waits in the worker for the next writer
        assert wait_for(lambda: (lambda m: m.get(UP) == 1 and m.get(RESTARTS) == 1)(server.metrics()), timeout=20)
        assert writer_pid(server) not in (None, first)
        read(server, [4])
        metrics = server.metrics()
        assert metrics[("featurectl_requests_total", (("endpoint", "/get-online-features"), ("status", "200")))] == 3
    finally:
        code, err = server.terminate()
    assert "Traceback" not in err and "restarting it" in err
    # the killed writer's open files stay *.partial (readers see whole files only); no other is left
    assert all(f"-{first}-" in p.name for p in logs.rglob("*.partial"))
    served_after = sorted(r["driver_id"] for r in logged_rows(logs))
    assert served_after[-2:] == [3, 4], served_after  # kept while no writer ran, and after


def test_a_stalled_writer_costs_dropped_rows_that_are_counted_and_never_a_slow_answer(repo, tmp_path):
    logs = tmp_path / "logs"
    env = {"FEATURECTL_SERVE_LOG_BUFFER_BYTES": "4096"}
    server = FeatureServer(repo.root, "--log-features", str(logs), env=env).start()
    drivers = [1, 2, 3, 4, 5] * 20  # 100 rows per request
    try:
        assert wait_for(lambda: server.metrics().get(UP) == 1)
        pid = writer_pid(server)
        os.kill(pid, signal.SIGSTOP)  # alive, reading nothing: the socket fills, then the worker's buffer
        try:
            slowest = 0.0
            for _ in range(300):
                began = time.monotonic()
                read(server, drivers)
                slowest = max(slowest, time.monotonic() - began)
            dropped = server.metrics()[DROPPED]
        finally:
            os.kill(pid, signal.SIGCONT)
        assert dropped > 0 and dropped % 100 == 0, dropped
        assert slowest < 1.0, f"an answer waited {slowest:.2f} s for the stalled writer"
        assert wait_for(lambda: server.metrics().get(WRITTEN, 0) + dropped >= 300 * 100, timeout=20)
    finally:
        code, err = server.terminate()
    assert "Traceback" not in err
    assert len(logged_rows(logs)) + dropped == 300 * 100, "every served row is written or counted"


def test_serving_workers_load_no_pyarrow_and_every_workers_rows_are_flushed_on_sigterm(repo, tmp_path):
    logs = tmp_path / "logs"
    server = FeatureServer(repo.root, "--log-features", str(logs), workers=2).start()
    try:
        for i in range(39):
            read(server, [i % 5 + 1])
        status, rows = server.post("/get-online-features?format=rows",  # logged in Feast's shape too
                                   {"features": ["stats:trips"], "entities": {"driver_id": [2]}})
        assert status == 200 and rows == [{"driver_id": 2, "trips": repo.latest("stats", (2,))["trips"]}]
        workers = [pid for pid, cmdline in children(server.process.pid)
                   if WRITER not in cmdline and b"resource_tracker" not in cmdline]
        assert len(workers) == 2
        for pid in [server.process.pid, *workers]:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libarrow" not in maps and "pyarrow" not in maps, f"process {pid} loaded pyarrow"
        assert "libarrow" in Path(f"/proc/{writer_pid(server)}/maps").read_text()
        assert wait_for(lambda: server.metrics().get(UP) == 1)
    finally:
        code, err = server.terminate()
    assert "Traceback" not in err
    assert not list(logs.rglob("*.partial"))
    logged = logged_rows(logs)
    assert len(logged) == 40
    assert {(r["driver_id"], r["trips"], r["trips__status"]) for r in logged if r["driver_id"] == 2} == {
        (2, repo.latest("stats", (2,))["trips"], "PRESENT")}
