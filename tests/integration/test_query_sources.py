"""A `query:` source must be exactly one read-only SELECT/WITH statement, judged by DuckDB's
parser: anything else is refused with exit 2 at validate and apply, and never run by
materialize or get-historical (issue 7, safety hole: a stacked COPY wrote a file)."""
from __future__ import annotations

from pathlib import Path

import pytest

from featurectl.app import planning
from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl


def with_query(tmp_path: Path, query: str) -> Path:
    repo = copy_example_repo(tmp_path / "rides")
    path = repo / "features" / "customers.py"
    text = path.read_text()
    start = text.index("query=") + len("query=")
    end = text.index(",\n    timestamp_field", start)
    path.write_text(text[:start] + repr(query) + text[end:])
    return repo


def refused(result, *named: str) -> None:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    for text in named:
        assert text in result.output, result.output


BAD = [
    "SELECT * FROM 'data/driver_customer.parquet'; COPY (SELECT 1) TO 'leak.csv'",
    "COPY (SELECT 1) TO 'leak.csv'",
    "CREATE TABLE t AS SELECT 1",
    "SELECT FROM WHERE",
]


@pytest.mark.parametrize("query", BAD)
def test_a_query_source_that_is_not_one_select_is_refused_at_validate_and_apply(tmp_path, query):
    repo = with_query(tmp_path, query)
    for command in ("validate", "apply"):
        refused(run_featurectl(command, cwd=repo), "driver_customer_trips", "query", "customers.py"
                if command == "validate" else "query")
    assert not (repo / "leak.csv").exists()


def test_a_with_query_is_accepted(tmp_path):
    repo = with_query(tmp_path, "WITH t AS (SELECT * FROM 'data/driver_customer.parquet') "
                                "SELECT driver_id, customer_id, event_timestamp, trips, avg_rating FROM t")
    assert run_featurectl("validate", cwd=repo).code == 0


def test_an_applied_writing_query_is_never_run_by_materialize_or_get_historical(tmp_path):
    repo = with_query(tmp_path, BAD[0])
    with FeatureStore(repo, actor="tester") as fs:  # around the SDK's check, as an old registry could hold it
        planning.apply(fs.project, fs.registry, fs.definitions, actor="tester", clock=fs._clock)
    refused(run_featurectl("materialize", "2020-01-01", "2030-01-01", "--views", "driver_customer_affinity",
                           cwd=repo), "driver_customer_trips", "query")
    (repo / "e.csv").write_text("driver_id,customer_id,event_timestamp\n1001,501,2026-10-01T00:00:00\n")
    refused(run_featurectl("get-historical", "--entities", "e.csv", "--features", "driver_customer_affinity:trips",
                           "--output", "out.parquet", cwd=repo), "driver_customer_trips", "query")
    assert not (repo / "leak.csv").exists() and not (repo / "out.parquet").exists()
