"""plan and apply."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.app import outfiles
from featurectl.cli.main import EXIT_REFUSED, command
from featurectl.cli.options import DebugOpt, RepoOpt, ReportFormat, store
from featurectl.cli.output import Output, escape


def _show(ui: Output, plan, fmt: ReportFormat, mode: str = "plan") -> None:
    if fmt is ReportFormat.json:
        from featurectl.formats.plan import plan_to_dict, to_json
        ui.raw(to_json(plan_to_dict(plan)))
    elif fmt is ReportFormat.markdown:
        from featurectl.render.text import render_plan
        ui.raw(render_plan(plan, "markdown"))
    else:
        from featurectl.render.text import render_plan
        ui.print(render_plan(plan, "text", mode), end="")


def detailed_exit_code(plan) -> int:
    if not plan.valid:
        return EXIT_REFUSED
    if not plan.has_changes:
        return 0
    return 5 if plan.largest_bump == "major" else 4


@command()
def plan(
    ui: Output,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.text,
    out: Annotated[Optional[Path], typer.Option("--out", help="Save the plan to this JSON file, for `apply PLAN.json`.")] = None,
    against: Annotated[Optional[str], typer.Option(
        "--against", metavar="GIT_REF",
        help="Diff against the definitions at this git revision instead of the registry (no registry access; for CI).")] = None,
    allow_removals: Annotated[bool, typer.Option("--allow-removals", help="Allow removing views and services that are not deprecated.")] = False,
    detailed_exitcode: Annotated[bool, typer.Option(
        "--detailed-exitcode", help="Exit 0 with no changes, 4 with only patch/minor changes, 5 with a major change (1 invalid).")] = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Compile the definitions, diff them against the registry (or a git ref) and check every version bump."""
    if out is not None:
        outfiles.check_writable(out, "--out")  # before the plan is made and shown
    fs = store(repo)
    result = fs.plan(allow_removals=allow_removals, against=against)
    _show(ui, result, fmt)
    if out is not None:
        if against is not None:
            ui.note("[yellow]note:[/yellow] a plan made --against a git ref can be reviewed but not applied")
        from featurectl.app.saved_plan import dump
        outfiles.write_text(out, dump(result), "--out")
        if fmt is ReportFormat.text:
            ui.print(f"Saved the plan to {escape(out)}; apply it with `featurectl apply {escape(out)}`.")
    if detailed_exitcode:
        return detailed_exit_code(result)
    return 0 if result.valid else EXIT_REFUSED


@command()
def apply(
    ui: Output,
    plan_file: Annotated[Optional[Path], typer.Argument(
        metavar="PLAN.json", help="A plan saved by `plan --out`: apply exactly it, if the registry has not moved.")] = None,
    allow_removals: Annotated[bool, typer.Option("--allow-removals", help="Allow removing views and services that are not deprecated.")] = False,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="How to show the applied plan.")] = ReportFormat.text,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Apply the plan atomically, recording a new registry revision."""
    from featurectl.app.errors import PlanRefused

    fs = store(repo)
    try:
        result = fs.apply(plan_file, allow_removals=allow_removals)
    except PlanRefused as exc:
        if exc.plan is not None:
            _show(ui, exc.plan, fmt, "apply")
        raise
    _show(ui, result.plan, fmt, "apply")
    if fmt is ReportFormat.text:
        if result.revision is None:
            ui.print("Nothing to apply.")
        else:
            ui.print(f"[green]Applied[/green] registry revision {result.revision}.")
    return 0
