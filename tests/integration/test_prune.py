"""`featurectl prune` through the CLI, on the SQLite online store and on a private Redis:
after a major bump the old major's online data stays (the plan says so) until prune drops
it; the applied major's data is never touched."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from featurectl.online.base import OnlineTable
from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, CliResult, run_featurectl

# In the future of the real clock: Redis expires keys at event time + ttl by its own clock.
T0 = datetime(2030, 6, 1, tzinfo=timezone.utc)
FEATURES = [{"name": "n", "dtype": "int64"}, {"name": "m", "dtype": "int64"}]


def ok(result: CliResult, code: int = 0) -> CliResult:
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


@pytest.fixture(params=["sqlite", "redis"])
def online_config(request) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"type": "sqlite", "path": ".featurectl/online.db"}
    return {"type": "redis", "url": request.getfixturevalue("clean_redis")}


def write_view(root: Path, version: str, features: list[dict]) -> None:
    definitions = {
        "entities": [{"name": "user", "join_key": "user_id", "dtype": "int64"}],
        "sources": [{"name": "events", "path": "data/events.parquet", "timestamp_field": "event_timestamp"}],
        "feature_views": [{"name": "stats", "version": version, "entities": ["user"], "source": "events",
                           "ttl": "0", "owner": "t@example.com", "features": features}],
    }
    (root / "features" / "defs.yaml").write_text(yaml.safe_dump(definitions, sort_keys=False))


@pytest.fixture
def repo(tmp_path: Path, online_config: dict[str, Any]) -> Path:
    root = tmp_path / "repo"
    (root / "features").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "featurectl.yaml").write_text(yaml.safe_dump({"project": "pr", "online_store": online_config}))
    pq.write_table(pa.table({"user_id": [1, 2], "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                             "n": [7, 8], "m": [70, 80]}), root / "data" / "events.parquet")
    write_view(root, "1.0.0", FEATURES)
    return root


def cli(root: Path, *args: str, code: int = 0) -> CliResult:
    return ok(run_featurectl(*args, cwd=root), code)


def stored(root: Path, major: int) -> list[int | None]:
    """The values of feature n for users 1 and 2 in one major's online namespace."""
    table = OnlineTable(project="pr", view="stats", major=major, join_keys=(("user_id", "int64"),),
                        features=(("n", "int64"),), ttl_seconds=0)
    with FeatureStore(root) as fs:
        return fs.online.read(table, [(1,), (2,)], ["n"], T0 + timedelta(hours=1)).values["n"]


def materialize(root: Path) -> None:
    cli(root, "materialize", T0.isoformat(), (T0 + timedelta(hours=1)).isoformat())


def test_prune_drops_old_majors_only_when_asked(repo: Path) -> None:
    cli(repo, "apply")
    materialize(repo)
    assert stored(repo, 1) == [7, 8]
    assert "Nothing to prune" in cli(repo, "prune").stdout

    write_view(repo, "2.0.0", FEATURES[:1])   # m removed: a new major
    plan = cli(repo, "plan").stdout
    assert "keeps its major 1 online data" in plan and "featurectl prune" in plan
    cli(repo, "apply")
    materialize(repo)
    assert stored(repo, 1) == [7, 8], "apply keeps the old major for readers pinned to it"

    dry = cli(repo, "prune", "--dry-run").stdout
    assert "Would drop the online data of stats major 1 (applied: major 2)." in dry
    assert stored(repo, 1) == [7, 8]

    assert "Dropped the online data of stats major 1" in cli(repo, "prune").stdout
    assert stored(repo, 1) == [None, None]
    assert stored(repo, 2) == [7, 8]
    got = cli(repo, "get-online", "--features", "stats:n", "-e", "user_id=1", "--format", "json").stdout
    assert '"n": 7' in got
    assert "Nothing to prune" in cli(repo, "prune").stdout
    assert stored(repo, 2) == [7, 8]


def test_prune_of_an_unknown_view_is_bad_input(repo: Path) -> None:
    cli(repo, "apply")
    result = cli(repo, "prune", "--views", "nope", code=2)
    assert "nope" in result.stderr and "stats" in result.stderr
