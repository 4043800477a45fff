"""Network stores have connect and operation timeouts (defaults 5 s and 10 s, settable in
their config block): a hung server is exit 3 after that time, naming it (SPEC §7)."""
from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from featurectl.online.config import RedisOnlineConfig
from featurectl.registry.config import PostgresRegistryConfig
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl


def test_the_defaults_are_5_and_10_seconds():
    for config in (RedisOnlineConfig(type="redis"), PostgresRegistryConfig(type="postgres", dsn="host=x")):
        assert (config.connect_timeout, config.timeout) == (5.0, 10.0)


def configured(tmp_path: Path, **blocks) -> Path:
    repo = copy_example_repo(tmp_path / "rides")
    config = yaml.safe_load((repo / "featurectl.yaml").read_text())
    config.update(blocks)
    (repo / "featurectl.yaml").write_text(yaml.safe_dump(config))
    return repo


@pytest.fixture
def paused_redis(tmp_path: Path):
    """A private redis-server of this test; the test pauses it with SIGSTOP."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing; run `make servers`")
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.process.send_signal(signal.SIGCONT)
    server.kill()


def test_a_hung_redis_is_exit_3_after_the_configured_timeout(tmp_path: Path, paused_redis):
    repo = configured(tmp_path, online_store={"type": "redis", "url": paused_redis.url, "timeout": 1,
                                              "connect_timeout": 1})
    assert run_featurectl("apply", cwd=repo).code == 0
    paused_redis.process.send_signal(signal.SIGSTOP)
    began = time.monotonic()
    result = run_featurectl("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001", cwd=repo)
    elapsed = time.monotonic() - began
    assert result.code == 3, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    assert paused_redis.url in result.stderr and "timeout" in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s with a 1 s timeout"  # a loaded machine starts Python slowly


def test_a_registry_statement_past_its_timeout_is_exit_3_naming_the_registry(tmp_path: Path, postgres_dsn: str):
    registry = {"type": "postgres", "dsn": postgres_dsn, "schema": "reg_timeout", "timeout": 1}
    repo = configured(tmp_path, registry=registry)
    assert run_featurectl("apply", cwd=repo).code == 0
    (repo / "features" / "entities.yaml").write_text(
        (repo / "features" / "entities.yaml").read_text().replace("description:", "description: changed", 1))
    with psycopg.connect(postgres_dsn) as holder:  # holds the head row: apply's commit waits on it
        holder.execute('SELECT revision FROM "reg_timeout".head FOR UPDATE')
        began = time.monotonic()
        result = run_featurectl("apply", cwd=repo)
        elapsed = time.monotonic() - began
        holder.rollback()
    assert result.code == 3, result.output
    assert "PostgreSQL registry" in result.stderr and "registry.timeout" in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s with a 1 s timeout"  # a loaded machine starts Python slowly
