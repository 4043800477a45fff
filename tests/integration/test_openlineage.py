"""OpenLineage run events of materializations, against a tiny local HTTP endpoint started by
the test on a free port (SPEC §10): START and COMPLETE with job, input, output and schema; FAIL
for a failing view; an endpoint that is down or slow never fails nor holds up the run."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from featurectl import FeatureStore
from tests.integration.test_cli_workflow import ok

WINDOW = ("2000-01-01T00:00:00", "2100-01-01T00:00:00")


class Endpoint:
    """Captures the JSON bodies POSTed to it; `delay` makes every answer late."""

    def __init__(self, delay: float = 0.0):
        self.events: list[dict] = []
        self.paths: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(endpoint.delay)
                endpoint.paths.append(self.path)
                endpoint.events.append(json.loads(body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.delay = delay
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def by_type(self, job: str) -> dict[str, dict]:
        return {e["eventType"]: e for e in self.events if e["job"]["name"] == job}


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


def free_port_with_nothing_listening() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(repo: Path, url: str, **extra) -> None:
    path = repo / "featurectl.yaml"
    config = yaml.safe_load(path.read_text())
    config["lineage"] = {"openlineage_url": url, "namespace": "rides_prod", **extra}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_start_and_complete_with_job_inputs_outputs_and_schema(run_cli, example_repo, endpoint):
    configure(example_repo, endpoint.url)
    ok(run_cli("apply"))
    result = ok(run_cli("materialize", *WINDOW, "--views", "driver_stats,customer_profile"))
    assert "warning" not in result.stderr
    assert set(endpoint.paths) == {"/api/v1/lineage"}
    assert len(endpoint.events) == 4
    events = endpoint.by_type("materialize.driver_stats")
    assert set(events) == {"START", "COMPLETE"}
    start, complete = events["START"], events["COMPLETE"]
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert start["eventTime"] <= complete["eventTime"]
    assert start["job"]["namespace"] == "rides_prod"
    for event in (start, complete):
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [("rides_prod", "driver_hourly")]
        assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [("rides_prod", "rides.driver_stats.v1")]
        fields = event["outputs"][0]["facets"]["schema"]["fields"]
        assert [(f["name"], f["type"]) for f in fields] == [
            ("conv_rate", "float32"), ("acc_rate", "float32"), ("avg_daily_trips", "int64"), ("vehicle_type", "string")]
        assert fields[0]["description"] == "Share of offers accepted"
    other = endpoint.by_type("materialize.customer_profile")
    assert set(other) == {"START", "COMPLETE"} and other["START"]["run"]["runId"] != start["run"]["runId"]


def test_a_failing_view_sends_fail(run_cli, example_repo, endpoint):
    configure(example_repo, endpoint.url)
    ok(run_cli("apply"))
    (example_repo / "data" / "driver_stats.parquet").write_bytes(b"not parquet at all")
    result = run_cli("materialize", *WINDOW, "--views", "driver_stats")
    assert result.code == 2, result.output  # an unreadable source is a data problem (exit 2), not a store failure
    events = endpoint.by_type("materialize.driver_stats")
    assert set(events) == {"START", "FAIL"}
    assert "driver_stats" in events["FAIL"]["run"]["facets"]["errorMessage"]["message"]


def test_endpoint_down_is_a_warning_line_not_a_failure(run_cli, example_repo):
    url = f"http://127.0.0.1:{free_port_with_nothing_listening()}"
    configure(example_repo, url, timeout_seconds=1)
    ok(run_cli("apply"))
    result = ok(run_cli("materialize", *WINDOW))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "OpenLineage" in warnings[0] and url in warnings[0], result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(ok(run_cli("get-online", "--features", "driver_stats:conv_rate",
                                 "-e", "driver_id=1001")).stdout)


@pytest.mark.parametrize("situation", ["down", "slow"])
def test_a_down_or_slow_endpoint_costs_at_most_its_timeout(example_repo, caplog, situation):
    slow = Endpoint(delay=20) if situation == "slow" else None
    url = slow.url if slow else f"http://127.0.0.1:{free_port_with_nothing_listening()}"
    try:
        with FeatureStore(example_repo) as fs:
            fs.apply()
            fs.materialize(*WINDOW)  # warm: imports and file caches
            began = time.monotonic()
            fs.materialize(*WINDOW)
            baseline = time.monotonic() - began
        configure(example_repo, url, timeout_seconds=0.5)
        with FeatureStore(example_repo) as fs, caplog.at_level(logging.WARNING, logger="featurectl"):
            began = time.monotonic()
            runs = fs.materialize(*WINDOW)
            elapsed = time.monotonic() - began
        assert {r.status for r in runs} == {"ok"}
        warnings = [r.getMessage() for r in caplog.records if r.name == "featurectl.lineage"]
        assert len(warnings) == 1 and url in warnings[0], warnings
        assert ("timed out" if slow else "connection refused") in warnings[0] or "no answer" in warnings[0]
        # The slow endpoint answers after 20 s: waiting for it at all would show. Lineage may add
        # its 0.5 s timeout; the rest is slack for a machine shared with other test processes.
        assert elapsed < baseline + 0.5 + 4.0, (elapsed, baseline)
    finally:
        if slow:
            slow.close()


def test_a_bad_lineage_block_is_exit_2_naming_the_field(run_cli, example_repo):
    configure(example_repo, "localhost:5000")
    result = ok(run_cli("validate"), 2)
    assert "featurectl.yaml" in result.stderr and "openlineage_url" in result.stderr
