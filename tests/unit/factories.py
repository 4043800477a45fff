"""Small factories for model objects, so that tests read as (current, desired) pairs.

Every factory has sensible defaults and takes overrides as user-facing values
(`ttl="2d"`, `dtype="list<int64>"`); `defs(...)` builds a Definitions in which a later
object of the same kind and name replaces an earlier one, so `world(view(ttl="2d"))`
is "the standard repository, with the view's ttl changed".
"""
from __future__ import annotations

from typing import Any

from featurectl.core.definitions import Definitions
from featurectl.core.model import (
    PLURAL,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    QuerySource,
)

OWNER = "rides-ml@example.com"


def entity(name: str = "driver", **overrides: Any) -> Entity:
    fields = {"name": name, "join_key": f"{name}_id", "dtype": "int64"}
    return Entity(**{**fields, **overrides})


def source(name: str = "driver_hourly", **overrides: Any) -> FileSource:
    fields = {"name": name, "path": f"data/{name}.parquet", "timestamp_field": "event_timestamp"}
    return FileSource(**{**fields, **overrides})


def query_source(name: str = "driver_hourly", **overrides: Any) -> QuerySource:
    fields = {"name": name, "query": "SELECT * FROM read_parquet('data/x.parquet')",
              "timestamp_field": "event_timestamp"}
    return QuerySource(**{**fields, **overrides})


def feature(name: str = "conv_rate", dtype: str = "float32", **overrides: Any) -> Feature:
    return Feature(**{"name": name, "dtype": dtype, **overrides})


def default_features() -> list[Feature]:
    return [feature("conv_rate", "float32"), feature("acc_rate", "float32"), feature("trips", "int64")]


def view(name: str = "driver_stats", **overrides: Any) -> FeatureView:
    fields = {
        "name": name, "version": "1.0.0", "entities": ["driver"], "source": "driver_hourly",
        "owner": OWNER, "ttl": "1d", "features": default_features(),
    }
    return FeatureView(**{**fields, **overrides})


def service(name: str = "driver_ranking", **overrides: Any) -> FeatureService:
    fields = {"name": name, "version": "1.0.0", "owner": OWNER, "features": ["driver_stats:conv_rate"]}
    return FeatureService(**{**fields, **overrides})


def changed(obj: Any, **changes: Any) -> Any:
    """A copy of `obj` with some fields changed, validated like a user's definition."""
    return type(obj).model_validate({**obj.model_dump(mode="json"), **changes})


def with_feature(v: FeatureView, name: str, **changes: Any) -> FeatureView:
    """`v` with feature `name` changed (or, when `v` lacks it, added with `changes`)."""
    if v.feature(name) is None:
        return changed(v, features=[*v.features, feature(name, **changes)])
    features = [changed(f, **changes) if f.name == name else f for f in v.features]
    return changed(v, features=features)


def without_feature(v: FeatureView, name: str) -> FeatureView:
    return changed(v, features=[f for f in v.features if f.name != name])


def defs(*objects: Any) -> Definitions:
    """Definitions holding `objects`; a later object replaces an earlier one of the same name."""
    by_kind: dict[str, dict[str, Any]] = {plural: {} for plural in PLURAL.values()}
    for obj in objects:
        by_kind[PLURAL[obj.kind]][obj.name] = obj
    return Definitions(**by_kind)


def world(*overrides: Any) -> Definitions:
    """The standard small repository (one entity, source, view and service), with overrides."""
    return defs(entity(), source(), view(), service(), *overrides)
