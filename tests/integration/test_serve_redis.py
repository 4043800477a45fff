"""The server on a private Redis: the same answers, /metrics, and /ready across an outage."""
from __future__ import annotations

from datetime import timedelta

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


def test_push_to_redis_newer_wins_latest_of_a_batch_wins_and_a_refusal_writes_nothing(tmp_path, redis_server,
                                                                                      clean_redis):
    """The push path is the store's own write: what SQLite's tests show holds on Redis too."""
    repo = ServingRepo.served(tmp_path / "repo", online_store=f"{{type: redis, url: '{clean_redis}'}}")

    def text(moment) -> str:
        return moment.replace(tzinfo=None).isoformat()

    def read(drivers):
        return server.post("/get-online-features?format=rows", {
            "features": ["stats:conv_rate", "stats:trips", "stats:label"], "entities": {"driver_id": drivers}})[1]

    newer, older = repo.now + timedelta(minutes=1), repo.now - timedelta(days=5)
    with FeatureServer(repo.root) as server:
        status, body = server.post("/push", {"feature_view": "stats", "df": {
            "driver_id": [1, 2, 9, 9], "event_timestamp": [text(newer), text(older), text(older), text(newer)],
            "conv_rate": [0.5, 0.6, 0.7, 0.8], "trips": [7, 8, 9, 10], "label": ["a", "b", "c", None]}})
        assert (status, body["written"]) == (200, 2), body  # driver 2's stored value is newer
        rows = read([1, 2, 9])
        assert rows[0] == {"driver_id": 1, "conv_rate": 0.5, "trips": 7, "label": "a"}
        assert rows[1]["trips"] == repo.latest("stats", (2,))["trips"]
        assert rows[2] == {"driver_id": 9, "conv_rate": 0.8, "trips": 10, "label": None}
        assert server.metrics()[("featurectl_newest_event_timestamp_seconds", STATS)] == newer.timestamp()

        status, body = server.post("/push", {"feature_view": "stats", "df": {
            "driver_id": [1, 9], "event_timestamp": [text(newer + timedelta(minutes=1))] * 2,
            "conv_rate": [0.1, 1.5], "trips": [1, 2], "label": ["x", "y"]}})
        assert (status, body["error"]) == (422, "INVALID_ROWS") and "conv_rate: above max 1" in body["report"]["violations"]
        assert read([1, 2, 9]) == rows

def test_concurrent_requests_on_redis_each_get_their_own_values(tmp_path, clean_redis):
    """A worker sends the Redis reads of the requests it has in hand in one MGET: many clients
    at once, each asking for other drivers and features, must each get exactly their answer."""
    from concurrent.futures import ThreadPoolExecutor

    repo = ServingRepo.served(tmp_path / "repo", online_store=f"{{type: redis, url: '{clean_redis}'}}")
    asks = [(DRIVERS[i % 5:] + [99] + DRIVERS[:i % 3], ["stats:trips"] if i % 2 else ["stats:trips", "recent:score"])
            for i in range(96)]
    with FeatureServer(repo.root, workers=1) as server:
        def ask(one):
            drivers, features = one
            return server.post("/get-online-features?format=rows", {"features": features, "entities": {"driver_id": drivers}})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, asks))
    for (drivers, features), (status, rows) in zip(asks, answers):
        assert status == 200
        assert [r["driver_id"] for r in rows] == drivers
        expected = [repo.latest("stats", (d,)) for d in drivers]
        assert [r["trips"] for r in rows] == [None if e is None else e["trips"] for e in expected]
        assert ("score" in rows[0]) == (len(features) == 2)
