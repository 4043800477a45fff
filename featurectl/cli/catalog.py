"""The catalog commands: lineage and docs."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, store
from featurectl.cli.output import Output, escape


class LineageFormat(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"


FromFilesOpt = Annotated[bool, typer.Option(
    "--from-files", help="Use the definitions in the repository's files instead of the applied registry state "
                         "(no registry needed; versions are the declared ones).")]


@command()
def lineage(
    ui: Output,
    name: Annotated[Optional[str], typer.Argument(
        metavar="NAME", help="Only this object's upstream and downstream: NAME, or KIND:NAME when names clash "
                             "across kinds (KIND: entity, source, feature_view, feature_service).",
        show_default=False)] = None,
    fmt: Annotated[LineageFormat, typer.Option("--format", help="Output format (dot: Graphviz input).")]
    = LineageFormat.text,
    from_files: FromFilesOpt = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """The lineage graph: source -> feature view -> feature service (entities key the views).

    \b
    Examples:
      featurectl lineage driver_stats
      featurectl lineage --format dot | dot -Tsvg > lineage.svg
    """
    from featurectl.render.lineage import graph_dot, graph_text, graph_to_dict

    with store(repo) as fs:
        graph = fs.lineage(from_files=from_files)
    focus = graph.resolve(name) if name is not None else None
    if not graph.nodes and fmt is LineageFormat.text:
        ui.text("The registry holds no objects yet; run `featurectl apply`, or pass --from-files."
                if not from_files else "The definitions hold no objects.")
        return 0
    shown = graph.around(focus) if focus is not None else graph
    if fmt is LineageFormat.json:
        ui.raw(json.dumps(graph_to_dict(shown), indent=2))
    elif fmt is LineageFormat.dot:
        ui.raw(graph_dot(shown, focus=focus))
    else:
        ui.raw(graph_text(shown, focus))
    return 0


@command()
def docs(
    ui: Output,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Directory to write the site into (relative to the repository).")]
    = Path(".featurectl/docs"),
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the static HTML catalog of the applied objects (works from file://, no network).

    The site is built beside --out and then takes its place whole: an earlier site there is
    replaced, and a directory holding anything else is refused.

    \b
    Example:
      featurectl docs --out site && open site/index.html
    """
    from featurectl.render.site import check_site_directory, write_site

    with store(repo) as fs:
        target = out if out.is_absolute() else fs.repo.root / out
        check_site_directory(target)  # before the registry is read
        catalog = fs.catalog()
    result = write_site(catalog, target)
    for warning in result.warnings:
        ui.note(f"[yellow]warning:[/yellow] {escape(warning)}")
    ui.text(f"Wrote {result.pages} pages and catalog.json to {target}")
    ui.raw(f"Open file://{(target / 'index.html').resolve()}")
    return 0
