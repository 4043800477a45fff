"""Data commands: materialize, materialize-incremental, get-online, get-historical."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, split_list, store
from featurectl.cli.output import Output
from featurectl.core.errors import UsageError

ViewsOpt = Annotated[Optional[str], typer.Option("--views", help="Comma-separated feature views (default: every online view).")]
FeaturesOpt = Annotated[Optional[str], typer.Option(
    "--features", metavar="REFS", help="Comma-separated references: view:feature or view:*; get-online also reads an "
                                       "older major side by side with view@N:feature (view@N:*).")]
ServiceOpt = Annotated[Optional[str], typer.Option("--service", help="A feature service whose features to read.")]
FullNamesOpt = Annotated[bool, typer.Option("--full-feature-names", help="Name feature columns view__feature.")]


def _finish(ui: Output, runs) -> int:
    """Report what the run did (the per-view lines came from the progress) and choose the exit."""
    from featurectl.app.errors import MaterializationFailed
    from featurectl.render.materialize import failure_message, invalid_report, nothing_to_do

    invalid = [r for r in runs if r.status == "invalid"]
    failed = [r for r in runs if r.status == "failed"]
    bad_source = [r for r in runs if r.status == "bad_source"]
    for run in invalid:
        for line in invalid_report(run):
            ui.note(line)
    if failed or invalid or bad_source:
        raise MaterializationFailed(failure_message(invalid, failed, bad_source), runs,
                                    store_failure=bool(failed), bad_input=bool(bad_source))
    idle = nothing_to_do(runs)
    if idle:
        ui.text(idle)
    return 0


EndArg = Annotated[str, typer.Argument(help="Window end (exclusive): ISO 8601 (no zone = UTC) or `now`.")]


def _materialize(ui: Output, repo, run) -> int:
    """Open the store, run one kind of materialization with progress, report and exit."""
    from featurectl.cli.progress import progress_for

    with store(repo) as fs:
        return _finish(ui, run(fs, progress_for(ui)))


@command()
def materialize(
    ui: Output,
    start: Annotated[str, typer.Argument(help="Window start (inclusive): ISO 8601 (no zone = UTC) or `now`.")],
    end: EndArg,
    views: ViewsOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Load the latest value per entity with event time in [START, END) into the online store."""
    return _materialize(ui, repo, lambda fs, progress: fs.materialize(start, end, split_list(views), progress=progress))


@command("materialize-incremental")
def materialize_incremental(
    ui: Output,
    end: EndArg,
    views: ViewsOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Materialize from each view's watermark (or its ttl before END when there is none) up to END."""
    return _materialize(ui, repo, lambda fs, progress: fs.materialize_incremental(end, split_list(views), progress=progress))


def _features_or_service(features: str | None, service: str | None) -> None:
    """A request names its features one way: a list, or a service (mixing them is ambiguous)."""
    if features and service:
        raise UsageError("--features and --service cannot be used together",
                         hint="pass either --features view:feature[,view:*] or --service NAME")


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
    ui: Output,
    entity: Annotated[list[str], typer.Option("-e", "--entity", metavar="KEY=VALUE",
                                              help="A join key's value; repeat for more entities (and for the "
                                                   "keys of a composite entity).")],
    features: FeaturesOpt = None,
    service: ServiceOpt = None,
    fmt: Annotated[OnlineFormat, typer.Option("--format", help="Output format.")] = OnlineFormat.json,
    full_feature_names: FullNamesOpt = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Read feature values for entities from the online store.

    \b
    Examples:
      featurectl get-online --features driver_stats:conv_rate,driver_stats:acc_rate -e driver_id=1001 -e driver_id=1002
      featurectl get-online --features driver_stats@1:* -e driver_id=1001 --format table
    """
    from featurectl.render.online import online_json, online_table

    _features_or_service(features, service)
    rows = _entity_rows(entity)
    with store(repo) as fs:
        result = fs.get_online_result(split_list(features), rows, service=service,
                                      full_feature_names=full_feature_names)
    if fmt is OnlineFormat.json:
        ui.raw(online_json(result))
    else:
        ui.table(online_table(result))
    return 0


@command("get-historical")
def get_historical(
    ui: Output,
    entities: Annotated[str, typer.Option("--entities", help="Entity rows: parquet or csv with join keys and a timestamp column; a file, a glob "
                                           "('rows/*.parquet', files in path order) or, on Spark, a URI such as s3a://...")],
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

    _features_or_service(features, service)
    began = time.perf_counter()
    with store(repo) as fs:
        written = fs.write_historical_features(entities, output_file, split_list(features), service=service,
                                               timestamp_column=timestamp_column,
                                               full_feature_names=full_feature_names)
    ui.text(f"Wrote {written:,} rows to {output_file} in {time.perf_counter() - began:.2f} s.")
    return 0


@command()
def prune(
    ui: Output,
    views: Annotated[Optional[str], typer.Option(
        "--views", help="Comma-separated feature views (default: every applied view).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be dropped.")] = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Drop the online data of old major versions (kept after a major bump for pinned readers)."""
    from featurectl.render.materialize import prune_lines

    for line in prune_lines(store(repo).prune(split_list(views), dry_run=dry_run), dry_run):
        ui.print(line)
    return 0
