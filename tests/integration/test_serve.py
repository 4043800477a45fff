"""`featurectl serve` over HTTP: Feast's request and response, statuses, errors (SQLite)."""
from __future__ import annotations

import http.client
import json
from datetime import datetime, timezone

import pytest

from tests.fixtures.feature_server import DRIVERS, FeatureServer, ServingRepo
from tests.fixtures.repos import run_featurectl

pytestmark = pytest.mark.xdist_group("serve")

EPOCH = "1970-01-01T00:00:00Z"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = ServingRepo.served(tmp_path_factory.mktemp("served") / "repo")
    with FeatureServer(repo.root) as server:
        yield repo, server


def columns(body) -> dict[str, dict]:
    names = body["metadata"]["feature_names"]
    assert len(names) == len(body["results"])
    return dict(zip(names, body["results"]))


def test_values_statuses_and_times_equal_the_oracle(served):
    repo, server = served
    status, body = server.post("/get-online-features", {
        "features": ["stats:conv_rate", "stats:trips", "stats:label"], "entities": {"driver_id": DRIVERS}})
    assert status == 200
    result = columns(body)
    assert list(result) == ["driver_id", "conv_rate", "trips", "label"]
    assert result["driver_id"] == {"values": DRIVERS, "statuses": ["PRESENT"] * 5, "event_timestamps": [EPOCH] * 5}
    for i, driver in enumerate(DRIVERS):
        row = repo.latest("stats", (driver,))
        for feature in ("conv_rate", "trips", "label"):
            got = result[feature]
            if row is None:
                assert (got["values"][i], got["statuses"][i], got["event_timestamps"][i]) == (None, "NOT_FOUND", EPOCH)
                continue
            expected = row[feature]
            assert got["values"][i] == expected, (driver, feature)
            assert got["statuses"][i] == ("NULL_VALUE" if expected is None else "PRESENT")
            assert got["event_timestamps"][i] == iso(row["event_timestamp"])
    assert result["conv_rate"]["values"][3] == 0.99  # the later-created row of a tie won


def test_outside_max_age_is_null_with_its_event_time(served):
    repo, server = served
    _, body = server.post("/get-online-features", {"features": ["recent:score"], "entities": {"driver_id": [1, 2, 3]}})
    score = columns(body)["score"]
    assert score["values"] == [1.5, None, None]
    assert score["statuses"] == ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert score["event_timestamps"][1] == iso(repo.recent[1]["event_timestamp"])


def test_the_same_values_as_get_online(served):
    repo, server = served
    cli = run_featurectl("get-online", "--features", "stats:conv_rate,stats:label,recent:score",
                         *(a for d in DRIVERS for a in ("-e", f"driver_id={d}")), cwd=repo.root)
    assert cli.code == 0, cli.output
    status, rows = server.post("/get-online-features?format=rows", {
        "features": ["stats:conv_rate", "stats:label", "recent:score"], "entities": {"driver_id": DRIVERS}})
    assert status == 200 and rows == json.loads(cli.stdout)


def test_feature_service_full_names_and_composite_keys(served):
    repo, server = served
    _, body = server.post("/get-online-features", {
        "feature_service": "ranking", "full_feature_names": True,
        "entities": {"driver_id": [1, 12, 1], "customer_id": [23, 3, 99]}})
    result = columns(body)
    assert list(result) == ["driver_id", "customer_id", "stats__conv_rate", "pair__affinity"]
    # (1, 23) and (12, 3) are different entities: keys are never concatenated.
    assert result["pair__affinity"]["values"] == [123.0, 1203.0, None]
    assert result["pair__affinity"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert result["stats__conv_rate"]["values"][:1] == [repo.latest("stats", (1,))["conv_rate"]]


def test_a_body_without_content_type_and_keys_as_text(served):
    _, server = served
    raw = json.dumps({"features": ["stats:trips"], "entities": {"driver_id": ["2"]}}).encode()
    status, body = server.post("/get-online-features", raw=raw, headers={})
    assert status == 200 and columns(body)["trips"]["values"] == [22]


@pytest.mark.parametrize("body, code", [
    ({"features": ["nope:x"], "entities": {"driver_id": [1]}}, "UNKNOWN_VIEW"),
    ({"features": ["stats:nope"], "entities": {"driver_id": [1]}}, "UNKNOWN_FEATURE"),
    ({"feature_service": "nope", "entities": {"driver_id": [1]}}, "UNKNOWN_SERVICE"),
    ({"features": ["stats:trips"], "entities": {"driver_id": ["x1"]}}, "BAD_KEY_TYPE"),
    ({"features": ["stats:trips"], "entities": {"driver_id": [1.5]}}, "BAD_KEY_TYPE"),
    ({"features": ["pair:affinity"], "entities": {"driver_id": [1]}}, "MISSING_JOIN_KEY"),
    ({"features": ["stats:trips"], "entities": {"driver_id": list(range(10_001))}}, "TOO_MANY_ENTITIES"),
    ({"features": ["stats:trips"], "entities": {"driver_id": [1], "customer_id": [1, 2]}}, "BAD_REQUEST"),
    ({"features": "stats:trips", "entities": {"driver_id": [1]}}, "BAD_REQUEST"),
    ({"features": ["bad ref"], "entities": {"driver_id": [1]}}, "BAD_REQUEST"),
    ({"features": ["stats:trips"]}, "BAD_REQUEST"),
    ([1, 2], "BAD_REQUEST"),
])
def test_bad_requests_are_400_with_a_code_and_the_server_keeps_serving(served, body, code):
    _, server = served
    status, answer = server.post("/get-online-features", body)
    assert status == 400 and answer["error"] == code, answer
    assert "Traceback" not in answer["message"]
    assert server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})[0] == 200


def test_not_json_unknown_path_and_wrong_method(served):
    _, server = served
    status, answer = server.post("/get-online-features", raw=b"{not json")
    assert (status, answer["error"]) == (400, "BAD_REQUEST")
    status, answer = server.get("/no-such-path")
    assert (status, answer["error"]) == (404, "NOT_FOUND")
    assert server.get("/get-online-features")[0] == 405


def test_a_body_sent_in_chunks_is_read_whole_and_answered_with_json_headers(served):
    """The hot path reads the ASGI body messages itself: a chunked body arrives in several."""
    _, server = served
    body = json.dumps({"features": ["stats:trips"], "entities": {"driver_id": [1, 2]}}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/get-online-features", body=iter([body[:10], body[10:25], body[25:]]),
                           encode_chunked=True)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    assert int(response.getheader("content-length")) == len(raw)
    assert columns(json.loads(raw))["driver_id"]["values"] == [1, 2]
    _, _, first = server.request_with_headers("POST", "/get-online-features", body=json.loads(body))
    _, _, second = server.request_with_headers("POST", "/get-online-features", body=json.loads(body))
    ids = {first["x-request-id"], second["x-request-id"], response.getheader("x-request-id")}
    assert len(ids) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_health_ready_and_startup_line(served):
    repo, server = served
    assert server.get("/health") == (200, {"status": "ok"})
    status, body = server.get("/ready")
    assert status == 200 and body["registry_revision"] == 1
    line = server.startup
    assert line["project"] == "served" and line["registry_revision"] == 1
    assert line["url"] == f"http://127.0.0.1:{server.port}" and line["online_store"].startswith("sqlite:")
