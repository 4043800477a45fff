"""Rough edges of command output (issue 7), each through the real CLI: rule ids kept whole on
a narrow terminal, `history` of an unknown name, `--features` with `--service`, non-ASCII in
`show`, and `materialize` with nothing to do."""
from __future__ import annotations

from pathlib import Path

import pytest

from featurectl.core.outcomes import POLICY_OUTCOMES
from featurectl.core.rules import CATALOG
from tests.fixtures.repos import edit_view
from tests.integration.test_cli_workflow import ok

RULE_IDS = [r.id for r in CATALOG] + [o.id for o in POLICY_OUTCOMES]


@pytest.fixture
def applied(example_repo: Path, run_cli) -> Path:
    ok(run_cli("apply"))
    return example_repo


@pytest.mark.parametrize("columns", ["80", "50"])
def test_rules_never_cuts_a_rule_id_on_a_narrow_terminal(run_cli, columns: str) -> None:
    out = ok(run_cli("rules", env={"COLUMNS": columns})).stdout
    first_words = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(RULE_IDS) <= first_words, sorted(set(RULE_IDS) - first_words)
    assert "…" not in out
    words = set(out.split())
    assert set(CATALOG[0].purpose.split()) <= words  # the purpose wraps, whole


def test_history_of_a_name_never_applied_is_exit_2_naming_the_known_objects(applied: Path, run_cli) -> None:
    result = ok(run_cli("history", "nope"), 2)
    assert "'nope'" in result.stderr and "driver_stats" in result.stderr and result.stdout == ""
    assert "No revisions yet" not in result.output
    assert ok(run_cli("history", "nope", "--format", "json"), 2).stdout == ""


def test_history_of_an_applied_name_lists_its_revisions(applied: Path, run_cli) -> None:
    assert "driver_ranking" in ok(run_cli("history", "driver_ranking")).stdout


def test_history_on_an_empty_registry(example_repo: Path, run_cli) -> None:
    assert ok(run_cli("history")).stdout.strip() == "No revisions yet."
    named = ok(run_cli("history", "driver_stats"), 2)
    assert "'driver_stats'" in named.stderr and "featurectl apply" in named.stderr


@pytest.mark.parametrize("command", [
    ["get-online", "-e", "driver_id=1001"],
    ["get-historical", "--entities", "data/training_entities.csv", "--output", "out.parquet"],
])
def test_features_with_service_is_a_usage_error_naming_both_flags(applied: Path, run_cli, command) -> None:
    result = ok(run_cli(*command, "--features", "driver_stats:conv_rate", "--service", "driver_ranking"), 2)
    assert "--features" in result.stderr and "--service" in result.stderr and result.stdout == ""
    assert not (applied / "out.parquet").exists()


def test_show_prints_non_ascii_text_as_it_is(example_repo: Path, run_cli) -> None:
    edit_view(example_repo, "driver_stats", lambda v: v.update(description="Fahrer Jörg’s stats — 司机"))
    ok(run_cli("apply"))
    out = ok(run_cli("show", "driver_stats")).stdout
    assert "Fahrer Jörg’s stats — 司机" in out and "\\x" not in out and "\\u" not in out


def test_materialize_with_nothing_to_do_says_so(example_repo: Path, run_cli) -> None:
    empty = ok(run_cli("materialize-incremental", "now"))
    assert empty.stdout.strip().startswith("nothing to materialize") and "apply" in empty.stdout
    ok(run_cli("apply"))
    ok(run_cli("materialize-incremental", "2026-01-02T00:00:00"))
    again = ok(run_cli("materialize-incremental", "2026-01-01T00:00:00")).stdout.splitlines()
    assert again[-1] == "nothing to materialize: every view is up to date to 2026-01-01T00:00:00+00:00"
    assert all("up to date" in line for line in again)
