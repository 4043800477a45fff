"""The server on a private Redis: the same answers, /metrics, and /ready across an outage."""
from __future__ import annotations

import pytest

from tests.fixtures.feature_server import DRIVERS, FeatureServer, ServingRepo, wait_for

pytestmark = pytest.mark.xdist_group("redis")

STATS = (("major", "1"), ("view", "stats"))


def test_redis_values_metrics_and_ready_across_an_outage(tmp_path, redis_server, clean_redis):
    repo = ServingRepo.served(tmp_path / "repo", online_store=f"{{type: redis, url: '{clean_redis}'}}")
    with FeatureServer(repo.root) as server:
        _, rows = server.post("/get-online-features?format=rows",
                              {"features": ["stats:trips", "recent:score"], "entities": {"driver_id": DRIVERS}})
        expected = [repo.latest("stats", (d,)) for d in DRIVERS]
        assert [r["trips"] for r in rows] == [None if e is None else e["trips"] for e in expected]
        assert rows[0]["score"] == 1.5

        metrics = server.metrics()  # freshness is computed at the scrape: no wait for a refresh
        newest = max(r["event_timestamp"] for r in repo.stats).timestamp()
        assert metrics[("featurectl_newest_event_timestamp_seconds", STATS)] == newest
        assert metrics[("featurectl_freshness_sla_seconds", STATS)] == 7200
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
        during = server.metrics()
        assert during[("featurectl_online_store_errors_total", ())] >= 1
        # Unknown is never reported as fresh: the freshness series are left out while the store is down.
        assert ("featurectl_newest_event_timestamp_seconds", STATS) not in during

        redis_server.start()
        assert wait_for(lambda: server.get("/ready")[0] == 200)
        status, answer = server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})
        assert status == 200 and answer["results"][1]["statuses"] == ["NOT_FOUND"]  # the restarted Redis is empty
        assert ("featurectl_newest_event_timestamp_seconds", STATS) not in server.metrics()  # nothing written since
