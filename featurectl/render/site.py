"""The static catalog site of `featurectl docs` and its machine twin, catalog.json.

One view-model per object feeds both the HTML pages and catalog.json, so the two always say
the same. Lineage drawings are laid out by Graphviz in a few batched `dot` runs (see
render.lineage.dot_to_svg): one per page would cost a process start each.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from featurectl.app.outfiles import check_directory, replacing_directory
from featurectl.core.catalog import Catalog, ObjectChange
from featurectl.core.lineage import Graph, Node, node_id
from featurectl.core.model import KINDS, object_from_dict
from featurectl.render.lineage import dot_to_svg, graph_dot, graph_to_dict
from featurectl.render.plan_data import catalog_rows

CATALOG_FORMAT_VERSION = 1
SITE_TEMPLATES = Path(__file__).parent / "templates" / "site"
NO_GRAPHVIZ = "lineage drawing unavailable: Graphviz's `dot` is not installed (apt-get install graphviz)"


@dataclass
class SiteResult:
    out: Path
    pages: int
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(SITE_TEMPLATES)), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    env.globals["constraints"] = _constraints_text
    env.globals["duration"] = _age_text
    return env


def _constraints_text(constraints: dict[str, Any] | None) -> str:
    if not constraints:
        return ""
    parts = [f"{k} {json.dumps(v)}" for k, v in constraints.items() if v is not None]
    return ", ".join(parts)


def _age_text(seconds: float) -> str:
    """An age as a reader says it: 45s, 12m, 3h 5m, 2d 4h; negative means in the future."""
    sign, rest = ("-" if seconds < 0 else ""), int(abs(seconds))
    days, hours, minutes = rest // 86400, rest % 86400 // 3600, rest % 3600 // 60
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m" if minutes else f"{sign}{rest}s"


def _history_entry(entry: ObjectChange) -> dict[str, Any]:
    change, revision = entry.change, entry.revision
    return {
        "revision": revision.revision, "applied_at": revision.applied_at.isoformat(), "actor": revision.actor,
        "git_commit": revision.git_commit, "action": change["action"],
        "from_version": change.get("from_version"), "to_version": change.get("to_version"),
        "required_bump": change.get("required_bump"), "declared_bump": change.get("declared_bump"),
        "items": [{k: item.get(k) for k in ("rule", "path", "bump", "message")} for item in change.get("items", ())],
    }


def _object_entry(kind: str, definition: dict[str, Any], graph: Graph, history: list[ObjectChange],
                  removed_at: int | None, freshness: dict[str, Any] | None) -> dict[str, Any]:
    name = definition["name"]
    id_ = node_id(kind, name)
    applied = removed_at is None
    return {
        "id": id_, "kind": kind, "name": name, "version": definition.get("version"),
        "owner": definition.get("owner"), "description": definition.get("description", ""),
        "deprecated": bool(definition.get("deprecated")), "removed": not applied, "removed_at": removed_at,
        "definition": definition,
        "upstream": [n.id for n in graph.upstream(id_)] if applied else [],
        "downstream": [n.id for n in graph.downstream(id_)] if applied else [],
        "history": [_history_entry(h) for h in history],
        "freshness": freshness,
    }


def catalog_to_dict(catalog: Catalog) -> dict[str, Any]:
    """catalog.json: every object (applied, then removed) with its definition (defaults filled
    in), lineage, history with classified changes; the whole graph and the rule catalog."""
    graph, changes = catalog.graph, catalog.changes_by_object()
    objects = []
    for kind, obj in catalog.definitions.objects():
        freshness = (catalog.freshness or {}).get(obj.name) if kind == "feature_view" else None
        objects.append(_object_entry(kind, obj.model_dump(mode="json"), graph, changes.get((kind, obj.name), []),
                                     None, freshness))
    for (kind, name), last in sorted(catalog.removed.items(), key=lambda kv: (KINDS.index(kv[0][0]), kv[0][1])):
        history = changes.get((kind, name), [])
        removed_at = next((h.revision.revision for h in reversed(history) if h.change["action"] == "remove"), None)
        objects.append(_object_entry(kind, object_from_dict(kind, last).model_dump(mode="json"), graph, history,
                                     removed_at, None))
    return {
        "format_version": CATALOG_FORMAT_VERSION,
        "project": catalog.project,
        "registry_revision": catalog.revision,
        "objects": objects,
        "lineage": graph_to_dict(graph),
        "rules": catalog_rows(),
        "freshness_note": catalog.freshness_note,
    }


def _search_text(entry: dict[str, Any]) -> str:
    d = entry["definition"]
    words = [entry["kind"], entry["kind"].replace("_", " "), entry["name"], entry["version"] or "",
             entry["owner"] or "", entry["description"], *(f"{k}:{v}" for k, v in (d.get("tags") or {}).items())]
    if entry["kind"] == "feature_view":
        words += [f["name"] for f in d["features"]]
    if entry["deprecated"]:
        words.append("deprecated")
    if entry["removed"]:
        words.append("removed")
    return " ".join(words).lower()


def _count(n: int, kind: str) -> str:
    word = kind.replace("_", " ")
    return f"{n} {word if n == 1 else 'entities' if kind == 'entity' else word + 's'}"


def _page_href(node: Node) -> str:
    return f"../{node.kind}/{node.name}.html"


def _drawings(graph: Graph, entries: list[dict[str, Any]]) -> tuple[str | None, dict[str, str], list[str]]:
    """SVG of the whole graph and of each applied object's neighbourhood, in one batch."""
    applied = [e["id"] for e in entries if not e["removed"]]
    sources = [graph_dot(graph, href=lambda n: f"{n.kind}/{n.name}.html")]
    sources += [graph_dot(graph.around(i), focus=i, href=_page_href) for i in applied]
    try:
        import graphviz
        svgs = dot_to_svg(sources)
    except graphviz.ExecutableNotFound:
        return None, {}, [NO_GRAPHVIZ]
    return svgs[0], dict(zip(applied, svgs[1:])), []


def _pages(catalog: Catalog, data: dict[str, Any], warnings: list[str]) -> Iterator[tuple[str, str]]:
    env = _environment()
    entries = data["objects"]
    whole, neighbourhoods, problems = _drawings(catalog.graph, entries)
    warnings += problems
    graph_note = problems[0] if problems else "No objects yet."
    common = {"project": catalog.project, "revision": catalog.revision, "freshness_note": catalog.freshness_note}
    counts = ", ".join(_count(len(catalog.definitions.of_kind(k)), k) for k in KINDS)
    for entry in entries:
        entry["search"] = _search_text(entry)
    yield "index.html", env.get_template("index.html.j2").render(
        **common, root="", objects=entries, counts=counts, svg=whole, graph_note=graph_note,
        removed_count=sum(e["removed"] for e in entries))
    yield "rules.html", env.get_template("rules.html.j2").render(**common, root="", rows=data["rules"])
    page = env.get_template("object.html.j2")
    known = {e["id"] for e in entries}
    for entry in entries:
        yield f"{entry['kind']}/{entry['name']}.html", page.render(
            **common, root="../", o=entry, known=known, svg=neighbourhoods.get(entry["id"]), graph_note=graph_note)
    for entry in entries:
        del entry["search"]


SITE_MARKER = "catalog.json"  # every site has one: a directory holding it is an earlier site


def check_site_directory(out: Path, flag: str = "--out") -> None:
    """Exit 2 before any work when `out` cannot take the site (see app.outfiles.check_directory)."""
    check_directory(out, flag, owned_by=SITE_MARKER)


def write_site(catalog: Catalog, out: Path, flag: str = "--out") -> SiteResult:
    """Write the site to `out`: built beside it, then put in its place whole, so an earlier
    site is replaced (pages of objects gone with it) and a failure leaves it as it was."""
    data = catalog_to_dict(catalog)
    result = SiteResult(out, 0)
    with replacing_directory(out, flag, owned_by=SITE_MARKER) as build:
        for kind in KINDS:
            (build / kind).mkdir()
        for relative, html in _pages(catalog, data, result.warnings):
            (build / relative).write_text(html, encoding="utf-8")
            result.pages += 1
        (build / SITE_MARKER).write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return result
