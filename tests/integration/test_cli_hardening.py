"""SPEC §7 on the loading/CLI side, through the real CLI: definition files that exit or raise,
--debug, mistyped --repo, unwritable outputs, definitions outside the repository, duplicate
YAML keys. Each case is a failure a user met (issue 7) and failed before its fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.repos import run_featurectl
from tests.integration.test_cli_errors import append, refused, replace

PYTHON_DEFS = "features/customers.py"

# A definition file that ends the process its own way must not pass for a successful run.
EXITING_FILES = {
    "sys_exit": ("import sys\nsys.exit()\n", "SystemExit"),
    "sys_exit_0": ("import sys\nsys.exit(0)\n", "SystemExit"),
    "raise_system_exit_3": ("raise SystemExit(3)\n", "SystemExit"),
    "keyboard_interrupt": ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    "os_error": ("open('/no/such/file/anywhere')\n", "FileNotFoundError"),
}


@pytest.mark.parametrize("case", sorted(EXITING_FILES))
@pytest.mark.parametrize("command", [["validate"], ["plan", "--detailed-exitcode"], ["apply"]])
def test_a_definition_file_that_exits_or_raises_is_exit_2_naming_it(case: str, command: list[str],
                                                                     example_repo: Path, run_cli) -> None:
    source, raised = EXITING_FILES[case]
    append(PYTHON_DEFS, "\n" + source)(example_repo)
    refused(run_cli(*command), 2, PYTHON_DEFS, raised)
    assert not (example_repo / ".featurectl" / "registry.db").exists()


@pytest.mark.parametrize("command, code", [
    (["validate"], 2),                                                    # a definition error
    (["get-online", "--features", "nope:x", "-e", "driver_id=1"], 2),     # a usage error
])
def test_debug_keeps_the_exit_code_and_adds_the_traceback(command: list[str], code: int,
                                                          example_repo: Path, run_cli) -> None:
    if command == ["validate"]:
        append(PYTHON_DEFS, "\nraise RuntimeError('definitions exploded')\n")(example_repo)
    else:
        assert run_cli("apply").code == 0
    plain = run_cli(*command)
    debug = run_cli(*command, "--debug")
    assert plain.code == debug.code == code, debug.output
    assert "Traceback" not in plain.output and "Traceback" in debug.stderr
    assert "error:" in debug.stderr, "--debug adds the traceback to the message, it does not replace it"


def test_debug_keeps_exit_3_of_a_failed_store(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", "registry: {type: sqlite, path: .featurectl/registry.db}",
            "registry: {type: sqlite, path: .featurectl}")(example_repo)  # a directory, not a database
    (example_repo / ".featurectl").mkdir()
    plain, debug = run_cli("list"), run_cli("list", "--debug")
    assert plain.code == debug.code == 3, debug.output
    assert "Traceback" in debug.stderr and "Traceback" not in plain.output


@pytest.mark.parametrize("where", ["rides/typo/does/not/exist", "features", "features/drivers.yaml"])
@pytest.mark.parametrize("before_command", [False, True])
def test_a_repo_path_without_featurectl_yaml_is_exit_2_with_no_fall_back(where: str, before_command: bool,
                                                                          example_repo: Path, run_cli) -> None:
    assert run_cli("apply").code == 0  # the enclosing repository has objects a fall-back would list
    args = ["--repo", where, "list"] if before_command else ["list", "--repo", where]
    result = run_cli(*args)
    refused(result, 2, where, "featurectl.yaml")
    assert "driver_stats" not in result.output


def test_without_repo_the_nearest_parent_repository_is_used(example_repo: Path, run_cli) -> None:
    assert run_cli("apply").code == 0
    result = run_cli("list", cwd=example_repo / "features")
    assert result.code == 0 and "driver_stats" in result.stdout


def test_repo_before_the_command(example_repo: Path, tmp_path: Path) -> None:
    assert run_featurectl("--repo", example_repo, "apply", cwd=tmp_path).code == 0
    result = run_featurectl("--repo", example_repo, "list", cwd=tmp_path)
    assert result.code == 0 and "driver_stats" in result.stdout, result.output


def test_the_sdk_refuses_a_path_without_featurectl_yaml(example_repo: Path) -> None:
    from featurectl import FeatureStore
    from featurectl.core.errors import DefinitionError

    with pytest.raises(DefinitionError, match="featurectl.yaml"):
        FeatureStore(example_repo / "features")
    with pytest.raises(DefinitionError, match="does not exist"):
        FeatureStore(example_repo / "no" / "such" / "dir")
    assert FeatureStore(example_repo).project == "rides"


def test_help_shows_what_was_written(run_cli) -> None:
    init = run_cli("init", "--help")
    assert init.code == 0 and "[a-z][a-z0-9_]*" in init.stdout, init.stdout
    for command in ("plan", "apply", "get-online", "init"):
        text = run_cli(command, "--help").stdout
        assert "<bool>" not in text, text
    apply_usage = run_cli("apply", "--help").stdout
    assert "[PLAN.json]" in apply_usage and "[[PLAN.json]]" not in apply_usage, apply_usage


def test_version(run_cli) -> None:
    from featurectl import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"featurectl {__version__}"
