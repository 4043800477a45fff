"""The definition and config fuzzer (issue 7): mutated copies of example_repo and of the `init`
template go through `validate` and `plan`. Whatever the input, the user gets an exit code in
{0, 1, 2}, no traceback, and an error that says something.

The CLI runs in-process (typer's CliRunner) so that a few hundred examples take seconds; the
same report-and-exit path as the real process is used, and any exception escaping it fails."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from featurectl.app.scaffold import create
from featurectl.cli import main as cli
from tests.fixtures.repos import copy_example_repo

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["", "0", "1d", "-1d", "1000000d", "1.0", "1.0.0", "int64", "list<int64>", "float16",
                     "${HOME}", "$HOME", "${X:-y}", "driver", "driver_stats:*", "nope:nope", "../x", "/abs",
                     "2026-13-45", "NaN"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8) | st.sampled_from(["name", "dtype", "features", "version", "ttl", "entities"]),
    inner, max_size=3), max_leaves=6)


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found += paths(value, prefix + (key,))
    return found


@st.composite
def mutated(draw, data: Any) -> Any:
    """`data` with a few values replaced, keys dropped or renamed, or types changed."""
    for _ in range(draw(st.integers(1, 3))):
        where = paths(data)
        if not where:
            return draw(values)
        path = draw(st.sampled_from(where))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "drop", "rename", "wrap"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = parent.pop(key)
        else:
            parent[key] = [parent[key]]
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


garbage = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["{", "- - -", ": :", "\t\tx: 1", "a: 1\na: 2", "!!python/object:os.system {}", "&a [*a]",
                     "\x00", "key: [1, 2", "%YAML 9.9\n---", "? [1]\n: 2"]),
)
python_faults = st.sampled_from([
    "raise RuntimeError('boom')", "import sys\nsys.exit()", "import sys\nsys.exit(3)", "raise SystemExit(0)",
    "raise KeyboardInterrupt", "import no_such_module_anywhere", "1/0", "def broken(:", "raise MemoryError",
    "x = FeatureView(name='v', version='1.0.0', entities=['driver'], source='nope', owner='o', features=[])",
    "Entity(name=1, join_key=None, dtype='int64')", "raise GeneratorExit", "\x00",
])


FILES = {"example": ["features/drivers.yaml", "features/entities.yaml", "features/customers.py", "featurectl.yaml"],
         "template": ["features/drivers.yaml", "featurectl.yaml"]}


def fuzzed_repository(data: st.DataObject, root: Path) -> tuple[Path, str]:
    """A copy of example_repo or of the `init` template with one file mutated one way; the
    repository and the file."""
    base = data.draw(st.sampled_from(sorted(FILES)), label="base")
    repo = copy_example_repo(root / "repo") if base == "example" else create("fuzzed", "basic", root)
    file = data.draw(st.sampled_from(FILES[base]), label="file")
    how = data.draw(st.sampled_from(["mutate", "garbage", "python"]), label="how")
    path = repo / file
    if how == "python" or path.suffix == ".py":
        path = path if path.suffix == ".py" else repo / "features" / "fuzzed.py"
        prefix = path.read_text() if path.exists() else "from featurectl import *\n"
        path.write_text(prefix + "\n" + data.draw(python_faults, label="python") + "\n")
    elif how == "garbage":
        text = path.read_text()
        at = data.draw(st.integers(0, len(text)), label="at")
        path.write_text(text[:at] + data.draw(garbage, label="garbage") + text[at:])
    else:
        path.write_text(dump(data.draw(mutated(yaml.safe_load(path.read_text())), label="mutated")))
    return repo, str(path.relative_to(repo))


def assert_reported(result, command: str) -> None:
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command}: {type(result.exception).__name__} escaped: {result.exception}\n{output}")
    assert result.exit_code in (0, 1, 2), f"{command}: exit {result.exit_code}\n{output}"
    assert "Traceback" not in output and "error: unexpected" not in output, output
    if result.exit_code == 0:  # a success says so: a definition file calling sys.exit() once faked one
        assert result.stdout.strip(), f"{command}: exit 0 with no output\n{output}"
    if result.exit_code != 0:
        messages = [line.split("error:", 1)[1].strip(" :") for line in result.stderr.splitlines() if "error:" in line]
        assert messages and all(messages), f"{command}: exit {result.exit_code} with no message:\n{output}"


@FUZZ
@given(data=st.data())
def test_mutated_definitions_and_config_never_crash(data: st.DataObject) -> None:
    cli._register_commands()
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        repo, file = fuzzed_repository(data, Path(tmp))
        assert_reported(runner.invoke(cli.app, ["validate", "--repo", str(repo)]), "validate")
        # plan opens the registry the config names: only with the config left as it was,
        # so a mutated path never makes the fuzzer write outside its directory.
        if file != "featurectl.yaml":
            assert_reported(runner.invoke(cli.app, ["plan", "--repo", str(repo)]), "plan")
