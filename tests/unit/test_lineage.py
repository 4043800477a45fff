"""The lineage graph in core: which edges exist, upstream/downstream walks, name lookup."""
from __future__ import annotations

import pytest

from featurectl.core.errors import UsageError
from featurectl.core.lineage import lineage_graph
from tests.unit.factories import defs, entity, service, source, view


def world():
    return defs(
        entity("driver"), entity("customer"), source("driver_hourly"), source("trips"),
        view("driver_stats"),
        view("affinity", entities=["driver", "customer"], source="trips"),
        service("ranking", features=["driver_stats:conv_rate", "affinity:*"]),
        service("driver", features=["driver_stats:*"]),  # same name as the entity on purpose
    )


def test_edges_follow_the_data_from_inputs_to_services():
    graph = lineage_graph(world())
    assert {(e.source, e.target) for e in graph.edges} == {
        ("source:driver_hourly", "feature_view:driver_stats"),
        ("entity:driver", "feature_view:driver_stats"),
        ("source:trips", "feature_view:affinity"),
        ("entity:driver", "feature_view:affinity"),
        ("entity:customer", "feature_view:affinity"),
        ("feature_view:driver_stats", "feature_service:ranking"),
        ("feature_view:affinity", "feature_service:ranking"),
        ("feature_view:driver_stats", "feature_service:driver"),
    }
    assert [(n.kind, n.version) for n in graph.nodes if n.name == "driver_stats"] == [("feature_view", "1.0.0")]
    assert graph.node("source:trips").version is None


def test_a_service_reading_two_features_of_one_view_gives_one_edge():
    graph = lineage_graph(defs(entity(), source(), view(),
                               service(features=["driver_stats:conv_rate", "driver_stats:trips"])))
    assert [(e.source, e.target) for e in graph.edges if e.target.startswith("feature_service")] == [
        ("feature_view:driver_stats", "feature_service:driver_ranking")]


def test_upstream_and_downstream_are_transitive():
    graph = lineage_graph(world())
    assert [n.id for n in graph.upstream("feature_service:ranking")] == [
        "feature_view:affinity", "feature_view:driver_stats", "entity:customer", "entity:driver",
        "source:trips", "source:driver_hourly"]
    assert {n.id for n in graph.downstream("source:trips")} == {"feature_view:affinity", "feature_service:ranking"}
    assert graph.downstream("feature_service:ranking") == []


def test_around_keeps_only_the_objects_lineage():
    around = lineage_graph(world()).around("feature_view:affinity")
    assert {n.id for n in around.nodes} == {"feature_view:affinity", "source:trips", "entity:driver",
                                            "entity:customer", "feature_service:ranking"}
    # driver -> driver_stats is not on any path through affinity
    assert ("entity:driver", "feature_view:driver_stats") not in {(e.source, e.target) for e in around.edges}
    assert len(around.edges) == 4


def test_resolve_takes_a_name_or_kind_and_name():
    graph = lineage_graph(world())
    assert graph.resolve("affinity") == "feature_view:affinity"
    assert graph.resolve("feature_service:driver") == "feature_service:driver"
    with pytest.raises(UsageError, match="more than one object") as clash:
        graph.resolve("driver")
    assert "entity:driver" in clash.value.hint
    with pytest.raises(UsageError, match="no object named 'nope'") as unknown:
        graph.resolve("nope")
    assert "driver_stats" in unknown.value.hint


def test_an_empty_repository_has_an_empty_graph():
    graph = lineage_graph(defs())
    assert graph.nodes == () and graph.edges == ()
