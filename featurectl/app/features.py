"""Resolving feature references ('view:feature', 'view:*', 'view@N:feature', a service)
against definitions. A pinned major reads the definition last applied under that major
(`applied_majors`), one code path for get-online, the SDK, services and the server."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError, did_you_mean
from featurectl.core.model import FeatureView, object_from_dict, parse_feature_ref
from featurectl.core.naming import check_output_names, output_name

if TYPE_CHECKING:
    from featurectl.online.base import OnlineTable
    from featurectl.registry.base import Registry

# (view name, major) -> the definition last applied under that major
Majors = Mapping[tuple[str, int], FeatureView]


def current_definitions(registry: Registry) -> tuple[int, Definitions]:
    """The registry's revision and the definitions applied at it."""
    snapshot = registry.read()
    return snapshot.revision, Definitions.from_dict(snapshot.definitions)


@dataclass(frozen=True)
class Selection:
    """Requested features grouped by view (and major), in request order, with output names."""

    views: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    # (view label, feature, output column); the label is the view's name, or `name@N` for a
    # major other than the applied one
    output_names: tuple[tuple[str, str, str], ...]


def online_table(project: str, defs: Definitions, view: FeatureView) -> OnlineTable:
    """Where the online store keeps `view`: its key columns and features with their dtypes."""
    from featurectl.online.base import OnlineTable

    return OnlineTable(
        project=project, view=view.name, major=view.major,
        join_keys=tuple((defs.entities[e].join_key, defs.entities[e].dtype) for e in view.entities),
        features=tuple((f.name, f.dtype) for f in view.features), ttl_seconds=view.ttl,
    )


def view_label(view: FeatureView, defs: Definitions) -> str:
    current = defs.feature_views.get(view.name)
    return view.name if current is not None and current.major == view.major else f"{view.name}@{view.major}"


def applied_majors(registry, defs: Definitions) -> dict[tuple[str, int], FeatureView]:
    """Per applied view and major, the definition last applied under that major (the
    registry's object versions), so `view@N:...` reads an older major side by side."""
    majors: dict[tuple[str, int], FeatureView] = {}
    for name, view in defs.feature_views.items():
        majors[(name, view.major)] = view
        for version in registry.versions("feature_view", name):
            if version.definition is not None:
                older = object_from_dict("feature_view", version.definition)
                if isinstance(older, FeatureView) and older.major != view.major:
                    majors[(name, older.major)] = older
    return majors


def resolve(defs: Definitions, refs: list[str] | None, service: str | None = None,
            full_feature_names: bool = False, reserved: tuple[str, ...] = (),
            majors: Majors | None = None) -> Selection:
    wanted: list[str] = []
    if service:
        svc = defs.feature_services.get(service)
        if svc is None:
            raise UsageError(f"unknown feature service '{service}'{did_you_mean(service, defs.feature_services)}",
                             hint=f"applied services: {', '.join(sorted(defs.feature_services)) or '(none)'}",
                             code="UNKNOWN_SERVICE")
        wanted.extend(svc.features)
    wanted.extend(refs or [])
    picked: dict[tuple[str, str], FeatureView] = {}  # (label, feature) -> view, in request order
    for ref in wanted:
        try:
            view_name, major, feature = parse_feature_ref(ref)
        except ValueError as exc:
            raise UsageError(str(exc), code="BAD_REQUEST") from None
        view = _view(defs, view_name, major, majors)
        label = view_label(view, defs)
        if feature == "*":
            picked.update(((label, f.name), view) for f in view.features if (label, f.name) not in picked)
        elif view.feature(feature) is None:
            raise UsageError(f"unknown feature '{feature}' in feature view '{label}' ({view.version})"
                             f"{did_you_mean(feature, [f.name for f in view.features])}",
                             hint=f"'{label}' has: {', '.join(f.name for f in view.features)}",
                             code="UNKNOWN_FEATURE")
        else:
            picked.setdefault((label, feature), view)
    if not picked:
        raise UsageError("no features requested", hint="pass --features view:feature[,view:*] or --service NAME")
    by_view: dict[str, tuple[FeatureView, list[str]]] = {}
    for (label, feature), view in picked.items():
        by_view.setdefault(label, (view, []))[1].append(feature)
    names = [(label, f, output_name(label, f, full_feature_names)) for label, f in picked]
    check_output_names(names, reserved, full_feature_names)
    return Selection(views=tuple((view, tuple(fs)) for view, fs in by_view.values()), output_names=tuple(names))


def _view(defs: Definitions, name: str, major: int | None, majors: Majors | None) -> FeatureView:
    view = defs.feature_views.get(name)
    if view is None:
        raise UsageError(f"unknown feature view '{name}'{did_you_mean(name, defs.feature_views)}",
                         hint=f"applied views: {', '.join(sorted(defs.feature_views)) or '(none)'}; "
                              "run `featurectl apply` first if it is new", code="UNKNOWN_VIEW")
    if major is None or major == view.major:
        return view
    if majors is None:
        raise UsageError(f"'{name}@{major}' pins an older major; only online reads (get-online, the SDK's "
                         "get_online_features, serve) read older majors side by side",
                         hint=f"drop '@{major}' to read the applied major ({view.version})", code="UNKNOWN_VIEW")
    pinned = majors.get((name, major))
    if pinned is None:
        known = sorted(m for n, m in majors if n == name)
        raise UsageError(f"feature view '{name}' has no applied major {major}",
                         hint=f"applied majors of '{name}': {', '.join(map(str, known))}; "
                              f"drop '@{major}' to read the applied major ({view.version})", code="UNKNOWN_VIEW")
    return pinned

