"""Commands over definitions only: init, validate, export, schema, rules."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from featurectl.cli import output
from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt


class RulesFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


@command()
def init(
    name: Annotated[str, typer.Argument(help="Project name ([a-z][a-z0-9_]*); also the new directory's name.")],
    template: Annotated[str, typer.Option("--template", help="Template to start from.")] = "basic",
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the repository.")] = Path("."),
    debug: DebugOpt = False,
) -> int:
    """Create a working feature repository (config, definitions, sample data) from a template."""
    from featurectl.app.scaffold import create

    target = create(name, template, directory)
    output.out().print(f"Created feature repository [bold]{output.escape(target)}[/bold]. Next:\n"
                       f"  cd {output.escape(target)}\n  featurectl plan\n  featurectl apply\n"
                       f"  featurectl materialize-incremental now\n"
                       f"  featurectl get-online --features driver_stats:conv_rate -e driver_id=1001")
    return 0


@command()
def validate(repo: RepoOpt = None, debug: DebugOpt = False) -> int:
    """Parse and check definitions and references; no registry needed."""
    from featurectl.loading.repo import Repo

    defs = Repo.open(repo).definitions
    counts = ", ".join(f"{len(defs.of_kind(k))} {k.replace('_', ' ')}{'' if len(defs.of_kind(k)) == 1 else 's'}"
                       for k in ("entity", "source", "feature_view", "feature_service"))
    output.out().print(f"[green]Valid:[/green] {counts.replace('entitys', 'entities')}.")
    return 0


@command()
def export(repo: RepoOpt = None, debug: DebugOpt = False) -> int:
    """Print the canonical YAML of the repository's definitions (YAML and Python alike)."""
    import yaml

    from featurectl.loading.repo import Repo

    data = Repo.open(repo).definitions.to_dict()
    output.print_raw(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return 0


@command()
def schema(debug: DebugOpt = False) -> int:
    """Print the JSON Schema of the YAML definition format, for editors and linters."""
    from featurectl.core.schema import definition_schema

    output.print_raw(json.dumps(definition_schema(), indent=2))
    return 0


@command()
def rules(
    fmt: Annotated[RulesFormat, typer.Option("--format", help="Output format.")] = RulesFormat.text,
    debug: DebugOpt = False,
) -> int:
    """The compatibility rule catalog: id, required bump, purpose."""
    from featurectl.render.plan_data import catalog_rows

    rows = catalog_rows()
    if fmt is RulesFormat.json:
        output.print_raw(json.dumps(rows, indent=2))
    elif fmt is RulesFormat.markdown:
        from featurectl.render.text import environment
        output.print_raw(environment().get_template("rules.md.j2").render(rows=rows))
    else:
        from rich.table import Table
        table = Table("rule id", "bump", "applies to", "purpose", box=None, pad_edge=False)
        for row in rows:
            table.add_row(row["id"], row["bump"], row["applies_to"], output.escape(row["purpose"]))
        output.out().print(table)
    return 0
