"""Materialization progress: a bar on a terminal, one summary line per view otherwise."""
from __future__ import annotations

from typing import TYPE_CHECKING

from featurectl.app.materialize import NoProgress, ViewRun
from featurectl.cli import output

if TYPE_CHECKING:
    from rich.progress import TaskID


def summary_line(run: ViewRun) -> str:
    label = f"{run.view} v{run.major}"
    window = f"[{run.start.isoformat()}, {run.end.isoformat()})"
    if run.status == "skipped":
        return f"{label}: up to date {window}"
    if run.status == "invalid":
        return f"{label}: INVALID data, nothing written, watermark unchanged {window}"
    if run.status == "failed":
        return f"{label}: FAILED, watermark unchanged: {run.error}"
    return (f"{label}: {run.rows_read:,} rows read, {run.entities_written:,} entities written, "
            f"{run.seconds:.2f} s, {run.rate:,.0f} rows/s {window}")


class LineProgress(NoProgress):
    """Off a terminal: nothing while a view runs, one summary line when it ends."""

    def finish(self, run: ViewRun) -> None:
        output.out().print(output.escape(summary_line(run)))


class BarProgress:
    """A rich progress bar per view, on a terminal only."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=output.out(), transient=True)
        self._tasks: dict[str, TaskID] = {}

    def start(self, run: ViewRun, total: int) -> None:
        if not self._tasks:
            self._bar.start()
        self._tasks[run.view] = self._bar.add_task(f"{run.view} v{run.major}", total=None)

    def advance(self, run: ViewRun, entities: int) -> None:
        self._bar.advance(self._tasks[run.view], entities)

    def finish(self, run: ViewRun) -> None:
        task = self._tasks.pop(run.view, None)
        if task is not None:
            self._bar.remove_task(task)
        if not self._tasks:
            self._bar.stop()
        output.out().print(output.escape(summary_line(run)))


def progress_for_console():
    return BarProgress() if output.out().is_terminal else LineProgress()
