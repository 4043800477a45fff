"""Where a command's output goes: an `Output` made per invocation (colour only on a
terminal), handed to the command, so that an embedding (a server, a test) passes its own
consoles. Errors are reported through it; no traceback unless --debug.

rich is imported when something is printed through it: machine output (`raw`: JSON, YAML)
never needs it, and importing it is a tenth of a `get-online` process (docs/benchmarks.md)."""
from __future__ import annotations

import logging
import sys
from typing import IO, TYPE_CHECKING

from featurectl.core.errors import Problem
from featurectl.core.secrets import mask_secrets

if TYPE_CHECKING:
    from rich.console import Console

    from featurectl.render.tables import TableView

__all__ = ["Output", "escape", "problem_lines", "out", "err", "print_raw", "report_problems", "report_error"]


def escape(value: object) -> str:
    """Any value (a path, a name) as text that rich markup prints literally."""
    from rich.markup import escape as escape_markup

    return escape_markup(str(value))


def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def problem_lines(problem: Problem) -> list[str]:
    # Every error message passes here: the last line of defence against a leaked password.
    where = problem.where()
    lines = [f"[red]error:[/red] {escape(where) + ': ' if where else ''}{escape(mask_secrets(problem.text()))}"]
    if problem.hint:
        lines.append(f"  [dim]hint:[/dim] {escape(mask_secrets(problem.hint))}")
    return lines


_MIN_WRAPPED, _GAP, _BOXED_GAP = 10, 2, 3


class Output:
    """stdout and stderr of one command: rich consoles for people (made on first use), raw
    text for machines."""

    def __init__(self, out: Console | None = None, err: Console | None = None, raw: IO[str] | None = None):
        self._out, self._err, self._raw = out, err, raw

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    def print(self, markup: str, **kwargs) -> None:
        """Rich markup on stdout (escape values with `escape`)."""
        self.out.print(markup, **kwargs)

    def text(self, text: str) -> None:
        """Plain text on stdout, never read as markup: written as it is, without making a
        console (importing rich is ~15 ms of a process) unless this Output already has one, so
        that lines keep their order."""
        if self._out is None:
            self.raw(text)
        else:
            self._out.print(text, markup=False, emoji=False)

    def raw(self, text: str) -> None:
        """Machine-readable output (JSON, YAML, markdown): bypasses rich entirely."""
        # A console's file is sys.stdout as it is at the time of writing; so is ours.
        stream = self._raw if self._raw is not None else self._out.file if self._out is not None else sys.stdout
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()

    def table(self, view: "TableView") -> None:
        """A TableView on stdout. Cells are plain text; columns not in `view.wrap` are kept
        whole (never cut or folded), the others wrap into what width is left."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table() if view.boxed else Table(box=None, pad_edge=False)
        needed = 0  # the narrowest width that keeps the whole columns whole
        for i, name in enumerate(view.columns):
            whole = name not in view.wrap
            width = max([len(name), *(len(row[i]) for row in view.rows)]) if whole else _MIN_WRAPPED
            table.add_column(name, no_wrap=whole, min_width=width if whole else None,
                             overflow="ellipsis" if whole else "fold")
            needed += width + (_BOXED_GAP if view.boxed else _GAP)
        for row in view.rows:
            table.add_row(*(Text(cell) for cell in row))
        console = self.out
        if needed > console.width:  # lines run past the terminal's edge rather than cut a name
            console = Console(file=console.file, width=needed, force_terminal=console.is_terminal,
                              no_color=console.no_color, highlight=False)
        console.print(table)

    def note(self, markup: str) -> None:
        """A remark on stderr (rich markup), outside the command's output proper."""
        self.err.print(markup)

    def problems(self, problems: list[Problem]) -> None:
        for problem in problems:
            for line in problem_lines(problem):
                self.err.print(line)
        if len(problems) > 1:
            self.err.print(f"{len(problems)} problems found.")

    def error(self, message: str, hint: str | None = None) -> None:
        self.problems([Problem(message, hint=hint)])


# --- for commands that do not take `ui` yet (new command modules on other branches) -----------
# Each call makes fresh consoles: nothing process-global is kept. Take `ui: Output` instead.

def out() -> Console:
    return Output().out


def err() -> Console:
    return Output().err


def print_raw(text: str) -> None:
    Output().raw(text)


def report_problems(problems: list[Problem]) -> None:
    Output().problems(problems)


def report_error(message: str, hint: str | None = None) -> None:
    Output().error(message, hint)


class _WarningLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err().print(f"[yellow]warning:[/yellow] {escape(record.getMessage())}")


def route_warnings() -> None:
    """featurectl's logged warnings (e.g. an OpenLineage endpoint that is down) become one
    line each on stderr. The OpenLineage client's own error logs carry tracebacks; our
    warning already says what failed, so theirs are kept quiet."""
    logger = logging.getLogger("featurectl")
    logger.addHandler(_WarningLines())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logging.getLogger("openlineage").setLevel(logging.CRITICAL)
