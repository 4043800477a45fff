"""Online reads through the SDK (SQLite and a private Redis) and `featurectl get-online`
(json and table): nulls for missing entities, request order with duplicates, composite keys,
services, full feature names and collisions, key conversion, and errors naming what is wrong."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from featurectl.core.errors import UsageError
from featurectl.sdk import FeatureStore
from tests.fixtures.repos import run_featurectl
from tests.integration.test_materialize import BASE, END, Repo, ok
from tests.reference import latest_in_window


def materialized(root: Path, online: dict[str, Any]) -> Repo:
    repo = Repo(root, online)
    with repo.store() as fs:
        fs.apply()
        assert {r.status for r in fs.materialize(BASE, END)} == {"ok"}
    return repo


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def repo(request, tmp_path_factory) -> Repo:
    """Materialized once per store: these tests only read. (Pytest tears module fixtures down
    when another module's test runs in between, so a Redis flushed meanwhile is refilled.)"""
    online: dict[str, Any] = {"type": "sqlite", "path": ".featurectl/online.db"}
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.start()
        server.flush()
        online = {"type": "redis", "url": server.url}
    return materialized(tmp_path_factory.mktemp("reads") / "repo", online)


@pytest.fixture(scope="module")
def fs(repo: Repo):
    with repo.store() as store:
        yield store


@pytest.fixture(scope="module")
def cli_repo(tmp_path_factory) -> Repo:
    """On SQLite: the CLI reads with the real clock, and the data (in 2030) is not expired by it."""
    return materialized(tmp_path_factory.mktemp("cli") / "repo", {"type": "sqlite", "path": ".featurectl/online.db"})


def latest_users(repo: Repo) -> dict[int, dict]:
    return {key[0]: row for key, row in latest_in_window(repo.users, BASE, END).items()}


def latest_pairs(repo: Repo) -> dict[tuple, dict]:
    return latest_in_window(repo.pairs, BASE, END)


def get_online(repo: Repo, *args: str, code: int = 0):
    return ok(run_featurectl("get-online", *args, cwd=repo.root), code)


# -- SDK ----------------------------------------------------------------------------------------


def test_request_order_duplicates_and_missing_entities(repo: Repo, fs: FeatureStore):
    users = latest_users(repo)
    ids = [5, 12, 3, 5, 11, 1, 3]  # 11 and 12 have no data
    columns = fs.get_online_features(["user_stats:clicks", "user_stats:tier", "user_stats:rate"],
                                     [{"user_id": i} for i in ids])
    assert columns == {
        "user_id": ids,
        "clicks": [users[i]["clicks"] if i in users else None for i in ids],
        "tier": [users[i]["tier"] if i in users else None for i in ids],
        "rate": [users[i]["rate"] if i in users else None for i in ids],  # float32 read as its short decimal
    }


def test_two_views_with_a_composite_key_in_one_request(repo: Repo, fs: FeatureStore):
    users, pairs = latest_users(repo), latest_pairs(repo)
    rows = [{"user_id": 2, "shop_id": "b"}, {"user_id": 11, "shop_id": "a"}, {"user_id": 2, "shop_id": "d"},
            {"user_id": 7, "shop_id": "c"}]
    columns = fs.get_online_features(["user_shop:spend", "user_stats:score", "user_shop:visits"], rows)
    assert list(columns) == ["user_id", "shop_id", "spend", "score", "visits"]
    for i, row in enumerate(rows):
        pair, user = pairs.get((row["user_id"], row["shop_id"])), users.get(row["user_id"])
        assert columns["spend"][i] == (pair and pair["spend"])
        assert columns["visits"][i] == (pair and pair["visits"])
        assert columns["score"][i] == (user and user["score"])


def test_a_composite_key_view_needs_both_keys(fs: FeatureStore):
    with pytest.raises(UsageError, match="user_shop.*shop_id"):
        fs.get_online_features(["user_shop:spend"], [{"user_id": 1}])


def test_a_service_and_full_feature_names(repo: Repo, fs: FeatureStore):
    users, pairs = latest_users(repo), latest_pairs(repo)
    key = next(iter(pairs))
    columns = fs.get_online_features(entity_rows=[{"user_id": key[0], "shop_id": key[1]}], service="shop_ranking",
                                     full_feature_names=True)
    assert columns == {"user_id": [key[0]], "shop_id": [key[1]],
                       "user_stats__score": [users[key[0]]["score"]], "user_shop__spend": [pairs[key]["spend"]],
                       "user_shop__visits": [pairs[key]["visits"]], "user_shop__tag": [pairs[key]["tag"]]}


def test_a_name_collision_needs_full_feature_names(repo: Repo, fs: FeatureStore):
    rows = [{"user_id": 1, "shop_id": "a"}]
    with pytest.raises(UsageError, match="output column 'tag' .*collides") as err:
        fs.get_online_features(["user_stats:tag", "user_shop:tag"], rows)
    assert "full-feature-names" in (err.value.hint or "")
    columns = fs.get_online_features(["user_stats:tag", "user_shop:tag"], rows, full_feature_names=True)
    assert columns["user_stats__tag"] == [latest_users(repo)[1]["tag"]]


@pytest.mark.parametrize("value, expected", [("3", 3), (" +3 ", 3), (3, 3), (3.0, 3), (np.int32(3), 3)])
def test_entity_values_are_converted_to_the_entity_dtype(repo: Repo, fs: FeatureStore, value, expected):
    columns = fs.get_online_features(["user_stats:tag"], [{"user_id": value}])
    assert columns == {"user_id": [expected], "tag": [latest_users(repo)[3]["tag"]]}


@pytest.mark.parametrize("value", ["abc", "3.0", "1_001", 3.5, float("nan"), True, None, 2**63])
def test_an_entity_value_that_is_not_the_entity_dtype_is_a_usage_error(fs: FeatureStore, value):
    with pytest.raises(UsageError, match="user_id.*int64"):
        fs.get_online_features(["user_stats:tag"], [{"user_id": value}])


@pytest.mark.parametrize("refs, service, message", [
    (["user_stats:nope"], None, "unknown feature 'nope' in feature view 'user_stats'"),
    (["ghost:x"], None, "unknown feature view 'ghost'"),
    (["user_stats"], None, "user_stats"),
    ([], "ghost_service", "unknown feature service 'ghost_service'"),
    ([], None, "no features requested"),
])
def test_unknown_names_are_usage_errors_naming_them(fs: FeatureStore, refs, service, message):
    with pytest.raises(UsageError, match=message):
        fs.get_online_features(refs, [{"user_id": 1}], service=service)


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_json_is_one_object_per_entity_in_request_order(cli_repo: Repo):
    users = latest_users(cli_repo)
    result = get_online(cli_repo, "--features", "user_stats:score,user_stats:tier", "-e", "user_id=4",
                        "-e", "user_id=12", "-e", "user_id=4")
    assert json.loads(result.stdout) == [
        {"user_id": 4, "score": users[4]["score"], "tier": users[4]["tier"]},
        {"user_id": 12, "score": None, "tier": None},
        {"user_id": 4, "score": users[4]["score"], "tier": users[4]["tier"]},
    ]


def test_cli_composite_keys_service_and_full_feature_names(cli_repo: Repo):
    users, pairs = latest_users(cli_repo), latest_pairs(cli_repo)
    present = next(k for k in pairs if k[0] in users)
    result = get_online(cli_repo, "--service", "shop_ranking", "--full-feature-names",
                        "-e", f"user_id={present[0]}", "-e", f"shop_id={present[1]}",
                        "-e", "user_id=11", "-e", "shop_id=d")
    pair = pairs[present]
    assert json.loads(result.stdout) == [
        {"user_id": present[0], "shop_id": present[1], "user_stats__score": users[present[0]]["score"],
         "user_shop__spend": pair["spend"], "user_shop__visits": pair["visits"], "user_shop__tag": pair["tag"]},
        {"user_id": 11, "shop_id": "d", "user_stats__score": None, "user_shop__spend": None,
         "user_shop__visits": None, "user_shop__tag": None},
    ]


def test_cli_table_format(cli_repo: Repo):
    users = latest_users(cli_repo)
    result = get_online(cli_repo, "--features", "user_stats:clicks,user_stats:tag", "-e", "user_id=2",
                        "-e", "user_id=12", "--format", "table")
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "user_id" in line)
    assert header.index("user_id") < header.index("clicks") < header.index("tag")
    assert any(str(users[2]["clicks"]) in line and users[2]["tag"] in line for line in lines)
    assert any(" 12 " in line for line in lines)


# Unknown features and views, malformed references and entities, and keys of the wrong type
# are covered for every command in test_cli_errors.py.
@pytest.mark.parametrize("args, named", [
    (["--service", "ghost_service", "-e", "user_id=1"], "ghost_service"),
    (["--features", "user_shop:spend", "-e", "user_id=1"], "shop_id"),
    (["--features", "user_stats:tag,user_shop:tag", "-e", "user_id=1", "-e", "shop_id=a"], "--full-feature-names"),
])
def test_cli_bad_requests_are_exit_2_naming_the_problem(cli_repo: Repo, args: list[str], named: str):
    result = get_online(cli_repo, *args, code=2)
    assert named in result.stderr and result.stdout == ""


def test_a_null_string_key_is_a_usage_error_not_the_entity_named_none(fs: FeatureStore):
    with pytest.raises(UsageError, match="shop_id.*string"):
        fs.get_online_features(["user_shop:spend"], [{"user_id": 1, "shop_id": None}])


def test_cli_an_unreachable_redis_is_exit_3_naming_the_url(cli_repo: Repo):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    config = cli_repo.root / "featurectl.yaml"
    saved = config.read_text()
    config.write_text(yaml.safe_dump({"project": "shop", "online_store": {"type": "redis", "url": url}}))
    try:
        result = get_online(cli_repo, "--features", "user_stats:tag", "-e", "user_id=1", code=3)
    finally:
        config.write_text(saved)
    assert url in result.stderr and "user_stats" in result.stderr and result.stdout == ""
