"""POST /push and /write-to-online-store: validated like a materialization, all or nothing,
newer-wins, several rows of one entity resolved by event then created time."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fixtures.feature_server import FeatureServer, ServingRepo

pytestmark = pytest.mark.xdist_group("serve")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    # One server for the module: each test uses its own entities or compares before with after.
    repo = ServingRepo.served(tmp_path_factory.mktemp("push") / "repo")
    with FeatureServer(repo.root) as server:
        yield repo, server


def read(server, drivers, features=("conv_rate", "trips", "label")):
    _, body = server.post("/get-online-features?format=rows",
                          {"features": [f"stats:{f}" for f in features], "entities": {"driver_id": drivers}})
    return body


def text(moment) -> str:
    return moment.replace(tzinfo=None).isoformat()  # naive: UTC


def test_push_writes_newer_rows_and_keeps_newer_stored_ones(served):
    repo, server = served
    newer, older = repo.now + timedelta(minutes=1), repo.now - timedelta(days=5)
    status, body = server.post("/push", {"feature_view": "stats", "to": "online", "df": {
        "driver_id": [1, 2, 9], "event_timestamp": [text(newer), text(older), text(newer)],
        "conv_rate": [0.5, 0.6, 0.7], "trips": [7, 8, 9], "label": ["a", "b", None], "ignored": [1, 2, 3]}})
    assert status == 200, body
    assert body["written"] == 2  # driver 2's stored value is newer than the pushed one
    rows = read(server, [1, 2, 9])
    assert rows[0] == {"driver_id": 1, "conv_rate": 0.5, "trips": 7, "label": "a"}
    assert rows[1]["trips"] == repo.latest("stats", (2,))["trips"]
    assert rows[2] == {"driver_id": 9, "conv_rate": 0.7, "trips": 9, "label": None}


def test_several_rows_of_one_entity_latest_event_then_created_wins(served):
    repo, server = served
    t = repo.now + timedelta(minutes=5)
    # Out of order on purpose (feast-dev/feast#5163 keeps the last row of the batch).
    status, _ = server.post("/push", {"push_source_name": "stats", "df": {
        "driver_id": [3, 3, 3, 3], "event_timestamp": [text(t), text(t), text(t - timedelta(hours=1)), text(t)],
        "created": [text(t), text(t + timedelta(seconds=2)), text(t + timedelta(hours=5)), text(t + timedelta(seconds=1))],
        "conv_rate": [0.1, 0.2, 0.3, 0.4], "trips": [1, 2, 3, 4], "label": ["w", "x", "y", "z"]}})
    assert status == 200
    assert read(server, [3])[0] == {"driver_id": 3, "conv_rate": 0.2, "trips": 2, "label": "x"}


@pytest.mark.parametrize("column, values, violation", [
    ("conv_rate", [0.5, 1.5], "conv_rate: above max 1"),
    ("trips", [1, None], "trips: null in a non-nullable feature"),
    ("trips", [1, "many"], "trips: not a valid int64"),
    # Checked in the statement that selects the latest rows, whose cast would round it: refused.
    ("trips", [1, 2.5], "trips: not a whole number, would be rounded to fit int64"),
    ("driver_id", [None, None], "driver_id: missing or not a valid int64"),  # no row has a key
    ("event_timestamp", ["2026-01-01T00:00:00", "yesterday"], "event_timestamp: missing or not an ISO 8601 timestamp"),
    ("driver_id", [1, "x"], "driver_id: missing or not a valid int64"),
    # A missing key or time is counted with the checks (no cast fails on it); a created time
    # that does not parse stops them, and is reported all the same.
    ("driver_id", [1, None], "driver_id: missing or not a valid int64"),
    ("event_timestamp", ["2026-01-01T00:00:00", None], "event_timestamp: missing or not an ISO 8601 timestamp"),
    ("created", ["2026-01-01T00:00:00", "soon"], "created: missing or not an ISO 8601 timestamp"),
    ("conv_rate", [0.5, 1.5], "conv_rate: above max 1"),
])
def test_one_bad_row_refuses_the_request_and_writes_nothing(served, column, values, violation):
    repo, server = served
    t = text(repo.now + timedelta(minutes=1))
    df = {"driver_id": [1, 2], "event_timestamp": [t, t], "conv_rate": [0.5, 0.5], "trips": [1, 2], "label": ["a", "b"]}
    df[column] = values
    before = read(server, [1, 2])
    status, body = server.post("/push", {"feature_view": "stats", "df": df})
    assert status == 422 and body["error"] == "INVALID_ROWS", body
    assert violation in body["report"]["violations"], body["report"]
    assert read(server, [1, 2]) == before


def test_write_to_online_store_as_feasts_remote_store_sends_it(served):
    repo, server = served
    t = text(repo.now + timedelta(minutes=1))
    status, body = server.post("/write-to-online-store", {
        "feature_view_name": "pair", "allow_registry_cache": False,
        "df": {"driver_id": [1], "customer_id": [3], "affinity": [0.25], "event_timestamp": [t], "created": [None]}})
    assert status == 200, body
    _, rows = server.post("/get-online-features?format=rows",
                          {"features": ["pair:affinity"], "entities": {"driver_id": [1], "customer_id": [3]}})
    assert rows == [{"driver_id": 1, "customer_id": 3, "affinity": 0.25}]


@pytest.mark.parametrize("body, status, code", [
    ({"feature_view": "nope", "df": {"driver_id": [1]}}, 400, "UNKNOWN_VIEW"),
    ({"feature_view": "stats", "df": {"driver_id": [1]}}, 400, "BAD_REQUEST"),
    ({"feature_view": "stats", "to": "offline", "df": {"driver_id": [1]}}, 400, "BAD_REQUEST"),
    ({"df": {"driver_id": [1]}}, 400, "BAD_REQUEST"),
])
def test_bad_push_requests(served, body, status, code):
    _, server = served
    got, answer = server.post("/push", body)
    assert (got, answer["error"]) == (status, code), answer


def test_a_push_of_plain_json_columns_does_not_import_pandas(tmp_path):
    """pyarrow's array() imports pandas, when installed, on its first call with a Python list:
    0.4 s of each server worker's first push. Ints, floats and strings are built from buffers."""
    repo = ServingRepo.served(tmp_path / "repo")
    t = text(repo.now + timedelta(minutes=1))
    with FeatureServer(repo.root, env={"PYTHONPROFILEIMPORTTIME": "1"}) as server:
        status, body = server.post("/push", {"feature_view": "stats", "df": {
            "driver_id": [1, 2], "event_timestamp": [t, t], "conv_rate": [0.5, 0.25], "trips": [1, 2],
            "label": ["a", "é"]}})
        assert (status, body) == (200, {"written": 2, "rows": 2})
        _, stderr = server.terminate()
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", stderr, re.MULTILINE))
    assert "featurectl.app.push" in modules and "pyarrow.compute" in modules  # the push was traced
    assert not {m for m in modules if m.split(".")[0] == "pandas"}


def _tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc's children lists."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _mapped(pid: int) -> set[str]:
    """The file names of the shared objects each process of the server's tree maps."""
    names = set()
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/maps").read_text().splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and ".so" in parts[5]:
                names.add(Path(parts[5].strip()).name)
    return names


def test_a_push_arrow_proves_valid_loads_no_duckdb_and_a_refused_one_is_reported_as_before(tmp_path):
    """A push whose rows Arrow compute proves valid runs no DuckDB statement (offline/pushed.py),
    so the worker never maps DuckDB's library (~9 MB of its RSS); rows it cannot prove still go
    to DuckDB, which loads then and writes the same 422 report."""
    repo = ServingRepo.served(tmp_path / "repo")
    t = text(repo.now + timedelta(minutes=1))
    df = {"driver_id": [1, 2], "event_timestamp": [t, t], "conv_rate": [0.5, 0.25], "trips": [1, 2],
          "label": ["a", "b"]}
    with FeatureServer(repo.root, workers=2) as server:
        assert server.post("/push", {"feature_view": "stats", "df": df}) == (200, {"written": 2, "rows": 2})
        assert server.process is not None
        mapped = _mapped(server.process.pid)
        assert any(name.startswith("libarrow_compute") for name in mapped)  # the push was checked here
        assert not [name for name in mapped if "duckdb" in name]
        # Arrow's allocator in the workers: glibc's unless the environment chose one (server/run.py;
        # /proc shows a process's environment as it started: the spawned workers').
        pools = {line.split(b"=", 1)[1].decode() for p in _tree(server.process.pid)[1:]
                 for line in Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
                 if line.startswith(b"ARROW_DEFAULT_MEMORY_POOL=")}
        assert pools == {os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system")}
        status, body = server.post("/push", {"feature_view": "stats", "df": {**df, "conv_rate": [0.5, 1.5]}})
        assert (status, body) == (422, {
            "error": "INVALID_ROWS",
            "message": "1 violation(s) in 2 row(s) for feature view 'stats'; nothing was written: fix the rows "
                       "or the view's declared dtype/nullable/constraints",
            "report": {"view": "stats", "rows_checked": 2, "violations": {"conv_rate: above max 1": 1},
                       "samples": [{"driver_id": 2, "event_timestamp": (repo.now + timedelta(minutes=1)).isoformat(),
                                    "violation": "conv_rate: above max 1", "value": "1.5"}]}})
        assert [name for name in _mapped(server.process.pid) if "duckdb" in name]  # loaded on first need
