"""`plan` and `validate` never load the data stack: a whole CLI run imports none of duckdb,
pyarrow, psycopg, redis or pyspark (docs/architecture.md: backends are imported on use). Nor do
a SQLite `get-online` and a `materialize-incremental` with nothing new: their whole process
is mostly start-up (docs/benchmarks.md, first-call cost)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.fixtures.repos import cli_env, copy_example_repo, run_featurectl


def run_python(code: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh interpreter with the CLI's environment; it must exit 0."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=60,
                            env=cli_env() if env is None else env)
    assert result.returncode == 0, result.stderr
    return result

DATA_STACK = ("duckdb", "pyarrow", "psycopg", "redis", "hiredis", "pyspark", "py4j")
# PYTHONPROFILEIMPORTTIME (= python -X importtime) writes one stderr line per module imported.
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", re.MULTILINE)


def imported(stderr: str) -> set[str]:
    return set(IMPORT_LINE.findall(stderr))


# validate checks query sources with DuckDB's parser (SPEC §7), so it may load duckdb alone.
@pytest.mark.parametrize("args, allowed", [(("plan",), []), (("plan", "--format", "json"), []),
                                           (("validate",), ["duckdb"])], ids=lambda a: " ".join(a) if a else "")
def test_a_run_imports_no_data_stack_module(tmp_path, args, allowed):
    repo = copy_example_repo(tmp_path / "repo")
    result = run_featurectl(*args, cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    modules = imported(result.stderr)
    assert "featurectl.loading.config" in modules  # the run really was traced
    loaded = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in DATA_STACK})
    assert loaded == allowed


def test_reads_and_an_up_to_date_incremental_run_import_no_data_stack_module(tmp_path):
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    for args in (("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001"),
                 ("materialize-incremental", "2026-01-01T00:00:00")):
        result = run_featurectl(*args, cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert result.code == 0, result.output
        modules = imported(result.stderr)
        assert "featurectl.online.names" in modules  # the online store was opened, and traced
        assert sorted({m.split(".")[0] for m in modules if m.split(".")[0] in DATA_STACK}) == [], args


def test_a_redis_get_online_imports_only_the_redis_client(tmp_path, clean_redis):
    """The Redis store imports pyarrow where it writes: a read needs redis-py and hiredis only."""
    repo = copy_example_repo(tmp_path / "repo")
    config = yaml.safe_load((repo / "featurectl.yaml").read_text())
    config["online_store"] = {"type": "redis", "url": clean_redis}
    (repo / "featurectl.yaml").write_text(yaml.safe_dump(config))
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    result = run_featurectl("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001",
                            "--format", "json", cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    assert '"conv_rate"' in result.output
    modules = imported(result.stderr)
    assert "featurectl.online.encoding" in modules  # the online store was opened, and traced
    loaded = {m.split(".")[0] for m in modules}
    assert sorted(loaded & {*DATA_STACK, "numpy", "pandas"}) == ["hiredis", "redis"]


def test_the_trace_does_see_the_data_stack_when_a_command_loads_it(tmp_path):
    """Guards the checks above against a trace that records nothing: materialize reads the
    offline store, which imports duckdb and pyarrow."""
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    result = run_featurectl("materialize", "2025-01-01T00:00:00", "2026-01-01T00:00:00",
                            cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert {"pyarrow", "duckdb"} <= {m.split(".")[0] for m in imported(result.stderr)}


@pytest.mark.parametrize("args", [("plan",), ("validate",)], ids=lambda a: " ".join(a))
def test_a_spark_repository_plans_and_validates_without_pyspark_or_a_jvm(tmp_path, args):
    """Spark SQL query sources are Spark's to judge, at apply: validate starts no JVM."""
    repo = copy_example_repo(tmp_path / "repo")
    config = repo / "featurectl.yaml"
    config.write_text(config.read_text().replace("offline_store: {type: duckdb}",
                                                 "offline_store: {type: spark, master: 'local[1]'}"))
    assert "spark" in config.read_text()
    result = run_featurectl(*args, cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    assert sorted({m.split(".")[0] for m in imported(result.stderr)} & set(DATA_STACK)) == []


def test_the_cli_freezes_the_collector_before_the_interpreter_shuts_down(tmp_path):
    """Shutdown's collections would traverse every object the imports made (~45 ms of a Redis
    `get-online`, docs/benchmarks.md); atexit handlers still run after the freeze."""
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen:', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['featurectl', 'rules']\n"
            "from featurectl.cli.main import main\n"
            "main()\n")
    result = run_python(code, tmp_path)
    assert result.stdout.rstrip().endswith("frozen: True"), result.stdout[-200:]


def _process_settings(tmp_path, argv: list[str], env: dict[str, str] | None = None) -> dict:
    """What a CLI run leaves set in its own process: the collector's threshold, OpenBLAS's threads."""
    code = ("import atexit, gc, json, os, sys\n"
            "atexit.register(lambda: print(json.dumps({'gen0': gc.get_threshold()[0], "
            "'openblas': os.environ.get('OPENBLAS_NUM_THREADS')})))\n"
            f"sys.argv = ['featurectl', *{argv!r}]\n"
            "from featurectl.cli.main import main\n"
            "main()\n")
    result = run_python(code, tmp_path, env={**cli_env(), **(env or {})})
    return json.loads(result.stdout.rstrip().splitlines()[-1])


def test_a_one_shot_command_collects_less_often_and_starts_openblas_with_one_thread(tmp_path):
    """The collector walked every object the imports made up to three times (~30 ms of a
    get-historical process), and OpenBLAS's spinning threads took a core from DuckDB's
    (docs/benchmarks.md); a server keeps Python's default, a user's OPENBLAS_NUM_THREADS wins."""
    from featurectl.cli.main import ONE_SHOT_GC_THRESHOLD

    assert _process_settings(tmp_path, ["rules"]) == {"gen0": ONE_SHOT_GC_THRESHOLD, "openblas": "1"}
    assert _process_settings(tmp_path, ["rules"], {"OPENBLAS_NUM_THREADS": "4"})["openblas"] == "4"
    assert _process_settings(tmp_path, ["serve", "--help"])["gen0"] == 700


def test_get_historical_from_and_to_parquet_imports_neither_pandas_nor_rich(tmp_path):
    """pandas costs ~0.3 s of a whole get-historical process (docs/benchmarks.md): reading the
    entity file through pyarrow's dataset layer, pa.repeat and pa.array load it. Its one line
    of output is plain text, which needs no rich console (~15 ms of imports)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    entities = tmp_path / "entities.parquet"
    pq.write_table(pcsv.read_csv(repo / "data" / "training_entities.csv"), entities)
    out = tmp_path / "training.parquet"
    result = run_featurectl("get-historical", "--entities", str(entities), "--features", "driver_stats:conv_rate",
                            "--output", str(out), cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    assert pq.read_table(out).num_rows == pq.read_metadata(entities).num_rows
    loaded = {m.split(".")[0] for m in imported(result.stderr)}
    assert {"duckdb", "pyarrow"} <= loaded  # the join really ran, and was traced
    assert "pandas" not in loaded
    assert "rich" not in loaded
    assert f"Wrote {pq.read_metadata(entities).num_rows:,} rows to {out} in " in result.output


# What a JSON `get-online` used to import and never used (docs/benchmarks.md, stream imports):
# the materialization use case and the offline port's classes (an online read builds no
# offline request), the definition-file loader (it reads the registry, not the files), the
# table renderer (JSON output). Each cost its module and its dataclasses' generated methods.
NOT_FOR_AN_ONLINE_READ = ("featurectl.app.materialize", "featurectl.offline.base", "featurectl.loading.files",
                          "featurectl.render.tables")


def test_a_json_get_online_imports_only_what_the_read_uses(tmp_path):
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    result = run_featurectl("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001",
                            cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    assert '"conv_rate"' in result.output
    modules = imported(result.stderr)
    assert {"featurectl.app.retrieval", "featurectl.online.names", "featurectl.render.online"} <= modules  # traced
    assert sorted(modules & set(NOT_FOR_AN_ONLINE_READ)) == []
    table = run_featurectl("get-online", "--features", "driver_stats:conv_rate", "-e", "driver_id=1001",
                           "--format", "table", cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert table.code == 0, table.output
    assert "featurectl.render.tables" in imported(table.stderr)  # loaded where it is used


def test_the_cli_module_loads_no_pydantic_so_its_collector_threshold_covers_the_models(tmp_path):
    """`python -m featurectl` and the `featurectl` script import the package, then the CLI module,
    before main() sets the one-shot collector threshold: when the package imported the definition
    models, pydantic's import and the models' schemas (most of a `get-online`'s allocations) ran
    under Python's threshold of 700 (~2.5% of its instructions in collections). The definition
    classes are still the package's names."""
    code = ("import sys\n"
            "import featurectl.cli.main\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')"
            " or m == 'featurectl.core.model'))\n"
            "import featurectl\n"
            "from featurectl.core import model\n"
            "print(all(getattr(featurectl, n) is getattr(model, n) for n in featurectl.__all__ if n != 'FeatureStore'))\n")
    result = run_python(code, tmp_path)
    assert result.stdout.splitlines() == ["[]", "True"]


def test_an_up_to_date_incremental_run_loads_no_plan_machinery(tmp_path):
    """The exit-code errors only name `Plan` in an annotation: importing them for a run's
    outcome loaded the plan, diff and rule modules and semver (with argparse): ~8% of the
    instructions of a `materialize-incremental` with nothing new (docs/benchmarks.md)."""
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    result = run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo,
                            env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.output
    modules = imported(result.stderr)
    assert "featurectl.app.errors" in modules  # the run's outcome was judged, and traced
    assert sorted(m for m in modules if m.split(".")[0] == "semver" or m.startswith(
        ("featurectl.core.plan", "featurectl.core.diff", "featurectl.core.rules"))) == []


def _plugin_scans(repo, extra: dict[str, str]) -> dict:
    """A whole `get-online` in a child process, with importlib.metadata's entry-point scan
    counted (pydantic's plugin loader binds `entry_points` when it is first imported, after this)."""
    code = ("import atexit, importlib.metadata as md, json, os, sys\n"
            "scans = []\n"
            "scan = md.entry_points\n"
            "md.entry_points = lambda *a, **k: scans.append(k) or scan(*a, **k)\n"
            "atexit.register(lambda: print(json.dumps({'scans': len(scans), "
            "'env': os.environ.get('PYDANTIC_DISABLE_PLUGINS'), "
            "'pydantic': 'pydantic.plugin._loader' in sys.modules})))\n"
            "sys.argv = ['featurectl', 'get-online', '--features', 'driver_stats:conv_rate', '-e', 'driver_id=1001']\n"
            "from featurectl.cli.main import main\n"
            "main()\n")
    result = run_python(code, repo, env={**{k: v for k, v in cli_env().items() if k != "PYDANTIC_DISABLE_PLUGINS"}, **extra})
    assert '"conv_rate"' in result.stdout
    return json.loads(result.stdout.rstrip().splitlines()[-1])


def test_a_one_shot_command_skips_pydantics_entry_point_scan_unless_the_user_sets_plugins(tmp_path):
    """pydantic's plugin loader read every installed distribution's entry points at the first
    model (~17M instructions, ~2% of a `get-online` process, docs/benchmarks.md). The CLI sets
    PYDANTIC_DISABLE_PLUGINS with setdefault: a user's own value (here: disable one plugin by
    name) wins, and pydantic then scans as before."""
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    assert _plugin_scans(repo, {}) == {"scans": 0, "env": "__all__", "pydantic": True}
    assert _plugin_scans(repo, {"PYDANTIC_DISABLE_PLUGINS": "some_plugin"}) == {
        "scans": 1, "env": "some_plugin", "pydantic": True}


def test_a_get_online_builds_no_schema_of_a_definition_model_it_does_not_validate(tmp_path):
    """The definition models defer their schemas to their first validation (`defer_build`): a
    read validates the objects of its registry snapshot, and built the abstract bases (and the
    kinds a repository does not use) for nothing (~4M instructions of the bench repository's
    `get-online`, docs/benchmarks.md). What is validated is as strict as before."""
    repo = copy_example_repo(tmp_path / "repo")
    assert run_featurectl("apply", cwd=repo).code == 0
    assert run_featurectl("materialize-incremental", "2026-01-01T00:00:00", cwd=repo).code == 0
    code = (
        "import atexit, json, sys\n"
        "def report():\n"
        "    from featurectl.core import model\n"
        "    names = ('_Model', '_Source', 'QuerySource', 'FeatureService', 'Entity', 'FileSource', 'FeatureView')\n"
        "    print(json.dumps({n: getattr(model, n).__pydantic_complete__ for n in names}))\n"
        "atexit.register(report)\n"
        "sys.argv = ['featurectl', 'get-online', '--features', 'driver_stats:conv_rate', '-e', 'driver_id=1001']\n"
        "from featurectl.cli.main import main\n"
        "main()\n"
    )
    result = run_python(code, repo)
    assert '"conv_rate"' in result.stdout
    assert json.loads(result.stdout.rstrip().splitlines()[-1]) == {
        "_Model": False, "_Source": False,  # never validated: no schema
        "QuerySource": True, "FeatureService": True, "Entity": True, "FileSource": True, "FeatureView": True}
