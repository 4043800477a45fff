"""Consoles and error reporting: colour only on a terminal, no traceback unless --debug."""
from __future__ import annotations

import sys
from functools import lru_cache

from rich.console import Console

from featurectl.core.errors import Problem


@lru_cache(maxsize=None)
def out() -> Console:
    return Console(highlight=False, soft_wrap=True)


@lru_cache(maxsize=None)
def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: object) -> str:
    return str(text).replace("[", r"\[")


def problem_lines(problem: Problem) -> list[str]:
    where = problem.where()
    lines = [f"[red]error:[/red] {escape(where) + ': ' if where else ''}{escape(problem.message)}"]
    if problem.hint:
        lines.append(f"  [dim]hint:[/dim] {escape(problem.hint)}")
    return lines


def report_problems(problems: list[Problem]) -> None:
    for problem in problems:
        for line in problem_lines(problem):
            err().print(line)
    if len(problems) > 1:
        err().print(f"{len(problems)} problems found.")


def report_error(message: str, hint: str | None = None) -> None:
    report_problems([Problem(message, hint=hint)])


def print_table(view) -> None:
    """A render.tables.TableView on stdout; cells are plain text, never markup."""
    from rich.table import Table
    from rich.text import Text

    kwargs = {} if view.boxed else {"box": None, "pad_edge": False}
    table = Table(*view.columns, **kwargs)
    for row in view.rows:
        table.add_row(*(Text(cell) for cell in row))
    out().print(table)


def print_raw(text: str) -> None:
    """Machine-readable output (JSON, YAML, markdown): bypass rich entirely."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
