"""Bad input to the newer commands (serve, drift, profile, freshness, docs, lineage,
get-historical) through the real CLI: the SPEC §7 exit code, a message naming the input and
the fix, no traceback, and nothing half-written. Each case is one that once went wrong."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.test_cli_errors import closed_port, refused, replace

DRIVER_DATA = "data/driver_stats.parquet"
CONV = "driver_stats:conv_rate"


@pytest.fixture
def applied(example_repo: Path, run_cli) -> Path:
    assert run_cli("apply").code == 0
    return example_repo


def all_null_trips(repo: Path, path: Path) -> Path:
    """The example's driver data with avg_daily_trips null in every row."""
    table = pq.read_table(repo / DRIVER_DATA)
    index = table.schema.get_field_index("avg_daily_trips")
    pq.write_table(table.set_column(index, "avg_daily_trips", pa.nulls(table.num_rows, pa.int64())), path)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- drift and profile --------------------------------------------------------------------

def test_a_numeric_column_without_values_is_profiled_and_compared(applied: Path, run_cli, tmp_path: Path) -> None:
    """It was `unexpected InvalidInputException` (exit 3): an unused query parameter."""
    empty = all_null_trips(applied, tmp_path / "no_trips.parquet")
    result = run_cli("drift", "--reference", empty, "--current", DRIVER_DATA, "--format", "json")
    assert result.code == 1, result.output  # every value appeared: drift
    trips = next(r for r in json.loads(result.stdout) if r["feature"] == "avg_daily_trips")
    assert trips["null_rate_reference"] == 1.0 and trips["null_rate_current"] == 0.0
    assert trips["status"] == "drift" and trips["ks_statistic"] is None
    profile = tmp_path / "no_trips.profile.json"
    assert run_cli("profile", empty, "--out", profile).code == 0
    assert run_cli("drift", "--reference", profile, "--current", empty).code == 0


@pytest.mark.parametrize("where", ["directory", "missing_parent", "parent_is_a_file"])
def test_profile_out_is_checked_before_the_dataset_is_read(where: str, applied: Path, run_cli, tmp_path: Path) -> None:
    out = {"directory": tmp_path / "taken.profile.json",
           "missing_parent": tmp_path / "no" / "such" / "x.profile.json",
           "parent_is_a_file": tmp_path / "file" / "x.profile.json"}[where]
    if where == "directory":
        out.mkdir()
    if where == "parent_is_a_file":
        out.parent.write_text("a file")
    # The dataset does not exist either: the --out problem is found first, before any work.
    refused(run_cli("profile", "nope.parquet", "--out", out), 2, "--out", str(out))


def test_a_failed_profile_leaves_no_file(applied: Path, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out" / "bad.profile.json"
    out.parent.mkdir()
    (tmp_path / "strings.parquet").write_bytes(b"PAR1 not really")
    refused(run_cli("profile", tmp_path / "strings.parquet", "--out", out), 2, "strings.parquet")
    assert listing(out.parent) == []


def test_an_empty_profile_dataset_is_not_called_a_drift_side(applied: Path, run_cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(applied / DRIVER_DATA).slice(0, 0), empty)
    result = run_cli("profile", empty, "--out", tmp_path / "e.profile.json")
    refused(result, 2, "empty.parquet", "0 rows")
    assert "both sides" not in result.stderr


def test_a_missing_window_source_is_one_sentence_then_nothing_written(applied: Path, run_cli) -> None:
    (applied / DRIVER_DATA).rename(applied / "data" / "moved.parquet")
    result = run_cli("drift", "--reference", "window:2020-01-01/now", "--current", "data/moved.parquet",
                     "--features", CONV)
    refused(result, 2, "driver_hourly", "data/driver_stats.parquet", ". Nothing was written.")
    assert ") Nothing" not in result.stderr


def test_drift_tables_keep_feature_names_whole_on_a_narrow_terminal(applied: Path, run_cli) -> None:
    result = run_cli("drift", "--reference", DRIVER_DATA, "--current", DRIVER_DATA, env={"COLUMNS": "60"})
    assert result.code == 0, result.output
    for name in ("avg_daily_trips", "vehicle_type", "categorical"):
        assert name in result.stdout, result.stdout
    assert "…" not in result.stdout


# --- freshness ----------------------------------------------------------------------------

def test_freshness_of_an_unreachable_store_is_unknown_and_exit_3(applied: Path, run_cli) -> None:
    replace("featurectl.yaml", "online_store: {type: sqlite, path: .featurectl/online.db}",
            f"online_store: {{type: redis, url: 'redis://127.0.0.1:{closed_port()}/0'}}")(applied)
    for fmt in ("text", "json", "prometheus"):
        result = run_cli("freshness", "--format", fmt)
        refused(result, 3, "online_store.url", "freshness unknown")
        assert result.stdout == "", "nothing may be reported, least of all as fresh"


def test_freshness_names_the_bad_time_and_view(applied: Path, run_cli) -> None:
    refused(run_cli("freshness", "--now", "yesterday"), 2, "yesterday", "ISO 8601")
    refused(run_cli("freshness", "--views", "driver_stat"), 2, "driver_stat", "driver_stats")


# --- lineage ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("driver_stat", ["'driver_stat'", "did you mean 'driver_stats'"]),
    ("feature_view:drivers_stats", ["feature view named 'drivers_stats'", "did you mean 'driver_stats'"]),
    ("featureview:driver_stats", ["unknown kind 'featureview'", "did you mean 'feature_view'", "feature_service"]),
])
def test_lineage_of_a_mistyped_name_suggests_the_nearest(name: str, expected: list[str], applied: Path,
                                                         run_cli) -> None:
    refused(run_cli("lineage", name), 2, *expected)


def test_lineage_of_a_name_on_an_empty_registry_is_only_an_error(run_cli) -> None:
    result = run_cli("lineage", "driver_stats")
    refused(result, 2, "driver_stats", "featurectl apply")
    assert result.stdout == ""


# --- docs ---------------------------------------------------------------------------------

def test_docs_out_that_is_a_file_is_named_as_such(applied: Path, run_cli, tmp_path: Path) -> None:
    blocker = tmp_path / "site"
    blocker.write_text("a file")
    refused(run_cli("docs", "--out", blocker), 2, f"--out {blocker} is a file, not a directory")
    assert blocker.read_text() == "a file"


def test_docs_never_writes_into_a_directory_of_other_files(applied: Path, run_cli, tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.md").write_text("mine")
    refused(run_cli("docs", "--out", mine), 2, str(mine), "catalog.json")
    assert listing(mine) == ["todo.md"]


def test_docs_replaces_an_earlier_site_whole(applied: Path, run_cli, tmp_path: Path) -> None:
    site = tmp_path / "out" / "site"
    assert run_cli("docs", "--out", site).code == 0
    (site / "feature_view" / "gone_since.html").write_text("a page of an object removed since")
    assert run_cli("docs", "--out", site).code == 0
    assert not (site / "feature_view" / "gone_since.html").exists()
    assert (site / "index.html").is_file() and (site / "catalog.json").is_file()
    assert [p.name for p in site.parent.iterdir()] == ["site"], "no build directory is left beside it"


# --- get-historical -----------------------------------------------------------------------

def test_get_historical_output_of_an_unknown_type_is_refused_before_the_join(applied: Path, run_cli,
                                                                             tmp_path: Path) -> None:
    """The entity file does not exist: the --output problem must be the one reported."""
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("get-historical", "--entities", "nope.csv", "--features", CONV, "--output", out / "train.json")
    refused(result, 2, "--output", "train.json", ".parquet or .csv")
    assert list(out.iterdir()) == []


def test_a_mistyped_feature_suggests_the_nearest(applied: Path, run_cli) -> None:
    refused(run_cli("get-online", "--features", "driver_stats:conv_rat", "-e", "driver_id=1001"), 2,
            "conv_rat", "did you mean 'conv_rate'")


# --- serve --------------------------------------------------------------------------------

def test_serve_on_a_port_in_use_is_exit_2_before_announcing(applied: Path, run_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", "1", timeout=60)
    refused(result, 2, f"--port {port}", "already in use", "free --port")
    assert '"serving"' not in result.stdout


@pytest.mark.parametrize("host, expected", [("nosuchhost.invalid", "resolves"),
                                            ("192.0.2.1", "not an address of this machine")])
def test_serve_on_a_bad_host_is_exit_2(host: str, expected: str, applied: Path, run_cli) -> None:
    result = run_cli("serve", "--host", host, "--port", str(closed_port()), "--workers", "1", timeout=60)
    refused(result, 2, f"--host {host}", expected, "0.0.0.0")
    assert '"serving"' not in result.stdout


NEWER = ["serve", "drift", "profile", "freshness", "docs", "lineage", "prune", "get-online"]


@pytest.mark.parametrize("name", NEWER)
def test_help_describes_every_option_and_argument(name: str) -> None:
    import typer.main

    from featurectl.cli import main

    main._register_commands()
    command = typer.main.get_command(main.app).commands[name]  # type: ignore[attr-defined]
    undescribed = [p.name for p in command.params if not (getattr(p, "help", None) or "").strip()]
    assert not undescribed, f"featurectl {name} --help says nothing of {undescribed}"
    if name not in ("prune", "get-online"):
        assert "Example" in (command.help or ""), f"featurectl {name} --help shows no example"


def test_the_table_of_command_modules_names_every_command_where_it_is_defined() -> None:
    """A run imports only its command's module (cli.main.COMMAND_MODULES), so the table must
    say truly where each command lives, and list every one."""
    import typer.main

    from featurectl.cli import main

    main._register_commands()
    defined = {(c.name or typer.main.get_command_name(c.callback.__name__), c.callback.__module__)  # type: ignore[union-attr]
               for c in main.app.registered_commands}
    table = {(name, f"featurectl.cli.{module}") for module, names in main.COMMAND_MODULES.items() for name in names}
    assert defined == table


def test_cli_children_import_the_featurectl_under_test(tmp_path):
    """A child started with the fixtures' environment imports the same featurectl as this test
    process: from a second worktree the venv's editable install would hand it another
    checkout's code (this session's first worktree suite runs drove main's server that way)."""
    import featurectl
    from tests.fixtures.repos import cli_env

    result = subprocess.run([sys.executable, "-c", "import featurectl; print(featurectl.__file__)"],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == Path(featurectl.__file__).resolve()
