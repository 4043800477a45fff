"""Bad input through the real CLI: exit 2, a message naming the file and field, no traceback.
An unreachable store is exit 3; --debug lets the traceback through."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.repos import ANSI, CliResult

DRIVERS = "features/drivers.yaml"


def replace(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        text = (repo / path).read_text()
        assert old in text, f"{old!r} not in {path}: the example repository changed, update this test"
        (repo / path).write_text(text.replace(old, new, 1))
    return edit


def append(path: str, text: str) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        with open(repo / path, "a") as f:
            f.write(text)
    return edit


def delete(path: str) -> Callable[[Path], None]:
    return lambda repo: (repo / path).unlink()


def refused(result: CliResult, code: int, *expected: str) -> None:
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output, result.output
    assert not ANSI.search(result.output)
    assert "error:" in result.stderr
    for text in expected:
        assert text in result.stderr, f"{text!r} not in the message:\n{result.stderr}"


DEFINITION_ERRORS = {
    "malformed_yaml": (append(DRIVERS, "feature_views: [a, b\n"), [DRIVERS, "YAML"]),
    "unknown_reference": (replace(DRIVERS, "entities: [driver]", "entities: [drivr]"),
                          [DRIVERS, "driver_stats", "'entities'", "drivr", "DANGLING_REFERENCE"]),
    "unknown_service_reference": (replace(DRIVERS, '"driver_stats:conv_rate"', '"driver_stats:conversion"'),
                                  [DRIVERS, "driver_ranking", "conversion"]),
    "duplicate_across_files": (
        lambda repo: (repo / "features/more.yaml").write_text(
            "entities:\n  - {name: driver, join_key: driver_id, dtype: int64}\n"),
        ["features/more.yaml", "features/entities.yaml", "duplicate", "driver"]),
    "duplicate_yaml_and_python": (
        append("features/customers.py", "\nagain = FileSource(name='driver_hourly', path='x.csv', timestamp_field='t')\n"),
        ["features/customers.py", DRIVERS, "driver_hourly"]),
    "bad_version": (replace(DRIVERS, "version: 1.0.0\n    entities", "version: 1.0\n    entities"),
                    [DRIVERS, "driver_stats", "'version'", "1.0"]),
    "unknown_dtype": (replace(DRIVERS, "{name: acc_rate, dtype: float32", "{name: acc_rate, dtype: float16"),
                      [DRIVERS, "driver_stats", "acc_rate", "dtype", "float16"]),
    "bad_duration": (replace(DRIVERS, "ttl: 1d", "ttl: 1 day"), [DRIVERS, "driver_stats", "'ttl'", "1 day"]),
    "bad_duration_in_python": (replace("features/customers.py", 'ttl="7d"', 'ttl="seven days"'),
                               ["features/customers.py", "customer_profile", "ttl", "seven days"]),
    "missing_required_field": (replace(DRIVERS, "    owner: rides-ml@example.com\n    description: Hourly",
                                       "    description: Hourly"), [DRIVERS, "driver_stats", "owner"]),
    "python_file_raises": (append("features/customers.py", "\nraise RuntimeError('definitions exploded')\n"),
                           ["features/customers.py", "RuntimeError", "definitions exploded"]),
    "python_syntax_error": (append("features/customers.py", "\ndef broken(:\n"), ["features/customers.py"]),
    "missing_config": (delete("featurectl.yaml"), ["featurectl.yaml", "featurectl init"]),
    "unknown_online_store_type": (
        replace("featurectl.yaml", "online_store: {type: sqlite", "online_store: {type: memcached"),
        ["featurectl.yaml", "online_store", "memcached"]),
    "bad_project_name": (replace("featurectl.yaml", "project: rides", "project: Rides-2"),
                         ["featurectl.yaml", "project"]),
    # Not in a store block: validate needs no store's variables (see test_cli_hardening).
    "unset_env_variable": (replace("featurectl.yaml", 'definitions: ["features/**/*.yaml"',
                                   'definitions: ["${FEATURECTL_SURELY_UNSET_VAR}/*.yaml"'),
                           ["featurectl.yaml", "FEATURECTL_SURELY_UNSET_VAR"]),
}


@pytest.mark.parametrize("case", sorted(DEFINITION_ERRORS))
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_bad_definitions_and_config_exit_2_naming_file_and_field(case: str, command: str, example_repo: Path,
                                                                 run_cli) -> None:
    edit, expected = DEFINITION_ERRORS[case]
    edit(example_repo)
    refused(run_cli(command), 2, *expected)
    assert not (example_repo / ".featurectl" / "registry.db").exists(), "bad input must not create a registry"


@pytest.fixture
def applied(example_repo: Path, run_cli) -> Path:
    assert run_cli("apply").code == 0
    return example_repo


RUNTIME_USAGE_ERRORS = {
    "unknown_feature": (["get-online", "--features", "driver_stats:nope", "-e", "driver_id=1001"],
                        ["nope", "driver_stats", "conv_rate"]),
    "unknown_view_in_reference": (["get-online", "--features", "nope:conv_rate", "-e", "driver_id=1001"],
                                  ["nope", "driver_stats"]),
    "malformed_reference": (["get-online", "--features", "driver_stats", "-e", "driver_id=1001"],
                            ["driver_stats"]),
    "entity_value_of_wrong_type": (["get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=abc"],
                                   ["driver_id", "abc"]),
    "malformed_entity": (["get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id"],
                         ["driver_id", "KEY=VALUE"]),
    "unknown_view_to_materialize": (["materialize", "2026-01-01", "now", "--views", "driver_stats,nope"],
                                    ["nope", "driver_stats"]),
    "unknown_view_to_materialize_incrementally": (["materialize-incremental", "now", "--views", "nope"], ["nope"]),
    "bad_timestamp": (["materialize", "2024-13-01", "now"], ["2024-13-01", "ISO 8601"]),
    "words_for_a_timestamp": (["materialize-incremental", "yesterday"], ["yesterday", "ISO 8601"]),
    "start_after_end": (["materialize", "2026-02-01", "2026-01-01"], ["START", "END"]),
    "unknown_show": (["show", "no_such_view"], ["no_such_view"]),
    "missing_plan_file": (["apply", "no_such_plan.json"], ["no_such_plan.json"]),
    "missing_entities_file": (["get-historical", "--entities", "nope.csv", "--features", "driver_stats:conv_rate",
                               "--output", "out.parquet"], ["nope.csv"]),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_USAGE_ERRORS))
def test_unknown_names_and_bad_arguments_exit_2(case: str, applied: Path, run_cli) -> None:
    args, expected = RUNTIME_USAGE_ERRORS[case]
    refused(run_cli(*args), 2, *expected)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["plan"], ["apply"], ["list"], ["history"]])
def test_unreachable_registry_exits_3_with_a_clear_message(command: list[str], example_repo: Path, run_cli) -> None:
    dsn = f"postgresql://featurectl:s3cret@127.0.0.1:{closed_port()}/registry?connect_timeout=3"
    replace("featurectl.yaml", "registry: {type: sqlite, path: .featurectl/registry.db}",
            f'registry: {{type: postgres, dsn: "{dsn}"}}')(example_repo)
    result = run_cli(*command)
    refused(result, 3, "PostgreSQL registry", "127.0.0.1", "registry.dsn")
    assert "s3cret" not in result.output, "the DSN's password leaked into the message"


def test_validate_needs_no_registry(example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", "registry: {type: sqlite, path: .featurectl/registry.db}",
            f'registry: {{type: postgres, dsn: "postgresql://x@127.0.0.1:{closed_port()}/r"}}')(example_repo)
    assert run_cli("validate").code == 0


def test_debug_shows_the_traceback(example_repo: Path, run_cli) -> None:
    append("features/customers.py", "\nraise RuntimeError('definitions exploded')\n")(example_repo)
    plain = run_cli("validate")
    assert plain.code == 2 and "Traceback" not in plain.output
    debug = run_cli("validate", "--debug")
    assert debug.code != 0
    assert "Traceback" in debug.stderr and "definitions exploded" in debug.stderr


def test_unknown_option_is_a_usage_error(run_cli) -> None:
    result = run_cli("plan", "--no-such-option")
    assert result.code == 2 and "Traceback" not in result.output and "--no-such-option" in result.stderr


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_bad_definitions_are_reported_before_the_registry_is_opened(command: str, example_repo: Path, run_cli) -> None:
    replace("featurectl.yaml", "registry: {type: sqlite, path: .featurectl/registry.db}",
            f'registry: {{type: postgres, dsn: "postgresql://x@127.0.0.1:{closed_port()}/r"}}')(example_repo)
    replace(DRIVERS, "ttl: 1d", "ttl: 1 day")(example_repo)
    refused(run_cli(command), 2, DRIVERS, "'ttl'")
