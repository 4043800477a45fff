"""Materialization progress: a bar on a terminal, one summary line per view otherwise."""
from __future__ import annotations

from typing import TYPE_CHECKING

from featurectl.app.materialize import NoProgress, ViewRun
from featurectl.cli.output import Output
from featurectl.render.materialize import summary_line

if TYPE_CHECKING:
    from rich.progress import TaskID


class LineProgress(NoProgress):
    """Off a terminal: nothing while a view runs, one summary line when it ends."""

    def __init__(self, ui: Output) -> None:
        self._ui = ui

    def finish(self, run: ViewRun) -> None:
        self._ui.text(summary_line(run))


class BarProgress:
    """A rich progress bar per view, on a terminal only."""

    def __init__(self, ui: Output) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=ui.out, transient=True)
        self._ui = ui
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
        self._ui.text(summary_line(run))


def progress_for(ui: Output):
    return BarProgress(ui) if ui.out.is_terminal else LineProgress(ui)
