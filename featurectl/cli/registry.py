"""Reading the registry: list, show, history."""
from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Optional

import typer
import yaml

from featurectl.cli import output
from featurectl.cli.main import command
from featurectl.cli.options import DebugOpt, RepoOpt, store
from featurectl.core.errors import UsageError
from featurectl.core.model import KINDS, PLURAL


class HistoryFormat(str, Enum):
    text = "text"
    json = "json"


@command("list")
def list_(
    kind: Annotated[Optional[str], typer.Argument(
        help="Only this kind: entities, sources, feature_views or feature_services (singular and "
             "hyphenated forms work too).", show_default=False)] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List the applied objects of the registry."""
    from rich.table import Table

    wanted = _kind(kind) if kind else None
    defs = store(repo).applied()
    table = Table("kind", "name", "version", "details", box=None, pad_edge=False)
    for k in KINDS:
        if wanted is not None and k != wanted:
            continue
        for name in sorted(defs.of_kind(k)):
            obj = defs.of_kind(k)[name]
            table.add_row(k, name, getattr(obj, "version", "") or "", output.escape(_details(k, obj)))
    if not table.rows:
        output.out().print("The registry holds no objects yet; run `featurectl apply`.")
    else:
        output.out().print(table)
    return 0


_KIND_ALIASES = {"views": "feature_view", "view": "feature_view", "services": "feature_service",
                 "service": "feature_service"}


def _kind(text: str) -> str:
    name = text.strip().lower().replace("-", "_")
    for kind in KINDS:
        if name in (kind, PLURAL[kind]):
            return kind
    if name in _KIND_ALIASES:
        return _KIND_ALIASES[name]
    raise UsageError(f"unknown kind {text!r}", hint="use entities, sources, feature_views or feature_services")


def _details(kind: str, obj) -> str:
    if kind == "entity":
        return f"join_key {obj.join_key} ({obj.dtype})"
    if kind == "source":
        return getattr(obj, "path", None) or "query"
    if kind == "feature_view":
        flags = "" if obj.online else ", offline only"
        flags += ", deprecated" if obj.deprecated else ""
        return f"{len(obj.features)} features, entities {', '.join(obj.entities)}{flags}"
    return f"{len(obj.features)} feature references"


@command()
def show(
    name: Annotated[str, typer.Argument(help="Object name (any kind).")],
    version: Annotated[Optional[str], typer.Option("--version", help="An earlier applied version.")] = None,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Show an applied object's definition (as canonical YAML), optionally at an earlier version."""
    fs = store(repo)
    defs = fs.applied()
    matches = [k for k in KINDS if name in defs.of_kind(k)]
    kinds = matches or [k for k in KINDS if fs.registry.versions(k, name)]
    if not kinds:
        raise UsageError(f"no applied object named '{name}'", hint="see `featurectl list`")
    kind = kinds[0]
    versions = fs.registry.versions(kind, name)
    if version is None:
        definition = next((v.definition for v in reversed(versions) if v.definition is not None), None)
    else:
        found = [v for v in versions if v.version == version and v.definition is not None]
        if not found:
            known = ", ".join(dict.fromkeys(v.version for v in versions if v.version)) or "(unversioned)"
            raise UsageError(f"{kind} '{name}' has no applied version {version}", hint=f"applied versions: {known}")
        definition = found[-1].definition
    output.print_raw(f"# {kind} {name}\n" + yaml.safe_dump(definition, sort_keys=False))
    history = [f"{v.version or '-'} @ revision {v.revision}{' (removed)' if v.definition is None else ''}" for v in versions]
    output.print_raw("# versions: " + "; ".join(history))
    return 0


@command()
def history(
    name: Annotated[Optional[str], typer.Argument(help="Only revisions that changed this object.")] = None,
    fmt: Annotated[HistoryFormat, typer.Option("--format", help="Output format.")] = HistoryFormat.text,
    repo: RepoOpt = None,
    debug: DebugOpt = False,
) -> int:
    """The registry's revisions, oldest first: when, who, which git commit, what changed."""
    revisions = store(repo).registry.history(name)
    if fmt is HistoryFormat.json:
        output.print_raw(json.dumps([{
            "revision": r.revision, "applied_at": r.applied_at.isoformat(), "actor": r.actor,
            "git_commit": r.git_commit, "changes": r.changes,
        } for r in revisions], indent=2, default=str))
        return 0
    if not revisions:
        output.out().print("No revisions yet.")
    for r in revisions:
        commit = f" git {r.git_commit[:12]}" if r.git_commit else ""
        output.out().print(f"[bold]revision {r.revision}[/bold]  {r.applied_at.isoformat()}  {output.escape(r.actor)}{commit}")
        for c in r.changes:
            version = f" {c.get('from_version') or ''}->{c.get('to_version') or ''}" if c.get("to_version") or c.get("from_version") else ""
            output.out().print(f"  {dict(add='+', update='~', remove='-').get(c['action'], '?')} {c['kind']} {output.escape(c['name'])}{version}")
    return 0
