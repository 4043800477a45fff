"""A materialization killed with SIGKILL at several points, into SQLite, a private Redis and a
private 3-node Redis Cluster:
every entity holds its old or its new value (checked against the brute-force oracle), the
watermark has not moved, and a rerun completes correctly (issue 7, SPEC §5)."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import cli_env
from tests.integration.test_materialize import (BASE, END, Repo, as_state, assert_online, expected_after, hours,
                                                 online_state, small_batch_store, watermark)

ROOT = Path(__file__).resolve().parents[2]
OLDER, NEWER = (BASE, hours(24)), (hours(24), END)
POINTS = {
    "sqlite": [("write", 1), ("write", 4), ("commit", 3), ("watermark", 0)],
    "redis": [("write", 1), ("write", 4), ("send", 3), ("watermark", 0)],
    # on a cluster a write is several nodes' bursts: `send-node` dies after the Nth burst was sent
    # to one node, before any node's reply is read (the other nodes may not have theirs yet)
    "redis-cluster": [("write", 1), ("write", 4), ("send-node", 3), ("watermark", 0)],
}


def online_config(request, backend: str) -> dict:
    if backend == "sqlite":
        return {"type": "sqlite", "path": ".featurectl/online.db"}
    if backend == "redis":
        return {"type": "redis", "url": request.getfixturevalue("clean_redis")}
    return {"type": "redis", "url": request.getfixturevalue("clean_redis_cluster").url, "cluster": True}


def killed_run(repo: Repo, point: str, n: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.kill_harness", str(repo.root), point, str(n),
         NEWER[0].isoformat(), NEWER[1].isoformat()],
        cwd=ROOT, env=cli_env({"PYTHONPATH": str(ROOT)}), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed at {point}:{n}: {proc.stderr}"


@pytest.mark.parametrize("backend, point, n", [(b, p, n) for b, points in POINTS.items() for p, n in points])
def test_a_materialization_killed_with_sigkill_leaves_old_or_new_values_and_the_watermark(
        tmp_path: Path, request, backend: str, point: str, n: int):
    repo = Repo(tmp_path / "repo", online_config(request, backend))
    with repo.store() as fs:
        fs.apply()
    with small_batch_store(repo) as fs:
        fs.materialize(*OLDER, views=["user_shop"])
    killed_run(repo, point, n)
    old = as_state(repo.pairs, expected_after(repo.pairs, [OLDER]))
    new = as_state(repo.pairs, expected_after(repo.pairs, [OLDER, NEWER]))
    with repo.store() as fs:
        got = online_state(fs, repo.pairs)
        torn = {k: got[k] for k in got if got[k] not in (old[k], new[k])}
        assert not torn, f"values that are neither the old nor the new one: {torn}"
        if point == "watermark":
            assert got == new  # every batch was written before the kill
        if point == "write" and n == 1:
            assert got == old
        assert watermark(fs, "user_shop") == hours(24)
        (rerun,) = fs.materialize_incremental(END, views=["user_shop"])
        assert rerun.status == "ok" and rerun.start == hours(24)
        assert_online(fs, repo.pairs, [(BASE, END)])
        assert watermark(fs, "user_shop") == END
