"""A whole repository's definitions and their canonical form."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from featurectl.core.errors import Problem
from featurectl.core.outcomes import DANGLING_REFERENCE
from featurectl.core.model import (
    KINDS,
    PLURAL,
    AnyObject,
    Entity,
    FeatureService,
    FeatureView,
    Source,
    object_from_dict,
    parse_feature_ref,
)

@dataclass(frozen=True)
class Definitions:
    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, Any]:
        return getattr(self, PLURAL[kind])

    def objects(self) -> Iterator[tuple[str, AnyObject]]:
        for kind in KINDS:
            for name in sorted(self.of_kind(kind)):
                yield kind, self.of_kind(kind)[name]

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """The canonical form: kinds in a fixed order, objects sorted by name, defaults omitted."""
        return {
            PLURAL[kind]: [canonical(obj) for obj in sorted(self.of_kind(kind).values(), key=lambda o: o.name)]
            for kind in KINDS
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[dict[str, Any]]]) -> "Definitions":
        objects: dict[str, Any] = {
            PLURAL[kind]: {d["name"]: object_from_dict(kind, d) for d in data.get(PLURAL[kind], [])}
            for kind in KINDS
        }
        return cls(**objects)

    def views_using_entity(self, entity: str) -> list[str]:
        return sorted(v.name for v in self.feature_views.values() if entity in v.entities)

    def views_reading_source(self, source: str) -> list[str]:
        return sorted(v.name for v in self.feature_views.values() if v.source == source)


def canonical(obj: AnyObject) -> dict[str, Any]:
    data = obj.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("name", obj.name)
    if "tags" in data:
        data["tags"] = dict(sorted(data["tags"].items()))
    return data


def check_references(defs: Definitions, origins: dict[tuple[str, str], str] | None = None) -> list[Problem]:
    """DANGLING_REFERENCE and cross-object checks; pure, returns every problem found."""
    origins = origins or {}
    problems: list[Problem] = []

    def report(kind: str, name: str, fld: str, message: str, hint: str, rule: str | None = None) -> None:
        problems.append(
            Problem(message, file=origins.get((kind, name)), kind=kind, name=name, field=fld, hint=hint, rule=rule)
        )

    def dangling(kind: str, name: str, fld: str, target: str, hint: str, where: str = "") -> None:
        report(kind, name, fld, DANGLING_REFERENCE.message(target=target, where=where), hint, DANGLING_REFERENCE.id)

    for view in defs.feature_views.values():
        for entity in view.entities:
            if entity not in defs.entities:
                dangling("feature_view", view.name, "entities", f"entity '{entity}'",
                         f"define entity '{entity}' or fix the name; known: {_known(defs.entities)}")
        if view.source not in defs.sources:
            dangling("feature_view", view.name, "source", f"source '{view.source}'",
                     f"define source '{view.source}' or fix the name; known: {_known(defs.sources)}")
        keys = [defs.entities[e].join_key for e in view.entities if e in defs.entities]
        for feature in view.features:
            if feature.name in keys:
                report("feature_view", view.name, f"features.{feature.name}",
                       f"feature '{feature.name}' has the same name as a join key",
                       "rename the feature; join keys are columns of their own")
    for service in defs.feature_services.values():
        for ref in service.features:
            view_name, major, feature_name = parse_feature_ref(ref)
            referenced = defs.feature_views.get(view_name)
            if referenced is None:
                dangling("feature_service", service.name, "features", f"feature view '{view_name}' in '{ref}'",
                         f"fix the reference; known views: {_known(defs.feature_views)}")
            elif major is not None and major > referenced.major:
                report("feature_service", service.name, "features",
                       f"'{ref}' pins major {major}, but view '{view_name}' is at {referenced.version}",
                       f"pin a major up to {referenced.major}, or drop '@{major}' to read the applied major",
                       DANGLING_REFERENCE.id)
            elif major is not None and major < referenced.major:
                continue  # an older major: its features are checked against the registry when read
            elif feature_name != "*" and referenced.feature(feature_name) is None:
                dangling("feature_service", service.name, "features", f"feature '{feature_name}'",
                         f"fix the reference; '{view_name}' has: {', '.join(f.name for f in referenced.features)}",
                         where=f" in view '{view_name}'")
    return problems


def _known(objects: dict[str, Any]) -> str:
    return ", ".join(sorted(objects)) or "(none)"
