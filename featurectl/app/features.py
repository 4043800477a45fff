"""Resolving feature references ('view:feature', 'view:*', a service) against definitions."""
from __future__ import annotations

from dataclasses import dataclass

from featurectl.core.definitions import Definitions, expand_service_refs
from featurectl.core.errors import UsageError
from featurectl.core.model import FeatureView, parse_ref
from featurectl.core.naming import check_output_names, output_name


@dataclass(frozen=True)
class Selection:
    """Requested features grouped by view, in request order, with their output names."""

    views: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    output_names: tuple[tuple[str, str, str], ...]  # (view, feature, output column)


def resolve(defs: Definitions, refs: list[str] | None, service: str | None = None,
            full_feature_names: bool = False, reserved: tuple[str, ...] = ()) -> Selection:
    pairs: list[tuple[str, str]] = []
    if service:
        svc = defs.feature_services.get(service)
        if svc is None:
            raise UsageError(f"unknown feature service '{service}'",
                             hint=f"applied services: {', '.join(sorted(defs.feature_services)) or '(none)'}")
        pairs.extend(expand_service_refs(svc, defs))
    for ref in refs or []:
        try:
            view_name, feature = parse_ref(ref)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        view = _view(defs, view_name)
        if feature == "*":
            pairs.extend((view_name, f.name) for f in view.features)
        elif view.feature(feature) is None:
            raise UsageError(f"unknown feature '{feature}' in feature view '{view_name}'",
                             hint=f"'{view_name}' has: {', '.join(f.name for f in view.features)}")
        else:
            pairs.append((view_name, feature))
    if not pairs:
        raise UsageError("no features requested", hint="pass --features view:feature[,view:*] or --service NAME")
    pairs = list(dict.fromkeys(pairs))
    by_view: dict[str, list[str]] = {}
    for view_name, feature in pairs:
        _view(defs, view_name)
        by_view.setdefault(view_name, []).append(feature)
    names = [(v, f, output_name(v, f, full_feature_names)) for v, f in pairs]
    check_output_names(names, reserved, full_feature_names)
    return Selection(
        views=tuple((defs.feature_views[v], tuple(fs)) for v, fs in by_view.items()),
        output_names=tuple(names),
    )


def _view(defs: Definitions, name: str) -> FeatureView:
    view = defs.feature_views.get(name)
    if view is None:
        raise UsageError(f"unknown feature view '{name}'",
                         hint=f"applied views: {', '.join(sorted(defs.feature_views)) or '(none)'}; "
                              "run `featurectl apply` first if it is new")
    return view
