"""The server on a private Redis: the same answers, /metrics, and /ready across an outage."""
from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.feature_server import DRIVERS, FeatureServer, ServingRepo

pytestmark = pytest.mark.xdist_group("redis")


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def samples(server) -> dict[tuple[str, tuple], float]:
    status, text = server.get("/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_redis_values_metrics_and_ready_across_an_outage(tmp_path, redis_server, clean_redis):
    repo = ServingRepo.write(tmp_path / "repo", online_store=f"{{type: redis, url: '{clean_redis}'}}")
    repo.apply_and_materialize()
    with FeatureServer(repo.root) as server:
        _, rows = server.post("/get-online-features?format=rows",
                              {"features": ["stats:trips", "recent:score"], "entities": {"driver_id": DRIVERS}})
        expected = [repo.latest("stats", (d,)) for d in DRIVERS]
        assert [r["trips"] for r in rows] == [None if e is None else e["trips"] for e in expected]
        assert rows[0]["score"] == 1.5

        metrics = wait_for(lambda: (lambda m: m if ("featurectl_view_newest_event_timestamp_seconds",
                                                     (("major", "1"), ("view", "stats"))) in m else None)(samples(server)))
        assert metrics, "the newest event time of stats never reached /metrics"
        newest = max(r["event_timestamp"] for r in repo.stats).timestamp()
        assert metrics[("featurectl_view_newest_event_timestamp_seconds", (("major", "1"), ("view", "stats")))] == newest
        assert metrics[("featurectl_view_freshness_sla_seconds", (("major", "1"), ("view", "stats")))] == 7200
        assert metrics[("featurectl_registry_revision", ())] == 1
        ok = ("featurectl_requests_total", (("endpoint", "/get-online-features"), ("status", "200")))
        assert metrics[ok] >= 1
        fast = ("featurectl_request_duration_seconds_bucket",
                (("endpoint", "/get-online-features"), ("le", "0.00025"), ("status", "200")))
        assert fast in metrics  # sub-millisecond buckets

        redis_server.kill()
        assert wait_for(lambda: server.get("/ready")[0] == 503)
        status, answer = server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})
        assert (status, answer["error"]) == (503, "STORE_UNAVAILABLE")
        assert samples(server)[("featurectl_online_store_errors_total", ())] >= 1

        redis_server.start()
        assert wait_for(lambda: server.get("/ready")[0] == 200)
        status, answer = server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})
        assert status == 200 and answer["results"][1]["statuses"] == ["NOT_FOUND"]  # the restarted Redis is empty
