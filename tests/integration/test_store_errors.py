"""Store-side failures a user can cause, each a clear error with the right exit code (issue 7,
bug 11): foreign values at featurectl's Redis keys, a corrupt registry row, a bad Redis URL."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import redis as redis_client
import yaml

from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl

GET = ("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001")


def clear(result, code: int, *named: str):
    assert result.code == code, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    assert "unexpected" not in result.output
    for text in named:
        assert text in result.output, result.output
    return result


def repo_with(tmp_path: Path, **blocks) -> Path:
    repo = copy_example_repo(tmp_path / "rides")
    config = yaml.safe_load((repo / "featurectl.yaml").read_text())
    config.update(blocks)
    (repo / "featurectl.yaml").write_text(yaml.safe_dump(config))
    return repo


def test_foreign_values_at_featurectl_redis_keys_are_named(tmp_path: Path, clean_redis: str):
    repo = repo_with(tmp_path, online_store={"type": "redis", "url": clean_redis})
    clear(run_featurectl("apply", cwd=repo), 0)
    client = redis_client.Redis.from_url(clean_redis)
    key = "fc:rides:driver_stats:v1:1001"
    fresh = b"%017d" % (int(time.time() * 1e6) + 5 * 10**16)  # a current event time, then not JSON
    # (A JSON array once crashed the read with AttributeError; a cut packed value is foreign too.)
    for foreign in (b"hello", fresh + b"not json", fresh + b"[1]", fresh + b"\x01\x05\x00\x01"):
        client.set(key, foreign)
        clear(run_featurectl(*GET, cwd=repo), 3, key, "did not write")
    client.delete(key)
    client.hset(key, "x", "1")  # another type: the write script meets it
    clear(run_featurectl("materialize", "2020-01-01", "2030-01-01", "--views", "driver_stats", cwd=repo), 3,
          "did not write")
    client.close()


def test_a_non_numeric_redis_port_is_bad_config(tmp_path: Path):
    repo = repo_with(tmp_path, online_store={"type": "redis", "url": "redis://localhost:63x9/0"})
    clear(run_featurectl("apply", cwd=repo), 0)
    clear(run_featurectl(*GET, cwd=repo), 2, "online_store.url", "redis://localhost:63x9/0")


def test_corrupt_json_in_a_registry_row_names_the_registry_and_the_object(tmp_path: Path):
    repo = copy_example_repo(tmp_path / "rides")
    clear(run_featurectl("apply", cwd=repo), 0)
    path = repo / ".featurectl" / "registry.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE objects SET definition = '{not json' WHERE name = 'driver_stats'")
        conn.execute("UPDATE revisions SET changes = '[' WHERE revision = 1")
    clear(run_featurectl("list", cwd=repo), 3, str(path), "feature_view 'driver_stats'", "not valid JSON")
    clear(run_featurectl("history", cwd=repo), 3, str(path), "revision 1", "not valid JSON")
