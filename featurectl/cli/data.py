"""Data commands: materialize, materialize-incremental, get-online, get-historical."""
from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli import outfiles, output
from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, split_list, store
from featurectl.core.errors import UsageError

ViewsOpt = Annotated[Optional[str], typer.Option("--views", help="Comma-separated feature views (default: every online view).")]
FeaturesOpt = Annotated[Optional[str], typer.Option(
    "--features", help="Comma-separated references: view:feature or view:*.")]
ServiceOpt = Annotated[Optional[str], typer.Option("--service", help="A feature service whose features to read.")]
FullNamesOpt = Annotated[bool, typer.Option("--full-feature-names", help="Name feature columns view__feature.")]


def _finish(runs) -> int:
    from featurectl.app.errors import MaterializationFailed

    invalid = [r for r in runs if r.status == "invalid"]
    failed = [r for r in runs if r.status == "failed"]
    for run in invalid:
        _report_invalid(run)
    if failed or invalid:
        parts = []
        if invalid:
            parts.append(f"invalid data in {', '.join(r.view for r in invalid)}: nothing of it was written")
        if failed:
            # Batches written before the failure stay: each entity holds its old or its new value.
            parts.append(f"a store failed for {', '.join(r.view for r in failed)}: some entities may already "
                         "hold the new values; rerun the same command to complete")
        raise MaterializationFailed(f"materialization failed ({'; '.join(parts)}); watermarks did not move",
                                    runs, store_failure=bool(failed))
    return 0


def _report_invalid(run) -> None:
    report = run.report
    output.err().print(f"[red]{output.escape(run.view)}[/red]: {sum(report.violations.values()):,} violation(s) "
                       f"in {report.rows_checked:,} rows; nothing of this view was written:")
    for what, count in report.violations.items():
        output.err().print(f"  {count:,} × {output.escape(what)}")
    for sample in report.samples[:5]:
        output.err().print(f"  sample: {output.escape(json.dumps(sample, default=str))}")
    output.err().print("  fix the source data or the view's declared dtype/nullable/constraints, then rerun")


EndArg = Annotated[str, typer.Argument(help="Window end (exclusive): ISO 8601 (no zone = UTC) or `now`.")]


def _materialize(repo, run) -> int:
    """Open the store, run one kind of materialization with progress, report and exit."""
    from featurectl.cli.progress import progress_for_console

    with store(repo) as fs:
        return _finish(run(fs, progress_for_console()))


@command()
def materialize(
    start: Annotated[str, typer.Argument(help="Window start (inclusive): ISO 8601 (no zone = UTC) or `now`.")],
    end: EndArg,
    views: ViewsOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Load the latest value per entity with event time in [START, END) into the online store."""
    return _materialize(repo, lambda fs, progress: fs.materialize(start, end, split_list(views), progress=progress))


@command("materialize-incremental")
def materialize_incremental(
    end: EndArg,
    views: ViewsOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Materialize from each view's watermark (or its ttl before END when there is none) up to END."""
    return _materialize(repo, lambda fs, progress: fs.materialize_incremental(end, split_list(views), progress=progress))


class OnlineFormat(str, Enum):
    json = "json"
    table = "table"


def _entity_rows(pairs: list[str]) -> list[dict[str, str]]:
    """Each -e KEY=VALUE starts a new entity when its key repeats; composite keys share a row:
    `-e a=1 -e b=2 -e a=3 -e b=4` is two entities."""
    rows: list[dict[str, str]] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid entity {pair!r}", hint="write -e KEY=VALUE, e.g. -e driver_id=1001")
        if not rows or key in rows[-1]:
            rows.append({})
        rows[-1][key] = value
    return rows


@command("get-online")
def get_online(
    entity: Annotated[list[str], typer.Option("-e", "--entity", help="KEY=VALUE; repeat for more entities.")],
    features: FeaturesOpt = None,
    service: ServiceOpt = None,
    fmt: Annotated[OnlineFormat, typer.Option("--format", help="Output format.")] = OnlineFormat.json,
    full_feature_names: FullNamesOpt = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Read feature values for entities from the online store."""
    rows = _entity_rows(entity)
    with store(repo) as fs:
        columns = fs.get_online_features(split_list(features), rows, service=service,
                                         full_feature_names=full_feature_names)
    records = [{name: values[i] for name, values in columns.items()} for i in range(len(rows))]
    if fmt is OnlineFormat.json:
        output.print_raw(json.dumps(_finite(records), indent=2, default=_json_value))
    else:
        from rich.table import Table
        table = Table(*columns.keys())
        for record in records:
            table.add_row(*("" if v is None else output.escape(v) for v in record.values()))
        output.out().print(table)
    return 0


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _finite(value):
    """JSON has no NaN or Infinity: write them as the strings "NaN", "Infinity" and
    "-Infinity" (as protobuf's JSON mapping does), so every JSON parser accepts the output."""
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@command("get-historical")
def get_historical(
    entities: Annotated[Path, typer.Option("--entities", help="Entity rows: parquet or csv with join keys and a timestamp column.")],
    output_file: Annotated[Path, typer.Option("--output", help="Where to write the training data (.parquet or .csv).")],
    features: FeaturesOpt = None,
    service: ServiceOpt = None,
    timestamp_column: Annotated[str, typer.Option("--timestamp-column", help="The entity rows' timestamp column.")] = "event_timestamp",
    full_feature_names: FullNamesOpt = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write point-in-time correct training data for the entity rows."""
    import time

    from featurectl.app.entity_files import read_entity_rows, text_key_columns
    from featurectl.app.result_files import write_table

    outfiles.check_writable(output_file, "--output")  # before the join, not after it
    began = time.perf_counter()
    with store(repo) as fs:
        rows = read_entity_rows(entities, text_key_columns(fs.applied()))
        reader = fs.historical_reader(rows, split_list(features), service=service,
                                      timestamp_column=timestamp_column, full_feature_names=full_feature_names)
        written = write_table(reader, output_file)
    output.out().print(f"Wrote {written:,} rows to {output.escape(output_file)} in {time.perf_counter() - began:.2f} s.")
    return 0
