"""Reading the registry: list, show, history."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, store
from featurectl.cli.output import Output


class HistoryFormat(str, Enum):
    text = "text"
    json = "json"


@command("list")
def list_(
    ui: Output,
    kind: Annotated[Optional[str], typer.Argument(
        help="Only this kind: entities, sources, feature_views or feature_services (singular and "
             "hyphenated forms work too).", show_default=False)] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List the applied objects of the registry."""
    from featurectl.render.registry import EMPTY_REGISTRY, objects_table

    objects = store(repo).list_objects(kind)
    if objects:
        ui.table(objects_table(objects))
    else:
        ui.text(EMPTY_REGISTRY)
    return 0


@command()
def show(
    ui: Output,
    name: Annotated[str, typer.Argument(help="Object name (any kind).")],
    version: Annotated[Optional[str], typer.Option("--version", help="An earlier applied version.")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Show an applied object's definition (as canonical YAML), optionally at an earlier version."""
    from featurectl.render.registry import object_yaml

    ui.raw(object_yaml(store(repo).show(name, version=version)))
    return 0


@command()
def history(
    ui: Output,
    name: Annotated[Optional[str], typer.Argument(help="Only revisions that changed this object.")] = None,
    fmt: Annotated[HistoryFormat, typer.Option("--format", help="Output format.")] = HistoryFormat.text,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """The registry's revisions, oldest first: when, who, which git commit, what changed."""
    from featurectl.render.registry import history_json, history_text

    revisions = store(repo).history(name)
    if fmt is HistoryFormat.json:
        ui.raw(history_json(revisions))
    else:
        ui.print(history_text(revisions), end="")
    return 0
