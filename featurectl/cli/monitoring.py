"""Monitoring commands: drift, profile and freshness (SPEC §9)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli import output
from featurectl.cli.main import EXIT_REFUSED, command
from featurectl.cli.options import DebugOpt, RepoOpt, split_list, store

FeaturesOpt = Annotated[Optional[str], typer.Option(
    "--features", help="Comma-separated view:feature or view:* (kinds from the applied dtypes); "
                       "default: every numeric, string and bool column both sides hold.")]


class DriftFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class FailOn(str, Enum):
    warn = "warn"
    drift = "drift"


def _store_if_any(repo: Path | None):
    """The repository's store, or None outside any repository when --repo is not given: drift
    between two files needs no repository."""
    from featurectl.sdk import open_store_if_any
    return open_store_if_any(repo)


@command()
def drift(
    reference: Annotated[str, typer.Option("--reference", help="Reference data: .parquet/.csv, a directory of "
                                           "Parquet files, window:START/END, or a .profile.json.")],
    current: Annotated[str, typer.Option("--current", help="Current data: .parquet/.csv, a directory of Parquet "
                                         "files (e.g. serve --log-features), or window:START/END.")],
    features: FeaturesOpt = None,
    fmt: Annotated[DriftFormat, typer.Option("--format", help="Output format.")] = DriftFormat.text,
    psi_warn: Annotated[Optional[float], typer.Option("--psi-warn", help="PSI at which a feature is `warn` "
                                                      "[default: monitoring.drift.psi_warn or 0.1]")] = None,
    psi_drift: Annotated[Optional[float], typer.Option("--psi-drift", help="PSI at which a feature is `drift` "
                                                       "[default: monitoring.drift.psi_drift or 0.25]")] = None,
    fail_on: Annotated[Optional[FailOn], typer.Option("--fail-on", help="Exit 1 when a feature is at or above "
                                                      "this status [default: monitoring.drift.fail_on or drift]")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Compare each feature's distribution between two datasets: PSI, KS, Jensen-Shannon, mean shift, nulls."""
    from featurectl.render.monitoring import drift_markdown, drift_rows, drift_table

    refs = split_list(features)
    fs = _store_if_any(repo)
    fail = fail_on.value if fail_on else None
    if fs is None:
        result = _drift_without_repo(reference, current, refs, psi_warn, psi_drift, fail)
    else:
        with fs:
            result = fs.drift(reference, current, refs, psi_warn=psi_warn, psi_drift=psi_drift, fail_on=fail)
    if fmt is DriftFormat.json:
        output.print_raw(json.dumps(drift_rows(result), indent=2))
    elif fmt is DriftFormat.markdown:
        output.print_raw(drift_markdown(result))
    else:
        table, notes = drift_table(result, output.escape)
        output.out().print(table)
        for note in notes:
            output.out().print(note)
    return EXIT_REFUSED if result.failing else 0


def _drift_without_repo(reference, current, refs, psi_warn, psi_drift, fail_on):
    from featurectl.app.monitoring import Sources, drift as run_drift
    from featurectl.core.monitoring import DriftThresholds

    default = DriftThresholds()
    thresholds = DriftThresholds(default.psi_warn if psi_warn is None else psi_warn,
                                 default.psi_drift if psi_drift is None else psi_drift,
                                 fail_on or default.fail_on)
    return run_drift(reference, current, refs, thresholds, Sources(None, None, datetime.now(timezone.utc)))


@command()
def profile(
    dataset: Annotated[str, typer.Argument(help="Data to profile: .parquet/.csv, a directory of Parquet files, "
                                           "or window:START/END.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the profile (NAME.profile.json).")],
    features: FeaturesOpt = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write a reference profile (counts, nulls, deciles, KS grid, top categories) that drift --reference reads."""
    from featurectl.app.monitoring import Sources, profile as run_profile, write_json
    from featurectl.core.errors import UsageError

    if not out.name.lower().endswith(".json"):
        raise UsageError(f"--out {out}: a profile is a .json file", hint="name it e.g. train.profile.json")
    refs = split_list(features)
    fs = _store_if_any(repo)
    if fs is None:
        content = run_profile(dataset, refs, Sources(None, None, datetime.now(timezone.utc)))
        write_json(out, content)
    else:
        with fs:
            content = fs.profile(dataset, out, refs)
    output.out().print(f"Wrote the profile of {len(content['features'])} feature(s) of "
                       f"{output.escape(dataset)} to {output.escape(out)}.")
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
    views: Annotated[Optional[str], typer.Option("--views", help="Comma-separated feature views (default: every "
                                                 "online view with a freshness_sla).")] = None,
    fmt: Annotated[FreshnessFormat, typer.Option("--format", help="Output format.")] = FreshnessFormat.text,
    fail_on: Annotated[Optional[FreshnessFailOn], typer.Option(
        "--fail-on", help="Exit 1 when a view is at or above this status "
                          "[default: monitoring.freshness.fail_on or minor]")] = None,
    check_source: Annotated[bool, typer.Option("--check-source", help="Also read the newest event time in each "
                                               "view's offline source (source lag).")] = False,
    now: Annotated[Optional[str], typer.Option("--now", help="Evaluate at this time (ISO 8601, no zone = UTC) "
                                               "instead of the clock.")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Check each online view's newest served value against its freshness_sla: ok, minor, major, critical."""
    from featurectl.render.freshness import (freshness_markdown, freshness_prometheus, freshness_rows,
                                             freshness_table)

    with store(repo) as fs:
        result = fs.freshness(split_list(views), now=now, fail_on=fail_on.value if fail_on else None,
                              check_source=check_source)
    if fmt is FreshnessFormat.json:
        output.print_raw(json.dumps(freshness_rows(result), indent=2))
    elif fmt is FreshnessFormat.markdown:
        output.print_raw(freshness_markdown(result))
    elif fmt is FreshnessFormat.prometheus:
        output.print_raw(freshness_prometheus(result))
    else:
        table, notes = freshness_table(result, output.escape)
        output.out().print(table)
        for note in notes:
            output.out().print(note)
    return EXIT_REFUSED if result.failing else 0
