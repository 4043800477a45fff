"""One freshness computation, two outputs: the server's /metrics and `featurectl freshness`
agree, and a push through the server moves the age both report (SPEC §8, §9)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.fixtures.feature_server import FeatureServer, ServingRepo
from tests.fixtures.repos import run_featurectl

pytestmark = pytest.mark.xdist_group("serve")


def freshness_json(repo: ServingRepo, code: int) -> dict[str, dict]:
    result = run_featurectl("freshness", "--format", "json", cwd=repo.root)
    assert result.code == code, result.output
    return {row["view"]: row for row in json.loads(result.stdout)}


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def published(server, name: str) -> dict[tuple[str, str], float]:
    return {(dict(labels)["view"], dict(labels)["major"]): value
            for (sample, labels), value in server.metrics().items() if sample == name}


def test_metrics_publish_the_timestamps_featurectl_freshness_reports(tmp_path):
    repo = ServingRepo.served(tmp_path / "repo")
    with FeatureServer(repo.root) as server:
        cli = freshness_json(repo, code=1)  # stats' newest event is 5 h old against a 2 h SLA
        assert set(cli) == {"stats"}  # the only view with a freshness_sla
        newest = published(server, "featurectl_newest_event_timestamp_seconds")
        assert newest == {(v, str(r["major"])): moment(r["newest_event_timestamp"]) for v, r in cli.items()}
        marks = published(server, "featurectl_watermark_timestamp_seconds")
        assert marks == {(v, str(r["major"])): moment(r["watermark"]) for v, r in cli.items()}
        slas = published(server, "featurectl_freshness_sla_seconds")
        assert slas == {(v, str(r["major"])): r["freshness_sla_seconds"] for v, r in cli.items()}
        # The textfile format is the same families, line for line.
        text = run_featurectl("freshness", "--format", "prometheus", cwd=repo.root).stdout
        assert f'featurectl_newest_event_timestamp_seconds{{view="stats",major="1"}} {newest["stats", "1"]:.6f}' in text


def test_a_push_moves_the_age_in_freshness_and_metrics(tmp_path):
    repo = ServingRepo.served(tmp_path / "repo")
    with FeatureServer(repo.root) as server:
        before = freshness_json(repo, code=1)["stats"]
        assert before["status"] == "critical" and before["ratio"] > 2
        pushed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
        status, body = server.post("/push", {"feature_view": "stats", "df": {
            "driver_id": [1], "event_timestamp": [pushed.replace(tzinfo=None).isoformat()],
            "conv_rate": [0.5], "trips": [7], "label": ["pushed"]}})
        assert status == 200 and body["written"] == 1, body
        after = freshness_json(repo, code=0)["stats"]
        assert after["status"] == "ok" and moment(after["newest_event_timestamp"]) == pushed.timestamp()
        assert 10 * 60 - 5 <= after["age_seconds"] <= 10 * 60 + 300
        assert after["watermark"] == before["watermark"]  # a push is not a materialization
        # /metrics sees it at the next scrape, not at the next registry refresh.
        assert published(server, "featurectl_newest_event_timestamp_seconds") == {("stats", "1"): pushed.timestamp()}
