"""Registry reads as output: `list` (a table), `show` (canonical YAML and its versions),
`history` (text, and the JSON array of SPEC §4)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rich.markup import escape

from featurectl.render.symbols import SYMBOLS
from featurectl.render.tables import TableView
from featurectl.render.values import dumps, json_value, timestamp_text

if TYPE_CHECKING:
    from featurectl.app.reads import AppliedObject, ObjectDetail
    from featurectl.registry.base import Revision


def _details(kind: str, obj: Any) -> str:
    if kind == "entity":
        return f"join_key {obj.join_key} ({obj.dtype})"
    if kind == "source":
        return getattr(obj, "path", None) or "query"
    if kind == "feature_view":
        flags = "" if obj.online else ", offline only"
        flags += ", deprecated" if obj.deprecated else ""
        return f"{len(obj.features)} features, entities {', '.join(obj.entities)}{flags}"
    return f"{len(obj.features)} feature references"


def objects_table(objects: Sequence["AppliedObject"]) -> TableView:
    return TableView(("kind", "name", "version", "details"),
                     [(o.kind, o.name, o.version or "", _details(o.kind, o.definition)) for o in objects],
                     wrap=frozenset({"details"}))


EMPTY_REGISTRY = "The registry holds no objects yet; run `featurectl apply`."


def object_yaml(detail: "ObjectDetail") -> str:
    """The definition as canonical YAML under a `# kind name` line, then its versions; text
    as it is (no escapes of non-ASCII), for people and for `yaml.safe_load`."""
    import yaml

    versions = "; ".join(f"{v.version or '-'} @ revision {v.revision}{' (removed)' if v.definition is None else ''}"
                         for v in detail.versions)
    body = yaml.safe_dump(detail.definition, sort_keys=False, allow_unicode=True)
    return f"# {detail.kind} {detail.name}\n{body}# versions: {versions}\n"


def history_records(revisions: Sequence["Revision"]) -> list[dict[str, Any]]:
    """SPEC §4: oldest first, each `revision`, `applied_at`, `actor`, `changes` (as in the
    plan), and the git commit the apply ran at."""
    return [{"revision": r.revision, "applied_at": timestamp_text(r.applied_at), "actor": r.actor,
             "git_commit": r.git_commit, "changes": json_value(r.changes)} for r in revisions]


def history_json(revisions: Sequence["Revision"]) -> str:
    return dumps(history_records(revisions))


NO_REVISIONS = "No revisions yet."


def _change_line(change: dict[str, Any]) -> str:
    versions = ""
    if change.get("from_version") or change.get("to_version"):
        versions = f" {change.get('from_version') or ''}->{change.get('to_version') or ''}"
    return f"  {SYMBOLS.get(change['action'], '?')} {change['kind']} {escape(change['name'])}{versions}"


def history_text(revisions: Sequence["Revision"]) -> str:
    """One bold line per revision (rich markup), one line per changed object under it."""
    if not revisions:
        return NO_REVISIONS + "\n"
    lines = []
    for r in revisions:
        commit = f" git {r.git_commit[:12]}" if r.git_commit else ""
        lines.append(f"[bold]revision {r.revision}[/bold]  {r.applied_at.isoformat()}  {escape(r.actor)}{commit}")
        lines += [_change_line(c) for c in r.changes]
    return "\n".join(lines) + "\n"
