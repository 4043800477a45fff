"""Ctrl-C and SIGTERM during real work, through a real `featurectl` process: exit 130 / 143,
one line on stderr, no traceback, no half-written output, the watermark unmoved."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurectl import FeatureStore
from tests.fixtures.repos import cli_env, run_featurectl
from tests.integration.test_materialize import watermark

ROWS, ENTITIES = 3_000_000, 600_000
END = datetime(2026, 1, 1, tzinfo=timezone.utc)
EXPECTED = {signal.SIGINT: (130, "error: interrupted"), signal.SIGTERM: (143, "error: terminated")}


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory) -> Path:
    """A repository whose materialization and point-in-time join take seconds, not milliseconds."""
    root = tmp_path_factory.mktemp("big")
    (root / "features").mkdir()
    (root / "data").mkdir()
    (root / "featurectl.yaml").write_text("project: big\n")
    (root / "features" / "big.yaml").write_text(
        "entities:\n  - {name: user, join_key: user_id, dtype: int64}\n"
        "sources:\n  - {name: events, path: data/events.parquet, timestamp_field: ts}\n"
        "feature_views:\n  - name: stats\n    version: 1.0.0\n    entities: [user]\n    source: events\n"
        "    ttl: 0\n    owner: t@example.com\n    features:\n      - {name: score, dtype: float64}\n"
        "  - name: stats_again\n    version: 1.0.0\n    entities: [user]\n    source: events\n"
        "    ttl: 0\n    owner: t@example.com\n    features:\n      - {name: score, dtype: float64}\n")
    ids = pa.array(range(ROWS), pa.int64())
    users = pa.compute.remainder(ids, ENTITIES)
    base = int((END - timedelta(days=30)).timestamp() * 1_000_000)
    ts = pa.compute.add(pa.compute.multiply(ids, 800), base).cast(pa.timestamp("us", "UTC"))
    score = pa.compute.divide(ids.cast(pa.float64()), float(ROWS))
    pq.write_table(pa.table({"user_id": users, "ts": ts, "score": score}), root / "data" / "events.parquet")
    entity_ts = pa.array([END] * ENTITIES, pa.timestamp("us", "UTC"))
    pq.write_table(pa.table({"user_id": pa.array(range(ENTITIES), pa.int64()), "event_timestamp": entity_ts}),
                   root / "entities.parquet")
    # Five entity rows per user: the join and the file write take seconds even on an idle
    # machine, so the signal lands while the output is being written, not after.
    many_ts = pa.array([END] * ROWS, pa.timestamp("us", "UTC"))
    pq.write_table(pa.table({"user_id": users, "event_timestamp": many_ts}), root / "many_entities.parquet")
    assert run_featurectl("apply", cwd=root).code == 0
    return root


def stop_during_work(repo: Path, args: list[str], signum: int, started) -> tuple[int, str, str]:
    """Start the command, wait until `started()` says the work is under way, send the signal.
    (Earlier, a signal landing inside a C extension's import can abort the interpreter.)"""
    proc = subprocess.Popen([sys.executable, "-m", "featurectl", *args], cwd=repo, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the command ended before it could be stopped: {proc.communicate()}"
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def assert_stopped(result: tuple[int, str, str], signum: int) -> None:
    code, out, err = result
    expected_code, line = EXPECTED[signum]
    assert code == expected_code, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert err.strip() == line, err
    assert "Traceback" not in out + err


@pytest.mark.slow
@pytest.mark.parametrize("signum", sorted(EXPECTED))
def test_a_stopped_materialization_exits_by_the_signal_and_moves_no_watermark(signum: int, big_repo: Path) -> None:
    """The signal stops the whole command, not only the view it hit (DuckDB catching it once
    failed that view and went on with the next)."""
    # The online store opens after the offline one (DuckDB imported): the work is under way.
    online = big_repo / ".featurectl" / "online.db"
    online.unlink(missing_ok=True)
    result = stop_during_work(big_repo, ["materialize", "2025-01-01", END.isoformat()], signum,
                              online.exists)
    assert_stopped(result, signum)
    with FeatureStore(big_repo) as fs:
        assert watermark(fs, "stats") is None and watermark(fs, "stats_again") is None


@pytest.mark.slow
@pytest.mark.parametrize("signum", sorted(EXPECTED))
def test_a_stopped_historical_retrieval_leaves_no_output_file(signum: int, big_repo: Path) -> None:
    out = big_repo / f"training-{signum}.parquet"
    result = stop_during_work(big_repo, ["get-historical", "--entities", "many_entities.parquet",
                                         "--features", "stats:score", "--output", out.name], signum,
                              lambda: any(out.name in p.name for p in big_repo.iterdir()))
    assert_stopped(result, signum)
    assert [p.name for p in big_repo.iterdir() if out.name in p.name] == []
