"""Options every command shares."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

RepoOpt = Annotated[Optional[Path], typer.Option(
    "--repo", help="Feature repository (default: the nearest directory at or above the current one "
                   "holding featurectl.yaml).", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")]


def store(repo: Path | None):
    from featurectl.sdk import FeatureStore
    return FeatureStore(repo)


def split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class ReportFormat(str, Enum):
    """--format of the commands that print a report for people, machines or a PR comment."""

    text = "text"
    json = "json"
    markdown = "markdown"
