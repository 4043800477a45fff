"""`featurectl freshness` (SPEC §9): age of the newest served value against freshness_sla, every
severity, a never-materialized view, --fail-on, --views, --now, --check-source, exit 3."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl

UTC = timezone.utc
SLA = 2 * 3600  # driver_stats: freshness_sla 2h
KEYS = ["view", "major", "freshness_sla_seconds", "age_seconds", "ratio", "status", "newest_event_timestamp",
        "watermark"]


def cli(repo: Path, *args, code: int = 0):
    result = run_featurectl("freshness", *args, cwd=repo)
    assert result.code == code, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


def rows(repo: Path, *args, code: int = 0) -> dict[str, dict]:
    return {r["view"]: r for r in json.loads(cli(repo, "--format", "json", *args, code=code).stdout)}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """example_repo whose driver data ends 30 minutes ago (real clock), applied and materialized."""
    repo = copy_example_repo(tmp_path / "example_repo")
    now = datetime.now(UTC).replace(microsecond=0)
    table = pq.read_table(repo / "data" / "driver_stats.parquet")
    newest = table["event_timestamp"].to_pylist()
    shift = now - timedelta(minutes=30) - max(newest)
    moved = [t + shift for t in newest]
    table = table.set_column(table.schema.get_field_index("event_timestamp"), "event_timestamp",
                             pa.array(moved, pa.timestamp("us", "UTC")))
    table = table.set_column(table.schema.get_field_index("created"), "created",
                             pa.array(moved, pa.timestamp("us", "UTC")))
    pq.write_table(table, repo / "data" / "driver_stats.parquet")
    with FeatureStore(repo, actor="tester") as fs:
        fs.apply()
    return repo


def materialize(repo: Path, end: str = "now") -> None:
    with FeatureStore(repo, actor="tester") as fs:
        fs.materialize("2000-01-01", end, ["driver_stats"])


def test_never_materialized_is_critical(repo):
    got = rows(repo, code=1)["driver_stats"]
    assert list(got) == KEYS
    assert got["status"] == "critical" and got["newest_event_timestamp"] is None and got["age_seconds"] is None
    assert "never written" in cli(repo, code=1).stdout


def test_fresh_data_relative_to_now_is_ok(repo):
    materialize(repo)
    got = rows(repo)["driver_stats"]
    assert got["status"] == "ok" and got["freshness_sla_seconds"] == SLA
    assert 30 * 60 - 5 <= got["age_seconds"] <= 30 * 60 + 600
    assert got["ratio"] == pytest.approx(got["age_seconds"] / SLA)
    assert got["watermark"] is not None


@pytest.mark.parametrize("hours_after_newest, status", [(1, "ok"), (2.3, "minor"), (3.9, "major"), (4.1, "critical")])
def test_every_severity_at_another_time(repo, hours_after_newest, status):
    materialize(repo)
    newest = datetime.fromisoformat(rows(repo)["driver_stats"]["newest_event_timestamp"].replace("Z", "+00:00"))
    at = newest + timedelta(hours=hours_after_newest)
    got = rows(repo, "--now", iso(at), code=0 if status == "ok" else 1)["driver_stats"]
    assert got["status"] == status and got["age_seconds"] == pytest.approx(hours_after_newest * 3600)


def test_fail_on_and_views_choose_what_gates(repo):
    materialize(repo)
    newest = datetime.fromisoformat(rows(repo)["driver_stats"]["newest_event_timestamp"].replace("Z", "+00:00"))
    major = iso(newest + timedelta(hours=3))
    cli(repo, "--now", major, "--fail-on", "critical")
    cli(repo, "--now", major, "--fail-on", "major", code=1)
    assert list(rows(repo, "--views", "driver_stats", "--now", major, "--fail-on", "critical")) == ["driver_stats"]
    err = cli(repo, "--views", "customer_profile", code=2).stderr
    assert "customer_profile" in err and "freshness_sla" in err
    assert "nope" in cli(repo, "--views", "nope", code=2).stderr


def test_check_source_says_which_clock_is_behind(repo):
    source_newest = max(pq.read_table(repo / "data" / "driver_stats.parquet")["event_timestamp"].to_pylist())
    materialize(repo, end=iso(source_newest - timedelta(hours=5)))  # the source has 5 h more than is served
    got = rows(repo, "--check-source", code=1)["driver_stats"]
    assert got["source_newest_event_timestamp"] is not None and got["status"] != "ok"
    assert "materialization" in cli(repo, "--check-source", code=1).stdout
    prometheus = cli(repo, "--check-source", "--format", "prometheus", code=1).stdout
    assert 'featurectl_newest_event_timestamp_seconds{view="driver_stats",major="1"}' in prometheus
    assert f"{source_newest.timestamp():.6f}" in prometheus


def test_an_unreadable_online_store_is_exit_3_never_fresh(repo):
    materialize(repo)
    (repo / ".featurectl" / "online.db").write_bytes(b"this is not a database" * 100)
    result = cli(repo, code=3)
    assert "ok" not in result.stdout
