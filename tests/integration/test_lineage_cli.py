"""`featurectl lineage` through the real process, on a copy of example_repo (SPEC §10)."""
from __future__ import annotations

import json

from tests.integration.test_cli_workflow import ok


def test_json_is_the_spec_shape_of_the_applied_graph(run_cli):
    ok(run_cli("apply"))
    graph = json.loads(ok(run_cli("lineage", "--format", "json")).stdout)
    assert set(graph) == {"nodes", "edges"}
    assert all(set(n) == {"kind", "name", "version"} for n in graph["nodes"])
    assert all(set(e) == {"from", "to"} for e in graph["edges"])
    nodes = {(n["kind"], n["name"]): n["version"] for n in graph["nodes"]}
    assert nodes[("feature_view", "driver_stats")] == "1.0.0" and nodes[("source", "driver_hourly")] is None
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("source:driver_hourly", "feature_view:driver_stats") in edges
    assert ("feature_view:driver_stats", "feature_service:driver_ranking") in edges
    assert ("entity:driver", "feature_view:driver_stats") in edges


def test_one_objects_upstream_and_downstream(run_cli):
    ok(run_cli("apply"))
    graph = json.loads(ok(run_cli("lineage", "driver_hourly", "--format", "json")).stdout)
    names = {n["name"] for n in graph["nodes"]}
    assert names == {"driver_hourly", "driver_stats", "driver_ranking"}
    text = ok(run_cli("lineage", "feature_view:driver_stats")).stdout
    upstream, downstream = text.split("downstream:")
    assert "source driver_hourly" in upstream and "entity driver" in upstream
    assert "feature_service driver_ranking 1.0.0" in downstream


def test_dot_is_graphviz_source(run_cli):
    ok(run_cli("apply"))
    dot = ok(run_cli("lineage", "--format", "dot")).stdout
    assert dot.startswith("digraph lineage {")
    assert '"source:driver_hourly" -> "feature_view:driver_stats"' in dot
    import graphviz  # the output is valid DOT: Graphviz lays it out, with one node per object
    svg = graphviz.pipe("dot", "svg", dot.encode()).decode()
    assert svg.count('class="node"') == 9 and "<title>source:driver_hourly</title>" in svg


def test_unknown_name_is_exit_2_naming_the_known_objects(run_cli):
    ok(run_cli("apply"))
    result = ok(run_cli("lineage", "driver_statz"), 2)
    assert "driver_statz" in result.stderr and "driver_stats" in result.stderr


def test_from_files_needs_no_apply_and_says_so_when_the_registry_is_empty(run_cli, example_repo):
    graph = json.loads(ok(run_cli("lineage", "--from-files", "--format", "json")).stdout)
    assert any(n["name"] == "driver_stats" for n in graph["nodes"])
    assert not (example_repo / ".featurectl" / "registry.db").exists()
    assert "featurectl apply" in ok(run_cli("lineage")).stdout
