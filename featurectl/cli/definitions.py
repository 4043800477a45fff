"""Commands over definitions only: init, validate, export, schema, rules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, ReportFormat
from featurectl.cli.output import Output, escape


@command()
def init(
    ui: Output,
    name: Annotated[str, typer.Argument(help="Project name ([a-z][a-z0-9_]*); also the new directory's name.")],
    template: Annotated[str, typer.Option("--template", help="Template to start from.")] = "basic",
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the repository.")] = Path("."),
    debug: DebugOpt = False,
) -> int:
    """Create a working feature repository (config, definitions, sample data) from a template."""
    from featurectl.app.scaffold import create

    target = create(name, template, directory)
    ui.print(f"Created feature repository [bold]{escape(target)}[/bold]. Next:\n"
             f"  cd {escape(target)}\n  featurectl plan\n  featurectl apply\n"
             f"  featurectl materialize-incremental now\n"
             f"  featurectl get-online --features driver_stats:conv_rate -e driver_id=1001")
    return 0


@command()
def validate(ui: Output, repo: RepoOpt = None, debug: DebugOpt = False) -> int:
    """Parse and check definitions and references; no registry needed."""
    from featurectl.render.definitions import validate_summary
    from featurectl.sdk import FeatureStore

    ui.print(validate_summary(FeatureStore(repo).validate()))
    return 0


@command()
def export(ui: Output, repo: RepoOpt = None, debug: DebugOpt = False) -> int:
    """Print the canonical YAML of the repository's definitions (YAML and Python alike)."""
    from featurectl.render.definitions import canonical_yaml
    from featurectl.sdk import FeatureStore

    ui.raw(canonical_yaml(FeatureStore(repo).definitions.to_dict()))
    return 0


@command()
def schema(ui: Output, debug: DebugOpt = False) -> int:
    """Print the JSON Schema of the YAML definition format, for editors and linters."""
    from featurectl.core.schema import definition_schema

    ui.raw(json.dumps(definition_schema(), indent=2))
    return 0


@command()
def rules(
    ui: Output,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.text,
    debug: DebugOpt = False,
) -> int:
    """The compatibility rule catalog: id, required bump, purpose."""
    from featurectl.render.plan_data import catalog_rows

    rows = catalog_rows()
    if fmt is ReportFormat.json:
        ui.raw(json.dumps(rows, indent=2))
    elif fmt is ReportFormat.markdown:
        from featurectl.render.text import environment
        ui.raw(environment().get_template("rules.md.j2").render(rows=rows))
    else:
        from featurectl.render.definitions import rules_table
        ui.table(rules_table(rows))
    return 0
