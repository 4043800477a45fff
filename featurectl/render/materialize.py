"""Materialization output: one summary line per view, the report of a view whose data broke
its declared schema, the failure message, and the line for a run with nothing to do.
Console lines are rich markup (values escaped)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Sequence

from rich.markup import escape

if TYPE_CHECKING:
    from featurectl.app.materialize import ViewRun
    from featurectl.app.prune import OldMajor


def summary_line(run: "ViewRun") -> str:
    """Plain text (no markup): `view vMAJOR: what happened [start, end)`."""
    label = f"{run.view} v{run.major}"
    window = f"[{run.start.isoformat()}, {run.end.isoformat()})"
    if run.status == "skipped":
        return f"{label}: up to date {window}"
    if run.status == "invalid":
        return f"{label}: INVALID data, nothing written, watermark unchanged {window}"
    if run.status == "bad_source":
        return f"{label}: SOURCE UNREADABLE, nothing written, watermark unchanged: {run.error}"
    if run.status == "failed":
        return f"{label}: FAILED, watermark unchanged: {run.error}"
    return (f"{label}: {run.rows_read:,} rows read, {run.entities_written:,} entities written, "
            f"{run.seconds:.2f} s, {run.rate:,.0f} rows/s {window}")


def nothing_to_do(runs: Sequence["ViewRun"]) -> str | None:
    """One line when the run wrote nothing because there was nothing to do, else None."""
    if not runs:
        return "nothing to materialize: the registry holds no online feature views; run `featurectl apply`"
    if all(r.status == "skipped" for r in runs):
        return f"nothing to materialize: every view is up to date to {max(r.end for r in runs).isoformat()}"
    return None


def invalid_report(run: "ViewRun") -> list[str]:
    """Markup lines for a view whose data broke its declared dtype, nullability or constraints."""
    report = run.report
    assert report is not None
    lines = [f"[red]{escape(run.view)}[/red]: {sum(report.violations.values()):,} violation(s) "
             f"in {report.rows_checked:,} rows; nothing of this view was written:"]
    lines += [f"  {count:,} × {escape(what)}" for what, count in report.violations.items()]
    lines += [f"  sample: {escape(json.dumps(sample, default=str))}" for sample in report.samples[:5]]
    lines.append("  fix the source data or the view's declared dtype/nullable/constraints, then rerun")
    return lines


def failure_message(invalid: Sequence["ViewRun"], failed: Sequence["ViewRun"],
                    bad_source: Sequence["ViewRun"] = ()) -> str:
    parts = []
    if invalid:
        parts.append(f"invalid data in {', '.join(r.view for r in invalid)}: nothing of it was written")
    if bad_source:
        parts.append(f"the source of {', '.join(r.view for r in bad_source)} cannot be read as defined: "
                     "nothing of it was written; fix the data or the source definition")
    if failed:
        # Batches written before the failure stay: each entity holds its old or its new value.
        parts.append(f"a store failed for {', '.join(r.view for r in failed)}: some entities may already "
                     "hold the new values; rerun the same command to complete")
    return f"materialization failed ({'; '.join(parts)}); watermarks did not move"


def prune_lines(dropped: Sequence["OldMajor"], dry_run: bool) -> list[str]:
    """Markup lines for `prune`: what was (or would be) dropped, or that nothing was."""
    if not dropped:
        return ["Nothing to prune: no online data of an old major version is kept."]
    verb = "Would drop" if dry_run else "Dropped"
    return [f"{verb} the online data of [bold]{escape(old.view)}[/bold] major {old.major} "
            f"(applied: major {old.applied_major})." for old in dropped]
