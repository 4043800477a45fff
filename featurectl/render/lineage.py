"""The lineage graph as JSON (SPEC §10), text, Graphviz DOT and inline SVG."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from featurectl.core.lineage import Graph, Node

# One look per kind, so a reader tells an input from a served object at a glance.
_NODE_STYLE = {
    "entity": {"shape": "ellipse", "fillcolor": "#fdf2d0"},
    "source": {"shape": "cylinder", "fillcolor": "#e3eefc"},
    "feature_view": {"shape": "box", "fillcolor": "#e4f5e4"},
    "feature_service": {"shape": "component", "fillcolor": "#f3e6f7"},
}
_SVG_START = re.compile(r"<svg\b")


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": [{"kind": n.kind, "name": n.name, "version": n.version} for n in graph.nodes],
        "edges": [{"from": e.source, "to": e.target} for e in graph.edges],
    }


def _label(node: Node) -> str:
    return f"{node.kind} {node.name}" + (f" {node.version}" if node.version else "")


def graph_text(graph: Graph, focus: str | None = None) -> str:
    """The whole graph: each object with what it reads (<-) and what reads it (->).
    With a focus: that object, then its whole upstream and downstream."""
    if focus is not None:
        node = graph.node(focus)
        lines = [_label(node), "upstream:"]
        lines += [f"  {_label(n)}" for n in graph.upstream(focus)] or ["  (none)"]
        lines.append("downstream:")
        lines += [f"  {_label(n)}" for n in graph.downstream(focus)] or ["  (none)"]
        return "\n".join(lines)
    if not graph.nodes:
        return "No objects."
    lines = []
    for node in graph.nodes:
        lines.append(_label(node))
        lines += [f"  <- {p}" for p in graph.parents(node.id)]
        lines += [f"  -> {c}" for c in graph.children(node.id)]
    return "\n".join(lines)


def graph_dot(graph: Graph, *, focus: str | None = None, href: Callable[[Node], str] | None = None,
              name: str = "lineage") -> str:
    """Graphviz source, left to right as data flows; `href` turns nodes into links."""
    import graphviz
    from graphviz.quoting import quote

    dot = graphviz.Digraph(name, graph_attr={"rankdir": "LR", "bgcolor": "transparent", "mclimit": "0.5"},
                           node_attr={"style": "filled,rounded", "fontname": "Helvetica", "fontsize": "11",
                                      "color": "#667085"},
                           edge_attr={"color": "#98a2b3", "arrowsize": "0.7"})
    for node in graph.nodes:
        attrs = dict(_NODE_STYLE[node.kind])
        if node.id == focus:
            attrs.update(penwidth="2.5", color="#1d2939")
        if href is not None:
            attrs.update(URL=href(node), target="_top", tooltip=f"{node.kind} {node.name}")
        label = node.name + (f"\n{node.version}" if node.version else "")
        dot.node(node.id, label, **attrs)
    for edge in graph.edges:
        # Written out, not dot.edge(): its "a:b" means node a, port b; ours are node ids.
        dot.body.append(f"\t{quote(edge.source)} -> {quote(edge.target)}\n")
    return dot.source


def dot_to_svg(sources: Sequence[str], workers: int = 2) -> list[str]:
    """Lay out many graphs with few `dot` processes: one process per chunk, since starting
    one per graph would dominate for a thousand pages. Returns inline <svg> elements (no XML
    prolog), in order. Raises graphviz.ExecutableNotFound when `dot` is not installed."""
    if not sources:
        return []
    size = -(-len(sources) // workers)
    chunks = [sources[i:i + size] for i in range(0, len(sources), size)]
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:  # `dot` runs outside the GIL
        parts = list(pool.map(_layout_chunk, chunks))
    return [svg for part in parts for svg in part]


def _layout_chunk(sources: Sequence[str]) -> list[str]:
    import graphviz

    output = graphviz.pipe("dot", "svg", "\n".join(sources).encode(), quiet=True).decode()
    starts = [m.start() for m in _SVG_START.finditer(output)]
    svgs = [output[s:output.index("</svg>", s) + len("</svg>")] for s in starts]
    if len(svgs) != len(sources):
        raise RuntimeError(f"graphviz returned {len(svgs)} drawings for {len(sources)} graphs")
    return svgs
