"""SPEC §7 on the loading/CLI side, through the real CLI: definition files that exit or raise,
--debug, mistyped --repo, unwritable outputs, definitions outside the repository, duplicate
YAML keys. Each case is a failure a user met (issue 7) and failed before its fix."""
from __future__ import annotations

import json
import re
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


def test_every_command_is_listed_and_suggested_while_only_the_invoked_one_is_built(example_repo: Path,
                                                                                   tmp_path: Path) -> None:
    """The CLI builds only the command it runs (start-up cost); help, a mistyped name and the
    global options before a command behave as with every command built."""
    listed = run_featurectl("--help", cwd=tmp_path)
    assert listed.code == 0
    for name in ("init", "plan", "apply", "materialize", "materialize-incremental", "get-online", "list", "serve"):
        assert re.search(rf"^\s+{name}\s", listed.stdout, re.MULTILINE), (name, listed.stdout)
    mistyped = run_featurectl("--repo", example_repo, "--debug", "get-onlin", cwd=tmp_path)
    assert mistyped.code == 2 and "Did you mean 'get-online'" in mistyped.output, mistyped.output
    assert run_featurectl("--repo", example_repo, "apply", cwd=tmp_path).code == 0
    read = run_featurectl("--debug", f"--repo={example_repo}", "get-online", "--features", "driver_stats:conv_rate",
                          "-e", "driver_id=1001", cwd=tmp_path)
    assert read.code == 0 and '"conv_rate"' in read.stdout, read.output
    unknown = run_featurectl("--repo", example_repo, "get-online", "--no-such-flag", cwd=tmp_path)
    assert unknown.code == 2 and "No such option" in unknown.output, unknown.output


def test_version(run_cli) -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"featurectl {version('featurectl')}"


UNWRITABLE = {"missing_directory": "no/such/dir/out", "a_directory": "features"}


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_an_unwritable_plan_out_is_exit_2_naming_it_before_the_plan(case: str, example_repo: Path, run_cli) -> None:
    target = UNWRITABLE[case] + (".json" if case != "a_directory" else "")
    result = run_cli("plan", "--out", target)
    refused(result, 2, "--out", target)
    assert "Plan:" not in result.stdout, "the plan was made and shown before the output was found unwritable"


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_an_unwritable_historical_output_is_exit_2_naming_it(case: str, example_repo: Path, run_cli) -> None:
    assert run_cli("apply").code == 0
    target = UNWRITABLE[case] + (".parquet" if case != "a_directory" else "")
    result = run_cli("get-historical", "--entities", "data/training_entities.csv",
                     "--features", "driver_stats:conv_rate", "--output", target)
    refused(result, 2, "--output", target)


def test_plan_out_replaces_the_file_whole(example_repo: Path, run_cli) -> None:
    (example_repo / "plan.json").write_text("old")
    assert run_cli("plan", "--out", "plan.json").code == 0
    assert json.loads((example_repo / "plan.json").read_text())["format_version"]
    assert [p.name for p in example_repo.iterdir() if "partial" in p.name] == []


OUTSIDE_PATTERNS = {
    "absolute": '["/tmp/*.py"]',
    "parent": '["../outside/*.py"]',
    "parent_in_the_middle": '["features/../../outside/*.py"]',
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_PATTERNS))
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_definitions_pattern_outside_the_repository_is_refused_before_running_anything(
        case: str, command: str, example_repo: Path, tmp_path: Path, run_cli) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = tmp_path / "ran"
    (outside / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    replace("featurectl.yaml", 'definitions: ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]',
            f"definitions: {OUTSIDE_PATTERNS[case]}")(example_repo)
    refused(run_cli(command), 2, "featurectl.yaml", "definitions")
    assert not marker.exists(), "a Python file outside the repository was run"


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_definition_file_symlinked_outside_the_repository_is_refused_before_running_anything(
        command: str, example_repo: Path, tmp_path: Path, run_cli) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (example_repo / "features" / "linked.py").symlink_to(tmp_path / "evil.py")
    refused(run_cli(command), 2, "features/linked.py", "outside the repository")
    assert not marker.exists(), "a Python file outside the repository was run"


def test_a_symlink_inside_the_repository_is_fine(example_repo: Path, run_cli) -> None:
    (example_repo / "shared").mkdir()
    (example_repo / "features" / "customers.py").rename(example_repo / "shared" / "customers.py")
    (example_repo / "features" / "customers.py").symlink_to(example_repo / "shared" / "customers.py")
    assert run_cli("validate").code == 0


DUPLICATE_KEYS = {
    "top_level": ("features/drivers.yaml", lambda text: text + "\nfeature_views: []\n", "feature_views"),
    "in_a_view": ("features/drivers.yaml", lambda text: text.replace("    ttl: 1d\n", "    ttl: 1d\n    ttl: 2d\n", 1),
                  "ttl"),
    "in_a_flow_mapping": ("features/drivers.yaml",
                          lambda text: text.replace("{name: acc_rate, dtype: float32",
                                                    "{name: acc_rate, dtype: float64, dtype: float32", 1), "dtype"),
    "in_the_config": ("featurectl.yaml", lambda text: text + "project: other\n", "project"),
}


@pytest.mark.parametrize("case", sorted(DUPLICATE_KEYS))
def test_a_duplicate_yaml_key_is_exit_2_naming_file_line_and_key(case: str, example_repo: Path, run_cli) -> None:
    file, edit, key = DUPLICATE_KEYS[case]
    text = (example_repo / file).read_text()
    (example_repo / file).write_text(edit(text))
    result = run_cli("validate")
    refused(result, 2, file, f"duplicate key '{key}'")
    assert re.search(rf"{re.escape(file)}:\d+", result.stderr), result.stderr


def test_yaml_merge_keys_are_not_duplicates(example_repo: Path, run_cli) -> None:
    (example_repo / "features" / "more.yaml").write_text(
        "entities:\n  - &base {name: rider, join_key: rider_id, dtype: int64}\n"
        "  - <<: *base\n    name: passenger\n    join_key: passenger_id\n")
    assert run_cli("validate").code == 0


@pytest.mark.parametrize("definitions, warned", [
    ('["feature/**/*.yaml"]', "feature/**/*.yaml"),                              # a typo: nothing at all
    ('["features/**/*.yaml", "features/**/*.py", "featurs/*.py"]', "featurs/*.py"),   # one pattern of several
])
def test_a_definitions_pattern_matching_nothing_warns(definitions: str, warned: str, example_repo: Path,
                                                      run_cli) -> None:
    replace("featurectl.yaml", 'definitions: ["features/**/*.yaml", "features/**/*.yml", "features/**/*.py"]',
            f"definitions: {definitions}")(example_repo)
    result = run_cli("validate")
    assert result.code == 0 and "Traceback" not in result.output
    assert "warning:" in result.stderr and warned in result.stderr, result.stderr


def test_the_default_patterns_do_not_warn_when_one_matches_nothing(run_cli) -> None:
    result = run_cli("validate")  # example_repo has no .yml file
    assert result.code == 0 and result.stderr == ""


REGISTRY_BLOCK = "registry: {type: sqlite, path: .featurectl/registry.db}"


def test_an_env_default_is_used_when_the_variable_is_unset(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", REGISTRY_BLOCK,
            "registry: {type: sqlite, path: '${FEATURECTL_UNSET_DIR:-state}/registry.db'}")(example_repo)
    assert run_cli("apply").code == 0
    assert (example_repo / "state" / "registry.db").is_file()
    assert not any("FEATURECTL_UNSET_DIR" in p.name or "$" in p.name for p in example_repo.iterdir())
    elsewhere = run_cli("list", env={"FEATURECTL_UNSET_DIR": "other"})
    assert elsewhere.code == 0 and (example_repo / "other" / "registry.db").is_file()


def test_a_dollar_in_an_env_value_is_not_expanded_again(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", REGISTRY_BLOCK, "registry: {type: sqlite, path: '${FEATURECTL_DIR}/registry.db'}")(
        example_repo)
    assert run_cli("apply", env={"FEATURECTL_DIR": "a$b"}).code == 0
    assert (example_repo / "a$b" / "registry.db").is_file()


def test_a_double_dollar_is_a_literal_dollar(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", REGISTRY_BLOCK, "registry: {type: sqlite, path: 'cost$$/registry.db'}")(example_repo)
    assert run_cli("apply").code == 0
    assert (example_repo / "cost$" / "registry.db").is_file()


@pytest.mark.parametrize("written", ["$HOME/registry.db", "${HOME/registry.db", "${1}/registry.db",
                                     "${HOME-x}/registry.db", "state/$/registry.db"])
@pytest.mark.parametrize("command", ["validate", "apply"])
def test_other_dollar_forms_are_refused_clearly(written: str, command: str, example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", REGISTRY_BLOCK, f"registry: {{type: sqlite, path: '{written}'}}")(example_repo)
    refused(run_cli(command), 2, "featurectl.yaml", "registry", "${NAME}", "$$")
    assert [p.name for p in example_repo.iterdir() if "$" in p.name or "HOME" in p.name] == []


def test_a_dollar_form_outside_store_blocks_is_quoted(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", "definitions: [", 'definitions: ["$DEFS/*.yaml", ')(example_repo)
    refused(run_cli("validate"), 2, "featurectl.yaml", "'$DEFS'")


def test_an_unset_variable_of_a_store_block_stops_only_commands_that_open_the_store(example_repo: Path,
                                                                                   run_cli) -> None:
    replace("featurectl.yaml", REGISTRY_BLOCK,
            "registry: {type: sqlite, path: '${FEATURECTL_SURELY_UNSET_VAR}/registry.db'}")(example_repo)
    assert run_cli("validate").code == 0
    refused(run_cli("plan"), 2, "featurectl.yaml", "registry", "FEATURECTL_SURELY_UNSET_VAR")


def test_init_into_a_directory_that_cannot_be_created_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    refused(run_featurectl("init", "rides", "--dir", tmp_path / "a_file" / "below", cwd=tmp_path), 2,
            "a_file", "--dir")


def test_debug_before_the_command(example_repo: Path, run_cli) -> None:
    append(PYTHON_DEFS, "\nraise RuntimeError('definitions exploded')\n")(example_repo)
    result = run_cli("--debug", "validate")
    assert result.code == 2 and "Traceback" in result.stderr and "definitions exploded" in result.stderr


def test_serve_help_names_every_setting_a_user_may_set_in_the_environment(run_cli) -> None:
    from featurectl.server import environment

    text = " ".join(run_cli("serve", "--help").stdout.split())
    internal = {environment.REPO_ENV, environment.LOG_ENV, environment.LOG_SOCKET_ENV}  # set by serve itself
    settings = {value for name, value in vars(environment).items() if name.endswith("_ENV")} - internal
    assert settings and all(name in text for name in settings), (sorted(settings), text)
