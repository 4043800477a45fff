"""The catalog commands: lineage and docs."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featurectl.cli import output
from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, store


class LineageFormat(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"


FromFilesOpt = Annotated[bool, typer.Option(
    "--from-files", help="Use the definitions in the repository's files instead of the applied registry state "
                         "(no registry needed; versions are the declared ones).")]


@command()
def lineage(
    name: Annotated[Optional[str], typer.Argument(
        help="Only this object's upstream and downstream: NAME, or KIND:NAME when names clash across kinds.",
        show_default=False)] = None,
    fmt: Annotated[LineageFormat, typer.Option("--format", help="Output format.")] = LineageFormat.text,
    from_files: FromFilesOpt = False,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """The lineage graph: source -> feature view -> feature service (entities key the views)."""
    from featurectl.render.lineage import graph_dot, graph_text, graph_to_dict

    with store(repo) as fs:
        graph = fs.lineage(from_files=from_files)
    if not graph.nodes and not from_files and fmt is LineageFormat.text:
        output.out().print("The registry holds no objects yet; run `featurectl apply`, or pass --from-files.")
        return 0 if name is None else _unknown(name)
    focus = graph.resolve(name) if name is not None else None
    shown = graph.around(focus) if focus is not None else graph
    if fmt is LineageFormat.json:
        output.print_raw(json.dumps(graph_to_dict(shown), indent=2))
    elif fmt is LineageFormat.dot:
        output.print_raw(graph_dot(shown, focus=focus))
    else:
        output.print_raw(graph_text(shown, focus))
    return 0


def _unknown(name: str) -> int:
    from featurectl.core.errors import UsageError
    raise UsageError(f"no applied object named '{name}'", hint="the registry is empty: run `featurectl apply` first")


@command()
def docs(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the site into (relative to the repository).")]
    = Path(".featurectl/docs"),
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the static HTML catalog of the applied objects (works from file://, no network)."""
    from featurectl.render.site import write_site

    with store(repo) as fs:
        catalog = fs.catalog()
        target = out if out.is_absolute() else fs.repo.root / out
    try:
        result = write_site(catalog, target)
    except OSError as exc:
        from featurectl.core.errors import UsageError
        raise UsageError(f"--out {out}: cannot write the site: {exc.strerror or exc}",
                         hint="pass --out with a writable directory") from None
    for warning in result.warnings:
        output.err().print(f"[yellow]warning:[/yellow] {output.escape(warning)}")
    output.out().print(f"Wrote {result.pages} pages and catalog.json to {output.escape(target)}")
    output.print_raw(f"Open file://{(target / 'index.html').resolve()}")
    return 0
