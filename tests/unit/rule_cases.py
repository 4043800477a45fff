"""Per-rule fixtures in the style of buf's testdata/breaking/<rule>/{previous,current}.

Each case is a current and a desired Definitions and the exact findings the diff must
produce, as (kind, name, rule, path, bump). Every rule id of the catalog, in every scope it
applies to, has at least one case (tests/unit/test_rules.py checks that).
"""
from __future__ import annotations

from dataclasses import dataclass

from featurectl.core.definitions import Definitions
from featurectl.core.model import Feature
from tests.unit.factories import (
    changed,
    entity,
    feature,
    query_source,
    service,
    source,
    view,
    with_feature,
    without_feature,
    world,
)

Finding = tuple[str, str, str, str, str]  # kind, name, rule, path, bump


@dataclass(frozen=True)
class RuleCase:
    name: str
    current: Definitions
    desired: Definitions
    expected: tuple[Finding, ...]


V = "driver_stats"
BASE = view()


def fv(rule: str, path: str, bump: str, name: str = V) -> Finding:
    return ("feature_view", name, rule, path, bump)


def view_case(name: str, current_view, desired_view, *expected: Finding) -> RuleCase:
    return RuleCase(name, world(current_view), world(desired_view), expected)


def feature_case(name: str, current_feature, desired_feature, *expected: Finding) -> RuleCase:
    """The base view holding `current_feature` as 'f', against one holding `desired_feature`."""
    cur = changed(BASE, features=[*BASE.features, current_feature]) if current_feature else BASE
    des = changed(BASE, features=[*BASE.features, desired_feature]) if desired_feature else BASE
    return view_case(name, cur, des, *expected)


def f(dtype: str = "float64", **kw) -> Feature:
    return feature("f", dtype, **kw)


def c(**constraints) -> Feature:
    return f(constraints=constraints)


CASES: list[RuleCase] = [
    # --- features added and removed -------------------------------------------------
    feature_case("feature added, nullable", None, f(),
                 fv("FEATURE_ADDED", "features.f", "minor")),
    feature_case("feature added, not nullable with a default", None, f(nullable=False, default=0.5),
                 fv("FEATURE_ADDED", "features.f", "minor")),
    feature_case("feature added, nullable with a default", None, f(default=0.0),
                 fv("FEATURE_ADDED", "features.f", "minor")),
    feature_case("feature added, required (not nullable, no default)", None, f(nullable=False),
                 fv("FEATURE_ADDED_REQUIRED", "features.f", "major")),
    feature_case("feature removed", f(), None,
                 fv("FEATURE_REMOVED", "features.f", "major")),
    view_case("feature renamed is a removal plus an addition",
              BASE, changed(BASE, features=[feature("conversion", "float32"), *BASE.features[1:]]),
              fv("FEATURE_REMOVED", "features.conv_rate", "major"),
              fv("FEATURE_ADDED", "features.conversion", "minor")),
    # --- dtypes ---------------------------------------------------------------------
    *[feature_case(f"dtype widened {old} -> {new}", f(old), f(new),
                   fv("FEATURE_DTYPE_WIDENED", "features.f.dtype", "minor"))
      for old, new in [("int32", "int64"), ("int32", "float64"), ("int64", "float64"),
                       ("float32", "float64"), ("list<int32>", "list<int64>"),
                       ("list<float32>", "list<float64>"), ("list<int64>", "list<float64>")]],
    *[feature_case(f"dtype changed {old} -> {new}", f(old), f(new),
                   fv("FEATURE_DTYPE_CHANGED", "features.f.dtype", "major"))
      for old, new in [("int64", "int32"), ("float64", "float32"), ("float64", "int64"),
                       ("int32", "float32"), ("int64", "string"), ("bool", "int32"),
                       ("list<int64>", "list<int32>"), ("int64", "list<int64>"),
                       ("list<int32>", "int64"), ("list<string>", "list<bytes>")]],
    # --- nullability and defaults ---------------------------------------------------
    feature_case("nullable -> not nullable", f(), f(nullable=False),
                 fv("FEATURE_NULLABILITY_CHANGED", "features.f.nullable", "major")),
    feature_case("not nullable -> nullable", f(nullable=False), f(),
                 fv("FEATURE_NULLABILITY_CHANGED", "features.f.nullable", "major")),
    feature_case("default changed", f(default=0.0), f(default=1.0),
                 fv("FEATURE_DEFAULT_CHANGED", "features.f.default", "minor")),
    feature_case("default added", f(), f(default=1.0),
                 fv("FEATURE_DEFAULT_CHANGED", "features.f.default", "minor")),
    feature_case("default removed", f(default=1.0), f(),
                 fv("FEATURE_DEFAULT_CHANGED", "features.f.default", "minor")),
    # --- constraints ----------------------------------------------------------------
    feature_case("min lowered", c(min=0), c(min=-1),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.min", "major")),
    feature_case("min raised", c(min=0), c(min=1),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.min", "minor")),
    feature_case("max raised", c(max=1), c(max=2),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.max", "major")),
    feature_case("max lowered", c(max=1), c(max=0.5),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.max", "minor")),
    feature_case("min added beside a max", c(max=1), c(min=0, max=1),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.min", "minor")),
    feature_case("max removed, min kept", c(min=0, max=1), c(min=0),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.max", "major")),
    feature_case("constraints added", f(), c(min=0, max=1),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.min", "minor"),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.max", "minor")),
    feature_case("constraints removed", c(min=0, max=1), f(),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.min", "major"),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.max", "major")),
    feature_case("min lowered and max lowered at once", c(min=0, max=10), c(min=-1, max=5),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.min", "major"),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.max", "minor")),
    feature_case("allowed values constraint added", f("string"), f("string", constraints={"allowed": ["a"]}),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.allowed", "minor")),
    feature_case("allowed values constraint removed", f("string", constraints={"allowed": ["a"]}), f("string"),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.allowed", "major")),
    feature_case("allowed values gained",
                 f("string", constraints={"allowed": ["a"]}), f("string", constraints={"allowed": ["a", "b"]}),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.allowed", "major")),
    feature_case("allowed values lost",
                 f("string", constraints={"allowed": ["a", "b"]}), f("string", constraints={"allowed": ["a"]}),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.allowed", "minor")),
    feature_case("allowed values gained and lost at once",
                 f("string", constraints={"allowed": ["a", "b"]}), f("string", constraints={"allowed": ["a", "c"]}),
                 fv("FEATURE_CONSTRAINT_RELAXED", "features.f.constraints.allowed", "major"),
                 fv("FEATURE_CONSTRAINT_TIGHTENED", "features.f.constraints.allowed", "minor")),
    feature_case("allowed values reordered is no change",
                 f("string", constraints={"allowed": ["a", "b"]}), f("string", constraints={"allowed": ["b", "a"]})),
    # --- view-level rules -----------------------------------------------------------
    RuleCase("entities changed",
             world(BASE), world(entity("rider"), view(entities=["driver", "rider"])),
             (fv("ENTITIES_CHANGED", "entities", "major"),)),
    view_case("ttl shortened", view(ttl="2d"), view(ttl="1d"), fv("TTL_DECREASED", "ttl", "major")),
    view_case("ttl lengthened", view(ttl="1d"), view(ttl="36h"), fv("TTL_INCREASED", "ttl", "minor")),
    view_case("ttl 0 (infinite) -> 1d is a decrease", view(ttl=0), view(ttl="1d"),
              fv("TTL_DECREASED", "ttl", "major")),
    view_case("ttl 1d -> 0 (infinite) is an increase", view(ttl="1d"), view(ttl="0"),
              fv("TTL_INCREASED", "ttl", "minor")),
    view_case("ttl respelled (7d -> 1w) is no change", view(ttl="7d"), view(ttl="1w")),
    RuleCase("view reads another source",
             world(source("other")), world(source("other"), view(source="other")),
             (fv("SOURCE_CHANGED", "source", "minor"),)),
    RuleCase("source definition changed: the source and every view reading it",
             world(view("second")), world(view("second"), source(path="data/v2/*.parquet")),
             (("source", "driver_hourly", "SOURCE_CHANGED", "path", "minor"),
              fv("SOURCE_CHANGED", "source", "minor"),
              fv("SOURCE_CHANGED", "source", "minor", name="second"))),
    RuleCase("source timestamp fields changed",
             world(), world(source(created_timestamp_field="created")),
             (("source", "driver_hourly", "SOURCE_CHANGED", "created_timestamp_field", "minor"),
              fv("SOURCE_CHANGED", "source", "minor"))),
    RuleCase("file source became a query source",
             world(), world(query_source()),
             (("source", "driver_hourly", "SOURCE_CHANGED", "path", "minor"),
              ("source", "driver_hourly", "SOURCE_CHANGED", "query", "minor"),
              fv("SOURCE_CHANGED", "source", "minor"))),
    view_case("online disabled", view(), view(online=False), fv("ONLINE_DISABLED", "online", "major")),
    view_case("online enabled", view(online=False), view(), fv("ONLINE_ENABLED", "online", "minor")),
    # --- metadata in every scope ----------------------------------------------------
    view_case("view description, owner, tags, freshness_sla, deprecated changed",
              view(), view(description="new", owner="other@example.com", tags={"team": "x"},
                           freshness_sla="2h", deprecated=True),
              *(fv("METADATA_CHANGED", key, "patch")
                for key in ("description", "owner", "tags", "freshness_sla", "deprecated"))),
    view_case("feature description changed",
              BASE, with_feature(BASE, "conv_rate", description="Conversion rate"),
              fv("METADATA_CHANGED", "features.conv_rate.description", "patch")),
    RuleCase("entity description changed", world(), world(entity(description="A driver")),
             (("entity", "driver", "METADATA_CHANGED", "description", "patch"),)),
    RuleCase("source description changed (views unaffected)", world(), world(source(description="Hourly")),
             (("source", "driver_hourly", "METADATA_CHANGED", "description", "patch"),)),
    RuleCase("service owner and tags changed", world(), world(service(owner="x@example.com", tags={"a": "b"})),
             (("feature_service", "driver_ranking", "METADATA_CHANGED", "owner", "patch"),
              ("feature_service", "driver_ranking", "METADATA_CHANGED", "tags", "patch"))),
    # --- services and entities ------------------------------------------------------
    RuleCase("service lost a feature reference",
             world(service(features=["driver_stats:conv_rate", "driver_stats:trips"])), world(),
             (("feature_service", "driver_ranking", "SERVICE_FEATURE_REMOVED",
               "features.driver_stats:trips", "major"),)),
    RuleCase("service gained a feature reference",
             world(), world(service(features=["driver_stats:conv_rate", "driver_stats:acc_rate"])),
             (("feature_service", "driver_ranking", "SERVICE_FEATURE_ADDED",
               "features.driver_stats:acc_rate", "minor"),)),
    RuleCase("service switched to a wildcard",
             world(), world(service(features=["driver_stats:*"])),
             (("feature_service", "driver_ranking", "SERVICE_FEATURE_REMOVED",
               "features.driver_stats:conv_rate", "major"),
              ("feature_service", "driver_ranking", "SERVICE_FEATURE_ADDED",
               "features.driver_stats:*", "minor"))),
    RuleCase("entity join_key changed", world(), world(entity(join_key="driver_key")),
             (("entity", "driver", "ENTITY_KEY_CHANGED", "join_key", "major"),)),
    RuleCase("entity dtype changed", world(), world(entity(dtype="string")),
             (("entity", "driver", "ENTITY_KEY_CHANGED", "dtype", "major"),)),
    # --- several rules on one view --------------------------------------------------
    view_case("several changes on one view, each classified",
              BASE, changed(without_feature(with_feature(BASE, "trips", dtype="float64"), "acc_rate"),
                            ttl="2d", online=False),
              fv("TTL_INCREASED", "ttl", "minor"), fv("ONLINE_DISABLED", "online", "major"),
              fv("FEATURE_REMOVED", "features.acc_rate", "major"),
              fv("FEATURE_DTYPE_WIDENED", "features.trips.dtype", "minor")),
]
