"""Secrets never reach output (SPEC §7): Redis URLs and PostgreSQL DSNs in every form, through
the CLI where the user meets them, and the one masking helper directly."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featurectl.core.secrets import mask_secrets
from tests.fixtures.redis_server import _free_port
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl

SECRET = "s3cr#t@pw"


@pytest.mark.parametrize("text, masked", [
    ("redis://u:p@h:1/2", "redis://u:***@h:1/2"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("redis://:pa#ss@h:6379/0 failed", "redis://:***@h:6379/0 failed"),
    ("redis://h:6379/0?password=s3cr#et&db=1", "redis://h:6379/0?password=***&db=1"),
    ("postgresql://bob:p@ss@db:5432/x is down", "postgresql://bob:***@db:5432/x is down"),
    ("host=db password=hunter2 dbname=x", "host=db password=*** dbname=x"),
    ("host=db password='a b\\' c' dbname=x", "host=db password=*** dbname=x"),
    ("(postgresql://bob@db/x?password=zz)", "(postgresql://bob@db/x?password=***)"),
])
def test_mask_secrets_masks_every_password_form_and_keeps_the_rest(text, masked):
    assert mask_secrets(text) == masked


def repo_with(tmp_path: Path, **blocks) -> Path:
    repo = copy_example_repo(tmp_path / "rides")
    config = yaml.safe_load((repo / "featurectl.yaml").read_text())
    config.update(blocks)
    (repo / "featurectl.yaml").write_text(yaml.safe_dump(config))
    return repo


def assert_masked(result, code: int) -> None:
    assert result.code == code, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    for part in ("s3cr", "pw", "#t", "hunter2"):
        assert part not in result.output, result.output
    assert "***" in result.output


# An unencoded '#' or second '@' cannot be parsed without guessing: refused as bad config (2);
# a well-formed URL to a server that is not there is a store failure (3).
@pytest.mark.parametrize("url, code", [
    (f"redis://127.0.0.1:{{port}}/0?password={SECRET}", 2),
    (f"redis://:{SECRET}@127.0.0.1:{{port}}/0", 2),
    (f"redis://user:{SECRET}@127.0.0.1:{{port}}/0", 2),
    ("redis://127.0.0.1:{port}/0?password=hunter2", 3),
    ("redis://:hunter2@127.0.0.1:{port}/0", 3),
])
def test_a_redis_password_never_reaches_the_output(tmp_path, url, code):
    repo = repo_with(tmp_path, online_store={"type": "redis", "url": url.format(port=_free_port())})
    assert run_featurectl("apply", cwd=repo).code == 0
    assert_masked(run_featurectl("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001",
                                 cwd=repo), code)
    assert_masked(run_featurectl("materialize", "2020-01-01", "2030-01-01", cwd=repo), code)


@pytest.mark.parametrize("dsn, code", [
    (f"postgresql://bob:{SECRET}@127.0.0.1:{{port}}/featurectl", 2),
    ("postgresql://bob:hunter2@127.0.0.1:{port}/featurectl", 3),
    ("postgresql://bob@127.0.0.1:{port}/featurectl?password=hunter2", 3),
    (f"host=127.0.0.1 port={{port}} user=bob password={SECRET} dbname=featurectl", 3),
    (f"host=127.0.0.1 port={{port}} user=bob password='{SECRET} x' dbname=featurectl", 3),
])
def test_a_registry_password_never_reaches_the_output(tmp_path, dsn, code):
    repo = repo_with(tmp_path, registry={"type": "postgres", "dsn": dsn.format(port=_free_port())})
    for command in (("list",), ("plan",), ("history",)):
        assert_masked(run_featurectl(*command, cwd=repo), code)
