"""`featurectl plan --against GIT_REF` through the CLI, in real temporary git repositories.
The base is read from git; the registry is never opened (CI runs this without one)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.repos import ANSI, CliResult, copy_example_repo, edit_view, git, git_commit_all

REGISTRY = Path(".featurectl") / "registry.db"


def ok(result: CliResult, code: int = 0) -> CliResult:
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


def plan_json(run_cli, *args: str, code: int = 0, cwd: Path | None = None) -> dict:
    return json.loads(ok(run_cli("plan", "--format", "json", *args, cwd=cwd), code).stdout)


def add_feature(repo: Path, version: str = "1.1.0") -> None:
    def change(view: dict) -> None:
        view["version"] = version
        view["features"].append({"name": "surge", "dtype": "float64"})
    edit_view(repo, "driver_stats", change)


@pytest.fixture
def committed(example_repo: Path) -> Path:
    git_commit_all(example_repo, "feature definitions")
    return example_repo


def test_plan_against_head_after_editing_a_view(committed: Path, run_cli) -> None:
    add_feature(committed)
    plan = plan_json(run_cli, "--against", "HEAD")
    assert plan["base"] == {"kind": "git", "ref": "HEAD"}
    assert plan["valid"] is True
    (change,) = plan["changes"]
    assert (change["kind"], change["name"], change["action"]) == ("feature_view", "driver_stats", "update")
    assert [i["rule"] for i in change["items"]] == ["FEATURE_ADDED"]
    assert plan["summary"]["unchanged"] == 8
    ok(run_cli("plan", "--against", "HEAD", "--detailed-exitcode"), 4)
    assert "HEAD" in ok(run_cli("plan", "--against", "HEAD")).stdout
    assert not (committed / REGISTRY).exists(), "plan --against must not open or create the registry"


def test_a_breaking_change_against_a_commit_id_is_refused_like_against_the_registry(committed: Path,
                                                                                     run_cli) -> None:
    sha = git(committed, "rev-parse", "HEAD")
    edit_view(committed, "driver_stats", lambda v: v.update(features=v["features"][:-1], version="1.1.0"))
    plan = plan_json(run_cli, "--against", sha, code=1)
    assert plan["base"] == {"kind": "git", "ref": sha}
    assert [v["rule"] for v in plan["violations"]] == ["VERSION_BUMP_TOO_SMALL"]
    ok(run_cli("plan", "--against", sha, "--detailed-exitcode"), 1)
    assert not (committed / REGISTRY).exists()


def test_no_registry_is_needed(committed: Path, run_cli) -> None:
    config = committed / "featurectl.yaml"
    unreachable = "postgresql://ci@127.0.0.1:9/registry?connect_timeout=1"
    config.write_text(config.read_text().replace(
        "registry: {type: sqlite, path: .featurectl/registry.db}", f'registry: {{type: postgres, dsn: "{unreachable}"}}'))
    add_feature(committed)
    assert plan_json(run_cli, "--against", "HEAD")["valid"] is True


def test_no_registry_secret_is_needed(committed: Path, run_cli) -> None:
    config = committed / "featurectl.yaml"
    config.write_text(config.read_text().replace(
        "registry: {type: sqlite, path: .featurectl/registry.db}",
        'registry: {type: postgres, dsn: "${FEATURECTL_UNSET_PG_DSN}"}'))
    add_feature(committed)
    assert plan_json(run_cli, "--against", "HEAD")["valid"] is True
    # Opening that registry still needs the secret, and says which one.
    result = ok(run_cli("plan"), 2)
    assert "FEATURECTL_UNSET_PG_DSN" in result.stderr and "featurectl.yaml" in result.stderr


def test_unknown_ref_is_bad_input(committed: Path, run_cli) -> None:
    result = ok(run_cli("plan", "--against", "no-such-branch"), 2)
    assert "no-such-branch" in result.stderr and "error:" in result.stderr
    assert not (committed / REGISTRY).exists()


def test_outside_a_git_checkout_is_bad_input(example_repo: Path, run_cli) -> None:
    result = ok(run_cli("plan", "--against", "HEAD"), 2)
    assert "git" in result.stderr


def test_moved_definitions_folder_is_no_change(committed: Path, run_cli) -> None:
    shutil.move(committed / "features", committed / "definitions")
    config = committed / "featurectl.yaml"
    config.write_text(config.read_text().replace('"features/**/', '"definitions/**/'))
    assert "definitions/**" in config.read_text()
    plan = plan_json(run_cli, "--against", "HEAD")
    assert plan["changes"] == [] and plan["summary"]["unchanged"] == 9
    # Against the commit before the move (read with that commit's own config), a later edit
    # in the new folder is the only change.
    git_commit_all(committed, "move definitions")
    edit_view(committed, "driver_stats", lambda v: v.update(version="1.0.1", description="Moved"),
              file="definitions/drivers.yaml")
    plan = plan_json(run_cli, "--against", "HEAD~1")
    assert plan["base"]["ref"] == "HEAD~1"
    assert [(c["name"], [i["rule"] for i in c["items"]]) for c in plan["changes"]] == \
        [("driver_stats", ["METADATA_CHANGED"])]


def test_feature_repository_in_a_subdirectory_of_the_checkout(tmp_path: Path, run_cli) -> None:
    checkout = tmp_path / "monorepo"
    repo = copy_example_repo(checkout / "ml" / "rides")
    git_commit_all(checkout, "monorepo")
    add_feature(repo)
    plan = plan_json(run_cli, "--against", "HEAD", cwd=repo)
    assert [c["name"] for c in plan["changes"]] == ["driver_stats"]
    # From elsewhere, with --repo.
    plan = plan_json(run_cli, "--against", "HEAD", "--repo", str(repo), cwd=checkout)
    assert [c["name"] for c in plan["changes"]] == ["driver_stats"]


def test_first_commit_without_featurectl_files_makes_everything_an_add(tmp_path: Path, run_cli) -> None:
    checkout = tmp_path / "project"
    checkout.mkdir()
    (checkout / "README.md").write_text("Before featurectl\n")
    first = git_commit_all(checkout, "initial commit")
    copy_example_repo(checkout / "rides")
    git_commit_all(checkout, "add the feature repository")

    plan = plan_json(run_cli, "--against", first, cwd=checkout / "rides")
    assert plan["valid"] is True and plan["base"] == {"kind": "git", "ref": first}
    assert {c["action"] for c in plan["changes"]} == {"add"}
    assert plan["summary"] == {"add": 9, "update": 0, "remove": 0, "unchanged": 0, "violations": 0, "warnings": 0}
    assert not (checkout / "rides" / REGISTRY).exists()


def test_no_changes_against_a_git_ref_speaks_of_the_ref(committed: Path, run_cli) -> None:
    text = ok(run_cli("plan", "--against", "HEAD")).stdout
    assert "No changes. The definitions match git ref HEAD." in text
    assert "registry" not in text
