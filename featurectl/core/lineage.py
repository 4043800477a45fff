"""The lineage graph of a repository's objects, as plain data.

Nodes are the objects (kind, name, version); edges point the way data flows:
source -> feature_view (the view reads it), entity -> feature_view (the view is keyed by it)
and feature_view -> feature_service (the service serves its features). Entities are part of
the graph because a change to an entity (ENTITY_CHANGED_IN_USE) reaches every view keyed by
it, exactly like a source change reaches its readers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError, did_you_mean
from featurectl.core.model import KINDS, parse_ref


def node_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


@dataclass(frozen=True)
class Node:
    kind: str
    name: str
    version: str | None  # entities and sources carry no version

    @property
    def id(self) -> str:
        return node_id(self.kind, self.name)


@dataclass(frozen=True)
class Edge:
    source: str  # node id, upstream end
    target: str  # node id, downstream end


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]  # in KINDS order, then by name
    edges: tuple[Edge, ...]  # sorted, no duplicates
    _parents: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _children: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _index: dict[str, Node] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, nodes: Iterable[Node], edges: Iterable[Edge]) -> "Graph":
        order: dict[str, int] = {kind: i for i, kind in enumerate(KINDS)}
        nodes = tuple(sorted(nodes, key=lambda n: (order[n.kind], n.name)))
        edges = tuple(sorted(set(edges), key=lambda e: (e.source, e.target)))
        parents: dict[str, list[str]] = defaultdict(list)
        children: dict[str, list[str]] = defaultdict(list)
        for edge in edges:
            parents[edge.target].append(edge.source)
            children[edge.source].append(edge.target)
        return cls(nodes, edges, {k: tuple(v) for k, v in parents.items()},
                   {k: tuple(v) for k, v in children.items()}, {n.id: n for n in nodes})

    def node(self, id_: str) -> Node:
        return self._index[id_]

    def parents(self, id_: str) -> tuple[str, ...]:
        return self._parents.get(id_, ())

    def children(self, id_: str) -> tuple[str, ...]:
        return self._children.get(id_, ())

    def upstream(self, id_: str) -> list[Node]:
        """Every object the given one depends on, nearest first."""
        return [self.node(i) for i in _walk(id_, self.parents)]

    def downstream(self, id_: str) -> list[Node]:
        """Every object that depends on the given one, nearest first."""
        return [self.node(i) for i in _walk(id_, self.children)]

    def around(self, id_: str) -> "Graph":
        """The object with its whole upstream and downstream, and the edges between them."""
        keep = {id_, *(n.id for n in self.upstream(id_)), *(n.id for n in self.downstream(id_))}
        return Graph.of((self.node(i) for i in keep),
                        (Edge(i, c) for i in keep for c in self.children(i) if c in keep))

    def resolve(self, name: str) -> str:
        """The node id for NAME or KIND:NAME; a UsageError names the known objects otherwise
        (with the nearest spelling, when one is close)."""
        if name in self._index:
            return name
        matches = [n.id for n in self.nodes if n.name == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UsageError(f"'{name}' names more than one object: {', '.join(matches)}",
                             hint="write KIND:NAME, e.g. " + matches[0])
        kind, sep, bare = name.partition(":")
        if sep and kind not in KINDS:
            raise UsageError(f"'{name}': unknown kind '{kind}'{did_you_mean(kind, KINDS)}",
                             hint=f"write NAME or KIND:NAME with KIND one of {', '.join(KINDS)}")
        kin = [n for n in self.nodes if n.kind == kind] if sep else list(self.nodes)
        known = ", ".join(n.id if sep else n.name for n in kin) or "(none)"
        what = f"no {kind.replace('_', ' ')} named '{bare}'" if sep else f"no object named '{name}'"
        raise UsageError(f"{what} in the lineage graph{did_you_mean(bare if sep else name, [n.name for n in kin])}",
                         hint=f"known: {known}" if self.nodes else "the graph is empty: run `featurectl apply` "
                                                                  "first, or pass --from-files")


def _walk(start: str, step) -> list[str]:
    """Breadth-first from `start` (not included), each node once."""
    seen, order, frontier = {start}, [], [start]
    while frontier:
        nxt = []
        for current in frontier:
            for other in step(current):
                if other not in seen:
                    seen.add(other)
                    order.append(other)
                    nxt.append(other)
        frontier = nxt
    return order


def lineage_graph(defs: Definitions) -> Graph:
    """The graph of a set of definitions. References to missing objects are left out (a
    valid repository has none; an applied registry never holds any)."""
    nodes = [Node(kind, obj.name, getattr(obj, "version", None)) for kind, obj in defs.objects()]
    present = {n.id for n in nodes}
    edges = []
    for view in defs.feature_views.values():
        target = node_id("feature_view", view.name)
        edges.append(Edge(node_id("source", view.source), target))
        edges += [Edge(node_id("entity", entity), target) for entity in view.entities]
    for service in defs.feature_services.values():
        target = node_id("feature_service", service.name)
        edges += [Edge(node_id("feature_view", parse_ref(ref)[0]), target) for ref in service.features]
    return Graph.of(nodes, (e for e in edges if e.source in present and e.target in present))
