"""The server's life: a new apply is served without a restart; SIGTERM finishes gracefully."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from tests.fixtures.feature_server import FeatureServer, ServingRepo, wait_for
from tests.fixtures.repos import run_featurectl

pytestmark = pytest.mark.xdist_group("serve")


@pytest.fixture
def repo(tmp_path):
    return ServingRepo.served(tmp_path / "repo")


def add_feature(repo: ServingRepo, version: str) -> None:
    path = repo.root / "features" / "defs.yaml"
    data = yaml.safe_load(path.read_text())
    stats = next(v for v in data["feature_views"] if v["name"] == "stats")
    stats["version"] = version
    stats["features"].append({"name": "extra", "dtype": "int64"})
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_new_apply_is_served_without_restart(repo):
    with FeatureServer(repo.root) as server:
        request = {"features": ["stats:extra"], "entities": {"driver_id": [1]}}
        assert server.post("/get-online-features", request)[1]["error"] == "UNKNOWN_FEATURE"
        add_feature(repo, "1.1.0")
        assert run_featurectl("apply", cwd=repo.root).code == 0
        # Values written before the minor change read as null for the new feature.
        answer = wait_for(lambda: (lambda r: r[0] == 200 and r[1])(server.post("/get-online-features", request)))
        assert answer and answer["results"][1]["statuses"] == ["NULL_VALUE"]
        assert server.get("/ready")[1]["registry_revision"] == 2


def test_sigterm_answers_in_flight_requests_and_exits(repo):
    server = FeatureServer(repo.root).start()
    assert server.post("/get-online-features", {"features": ["stats:trips"], "entities": {"driver_id": [1]}})[0] == 200
    code, err = server.terminate()
    assert code in (0, -15, 143), err
    assert "stopped" in err and "Traceback" not in err


def test_feature_logs_are_flushed_on_sigterm_and_read_back_with_pyarrow(repo, tmp_path):
    import pyarrow.dataset as ds

    logs = tmp_path / "logs"
    server = FeatureServer(repo.root, "--log-features", str(logs)).start()
    ids = []
    for drivers in ([1, 5], [2]):
        status, answer, headers = server.request_with_headers(
            "POST", "/get-online-features", {"features": ["stats:trips", "recent:score"], "entities": {"driver_id": drivers}})
        assert status == 200
        ids.append(headers["x-request-id"])
    code, err = server.terminate()
    assert "Traceback" not in err
    assert not list(logs.rglob("*.partial"))
    stats = ds.dataset(logs / "stats", format="parquet").to_table().sort_by("driver_id").to_pylist()
    assert [(r["driver_id"], r["trips"], r["trips__status"]) for r in stats] == [
        (1, repo.latest("stats", (1,))["trips"], "PRESENT"), (2, repo.latest("stats", (2,))["trips"], "PRESENT"),
        (5, None, "NOT_FOUND")]
    assert {r["request_id"] for r in stats} == set(ids)
    assert all(r["request_time"] is not None for r in stats)
    recent = ds.dataset(logs / "recent", format="parquet").to_table().sort_by("driver_id").to_pylist()
    assert [r["score__status"] for r in recent] == ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]


def test_pinned_majors_read_side_by_side_after_a_major_bump(repo):
    path = repo.root / "features" / "defs.yaml"
    data = yaml.safe_load(path.read_text())
    stats = next(v for v in data["feature_views"] if v["name"] == "stats")
    stats["version"] = "2.0.0"
    stats["features"] = [f for f in stats["features"] if f["name"] != "label"]  # FEATURE_REMOVED: major
    data["feature_services"].append({"name": "pinned", "version": "1.0.0", "owner": "t@example.com",
                                     "features": ["stats@1:*"]})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert run_featurectl("apply", cwd=repo.root).code == 0  # major 2 starts empty: not materialized
    old = repo.latest("stats", (1,))
    with FeatureServer(repo.root) as server:
        _, rows = server.post("/get-online-features?format=rows", {
            "features": ["stats@1:label", "stats:trips"], "entities": {"driver_id": [1]}})
        assert rows == [{"driver_id": 1, "label": old["label"], "trips": None}]
        _, body = server.post("/get-online-features", {
            "feature_service": "pinned", "full_feature_names": True, "entities": {"driver_id": [1]}})
        assert body["metadata"]["feature_names"] == ["driver_id", "stats@1__conv_rate", "stats@1__trips", "stats@1__label"]
        assert [r["statuses"][0] for r in body["results"][1:]] == ["PRESENT"] * 3
        status, answer = server.post("/get-online-features", {"features": ["stats@3:trips"], "entities": {"driver_id": [1]}})
        assert (status, answer["error"]) == (400, "UNKNOWN_VIEW") and "applied majors of 'stats': 1, 2" in answer["message"]
    cli = run_featurectl("get-online", "--features", "stats@1:label,stats:trips", "-e", "driver_id=1", cwd=repo.root)
    assert cli.code == 0 and yaml.safe_load(cli.stdout) == rows


def test_workers_share_metrics_in_a_directory_of_their_own_removed_at_exit(repo, tmp_path):
    """PROMETHEUS_MULTIPROC_DIR names where the run's directory is made: files of an earlier run
    never add to this run's counters, and nothing is left behind."""
    parent = tmp_path / "multiproc"
    ok = ("featurectl_requests_total", (("endpoint", "/get-online-features"), ("status", "200")))
    request = {"features": ["stats:trips"], "entities": {"driver_id": [1]}}
    for count in (3, 1):
        server = FeatureServer(repo.root, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(parent)}).start()
        try:
            for _ in range(count):
                assert server.post("/get-online-features", request)[0] == 200
            assert server.metrics()[ok] == count  # summed over both workers, this run only
            assert len(list(parent.iterdir())) == 1
        finally:
            code, err = server.terminate()
        assert "Traceback" not in err
        assert list(parent.iterdir()) == [], "the run's metrics directory outlived it"


WRITTEN = ("featurectl_feature_log_rows_total", ())


def test_feature_logs_roll_by_size_and_by_time_while_serving(repo, tmp_path):
    import pyarrow.dataset as ds

    logs = tmp_path / "logs"
    # Every flush rolls by size (1 byte); an idle file is closed after 2 s without another write.
    env = {"FEATURECTL_SERVE_LOG_ROLL_BYTES": "1", "FEATURECTL_SERVE_LOG_ROLL_SECONDS": "2"}
    with FeatureServer(repo.root, "--log-features", str(logs), env=env) as server:
        def logged(rows: int):
            return lambda: server.metrics().get(WRITTEN) == rows

        served = []
        for burst in ([1, 2], [3], [4, 5]):
            assert server.post("/get-online-features", {"features": ["stats:trips"],
                                                        "entities": {"driver_id": burst}})[0] == 200
            served += burst
            # Written before the next burst is sent (not a sleep, which a loaded machine can
            # outrun): each burst is its own write, and a file past 1 byte takes no more.
            assert wait_for(logged(len(served)), timeout=20), server.metrics()
        # Still serving, no SIGTERM: the last file is closed by age, not by the next write.
        closed = wait_for(lambda: (lambda done: done if len(done) >= 3 and not list(logs.rglob("*.partial"))
                                   else None)(sorted((logs / "stats").glob("*.parquet"))), timeout=20)
        assert closed, sorted(p.name for p in logs.rglob("*"))
        table = ds.dataset(closed, format="parquet").to_table()
        assert sorted(table["driver_id"].to_pylist()) == served
        for path in closed:  # each a whole Parquet file, readable alone
            assert pq.read_metadata(path).num_rows >= 1
        assert server.metrics()[WRITTEN] == len(served)


def test_bad_roll_settings_are_refused_before_serving(repo, tmp_path):
    result = run_featurectl("serve", "--log-features", str(tmp_path / "logs"), cwd=repo.root,
                            env={"FEATURECTL_SERVE_LOG_ROLL_BYTES": "big"})
    assert result.code == 2 and "FEATURECTL_SERVE_LOG_ROLL_BYTES='big' is not a positive number" in result.output
    assert "Traceback" not in result.output
