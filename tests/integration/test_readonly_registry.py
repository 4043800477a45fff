"""A registry that cannot be written still serves reads: plan, list, show and history work on
it; only a write fails, as a store failure naming the file (issue 7, rough edges)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.repos import ANSI, copy_example_repo, edit_view, run_featurectl


def freeze(*paths: Path) -> list[Path]:
    """Make files and directories unwritable, for root too (chattr +i) or by mode bits."""
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return []
    result = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"running as root and chattr +i is not supported here: {result.stderr.strip()}"
        if os.environ.get("CI") == "true":  # in CI a missing capability fails, never skips
            pytest.fail(reason)
        pytest.skip(reason)
    return list(paths)


@pytest.fixture
def frozen_repo(tmp_path: Path):
    repo = copy_example_repo(tmp_path / "rides")
    assert run_featurectl("apply", cwd=repo).code == 0
    state = repo / ".featurectl"
    frozen = freeze(state / "registry.db", state)
    yield repo
    if frozen:
        subprocess.run(["chattr", "-i", *map(str, frozen)], check=True)
    else:
        state.chmod(0o755)


def test_reads_work_on_a_registry_that_cannot_be_written(frozen_repo: Path):
    for command in (("list",), ("plan",), ("show", "driver_stats"), ("history",), ("plan", "--format", "json")):
        result = run_featurectl(*command, cwd=frozen_repo)
        assert result.code == 0, f"{command}: {result.output}"
        assert "Traceback" not in result.output and not ANSI.search(result.output)
    assert "driver_stats" in run_featurectl("list", cwd=frozen_repo).stdout


def test_a_write_to_it_is_a_store_failure_naming_the_file(frozen_repo: Path):
    edit_view(frozen_repo, "driver_stats", lambda v: v.update(description="changed", version="1.0.1"))
    result = run_featurectl("apply", cwd=frozen_repo)
    assert result.code == 3, result.output
    assert "registry.db" in result.stderr and "writable" in result.stderr
    assert "Traceback" not in result.output
