"""Monitoring commands: drift, profile and freshness (SPEC §9)."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from featurectl.cli.main import EXIT_REFUSED, command
from featurectl.cli.options import DebugOpt, RepoOpt, ReportFormat, split_list, store
from featurectl.cli.output import Output

DATASET = (".parquet/.csv file, a directory of Parquet files (a get-historical result, a serve --log-features "
           "directory), or window:START/END (the views' offline source rows with event time in [START, END); "
           "needs --features)")


def _features_help(default: str) -> str:
    return (f"Comma-separated view:feature or view:* (kinds from the applied dtypes; needs a repository); "
            f"default: {default}.")


DriftFeaturesOpt = Annotated[Optional[str], typer.Option(
    "--features", metavar="REFS", help=_features_help("every numeric, string and bool column both sides hold"))]
ProfileFeaturesOpt = Annotated[Optional[str], typer.Option(
    "--features", metavar="REFS", help=_features_help("every numeric, string and bool column of DATASET"))]


class FailOn(str, Enum):
    warn = "warn"
    drift = "drift"


def _report(ui: Output, fmt: str, result, *, rows: Callable, table: Callable,
            markdown: Callable | None = None, prometheus: Callable | None = None) -> int:
    """Print a monitoring result in `fmt` and choose the exit code: 1 when something is at or
    above --fail-on, else 0."""
    if fmt == "json":
        ui.raw(json.dumps(rows(result), indent=2))
    elif fmt == "markdown" and markdown is not None:
        ui.raw(markdown(result))
    elif fmt == "prometheus" and prometheus is not None:
        ui.raw(prometheus(result))
    else:
        title, view, notes = table(result)
        ui.text(title)
        ui.table(view)
        for note in notes:
            ui.text(note)
    return EXIT_REFUSED if result.failing else 0


@command()
def drift(
    ui: Output,
    reference: Annotated[str, typer.Option("--reference", metavar="REF",
                                           help=f"Reference data: a {DATASET}; or a .profile.json "
                                                "written by `featurectl profile`.")],
    current: Annotated[str, typer.Option("--current", metavar="CUR", help=f"Current data: a {DATASET}.")],
    features: DriftFeaturesOpt = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.text,
    psi_warn: Annotated[Optional[float], typer.Option("--psi-warn", help="PSI at which a feature is `warn` "
                                                      "[default: monitoring.drift.psi_warn or 0.1]")] = None,
    psi_drift: Annotated[Optional[float], typer.Option("--psi-drift", help="PSI at which a feature is `drift`; "
                                                       "at least --psi-warn "
                                                       "[default: monitoring.drift.psi_drift or 0.25]")] = None,
    fail_on: Annotated[Optional[FailOn], typer.Option("--fail-on", help="Exit 1 when a feature is at or above "
                                                      "this status [default: monitoring.drift.fail_on or drift]")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Compare each feature's distribution between two datasets: PSI, KS, Jensen-Shannon, mean shift, nulls.

    Exit 0 when no feature is at or above --fail-on, 1 when one is, 2 for bad input.
    Outside a repository it compares plain files (no --features, no windows).

    \b
    Examples:
      featurectl drift --reference train.parquet --current logs/ --format json
      featurectl drift --reference train.profile.json --current window:2026-02-01/now --features driver_stats:*
    """
    from featurectl.render.monitoring import drift_markdown, drift_rows, drift_table
    from featurectl.sdk import drift as run_drift

    result = run_drift(reference, current, split_list(features), repo_path=repo, psi_warn=psi_warn,
                       psi_drift=psi_drift, fail_on=fail_on.value if fail_on else None)
    return _report(ui, fmt.value, result, rows=drift_rows, table=drift_table, markdown=drift_markdown)


@command()
def profile(
    ui: Output,
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help=f"Data to profile: a {DATASET}.")],
    out: Annotated[Path, typer.Option("--out", metavar="F.profile.json",
                                      help="Where to write the profile (a .json file; replaced whole, "
                                           "never left half-written).")],
    features: ProfileFeaturesOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write a reference profile (counts, nulls, deciles, KS grid, top categories) that drift --reference reads.

    \b
    Example:
      featurectl profile train.parquet --out train.profile.json
      featurectl drift --reference train.profile.json --current logs/
    """
    from featurectl.sdk import profile as run_profile

    content = run_profile(dataset, out, split_list(features), repo_path=repo)
    ui.text(f"Wrote the profile of {len(content['features'])} feature(s) of {dataset} to {out}.")
    return 0


class FreshnessFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    prometheus = "prometheus"


class FreshnessFailOn(str, Enum):
    minor = "minor"
    major = "major"
    critical = "critical"


@command()
def freshness(
    ui: Output,
    views: Annotated[Optional[str], typer.Option("--views", help="Comma-separated feature views (default: every "
                                                 "online view with a freshness_sla).")] = None,
    fmt: Annotated[FreshnessFormat, typer.Option("--format", help="Output format (prometheus: textfile-collector "
                                                 "lines with timestamps, not ages).")] = FreshnessFormat.text,
    fail_on: Annotated[Optional[FreshnessFailOn], typer.Option(
        "--fail-on", help="Exit 1 when a view is at or above this status "
                          "[default: monitoring.freshness.fail_on or minor]")] = None,
    check_source: Annotated[bool, typer.Option("--check-source", help="Also read the newest event time in each "
                                               "view's offline source (source lag).")] = False,
    now: Annotated[Optional[str], typer.Option("--now", metavar="TIME", help="Evaluate at this time (ISO 8601, "
                                               "no zone = UTC) instead of the clock.")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Check each online view's newest served value against its freshness_sla: ok, minor, major, critical.

    Exit 0 when no view is at or above --fail-on, 1 when one is, 2 for bad input, 3 when a
    store cannot be read (the freshness is then unknown, never reported as fresh).

    \b
    Examples:
      featurectl freshness --fail-on major
      featurectl freshness --format prometheus > /var/lib/node_exporter/featurectl.prom
    """
    from featurectl.offline.base import OfflineStoreError
    from featurectl.online.base import OnlineStoreError
    from featurectl.registry.base import RegistryError
    from featurectl.render.freshness import (freshness_markdown, freshness_prometheus, freshness_rows,
                                             freshness_table)

    with store(repo) as fs:
        try:
            result = fs.freshness(split_list(views), now=now, fail_on=fail_on.value if fail_on else None,
                                  check_source=check_source)
        except (OnlineStoreError, OfflineStoreError, RegistryError):
            ui.note("freshness unknown: a store could not be read, so no view is reported (never as fresh)")
            raise
    return _report(ui, fmt.value, result, rows=freshness_rows, table=freshness_table,
                   markdown=freshness_markdown, prometheus=freshness_prometheus)
