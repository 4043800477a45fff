"""Version policy: turn classified differences into a plan with verdicts.

Separate from the rules on purpose: rules say what changed and how big it is; the policy
says whether the declared versions and removals are acceptable.
"""
from __future__ import annotations

from featurectl.core.bumps import Bump, declared_bump, is_lower, minimum_version
from featurectl.core.definitions import Definitions
from featurectl.core.durations import format_duration
from featurectl.core.diff import ObjectDiff, diff
from featurectl.core.model import VERSIONED, parse_ref
from featurectl.core.plan import Base, Change, Plan, Violation


def build_plan(project: str, base: Base, current: Definitions, desired: Definitions,
               *, allow_removals: bool = False) -> Plan:
    diffs, unchanged = diff(current, desired)
    violations: list[Violation] = []
    warnings: list[Violation] = []
    notes: list[str] = []
    for d in diffs:
        violations.extend(_version_violations(d))
        violations.extend(_removal_violations(d, allow_removals))
        violations.extend(_entity_violations(d, current))
        warnings.extend(_version_warnings(d))
        notes.extend(_notes(d))
    faulty = {(v.kind, v.name) for v in violations}
    changes = tuple(_change(d, current, (d.kind, d.name) not in faulty) for d in diffs)
    return Plan(project=project, base=base, changes=changes, violations=tuple(violations),
                warnings=tuple(warnings), unchanged=unchanged, desired=desired, notes=tuple(notes),
                allow_removals=allow_removals)


def _version(obj) -> str | None:
    return getattr(obj, "version", None)


def _change(d: ObjectDiff, current: Definitions, valid: bool) -> Change:
    versioned = d.kind in VERSIONED
    declared: Bump = "none"
    if versioned and d.action == "update":
        declared = declared_bump(d.current.version, d.desired.version)
    impacted = _impacted(d.name, current) if d.kind == "feature_view" else None
    return Change(
        kind=d.kind, name=d.name, action=d.action,
        from_version=_version(d.current), to_version=_version(d.desired),
        required_bump=d.required_bump, declared_bump=declared, valid=valid,
        items=d.items, impacted=impacted,
    )


def _impacted(view: str, current: Definitions) -> tuple[str, ...]:
    return tuple(sorted(
        s.name for s in current.feature_services.values()
        if any(parse_ref(ref)[0] == view for ref in s.features)
    ))


def _version_violations(d: ObjectDiff):
    if d.kind not in VERSIONED or d.action != "update":
        return
    applied, declared, required = d.current.version, d.desired.version, d.required_bump
    floor = minimum_version(applied, required)
    label = d.kind.replace("_", " ")
    if is_lower(declared, applied):
        yield Violation("VERSION_DECREASED", d.kind, d.name,
                        f"{label} '{d.name}' version decreased from {applied} to {declared}; "
                        f"declare >= {floor}")
    elif required != "none" and declared == applied:
        yield Violation("VERSION_UNCHANGED", d.kind, d.name,
                        f"{label} '{d.name}' changed but its version is still {applied}; "
                        f"it needs a {required} bump: declare >= {floor}")
    elif required != "none" and is_lower(declared, floor):
        yield Violation("VERSION_BUMP_TOO_SMALL", d.kind, d.name,
                        f"{label} '{d.name}' {applied} -> {declared} needs a {required} bump: declare >= {floor}")


def _version_warnings(d: ObjectDiff):
    if d.kind in VERSIONED and d.action == "update" and d.required_bump == "none" \
            and is_lower(d.current.version, d.desired.version):
        yield Violation("VERSION_BUMP_WITHOUT_CHANGE", d.kind, d.name,
                        f"{d.kind.replace('_', ' ')} '{d.name}' version bumped "
                        f"{d.current.version} -> {d.desired.version} with no classified change")


def _removal_violations(d: ObjectDiff, allow_removals: bool):
    if d.action == "remove" and d.kind in VERSIONED and not d.current.deprecated and not allow_removals:
        label = d.kind.replace("_", " ")
        yield Violation("OBJECT_REMOVED", d.kind, d.name,
                        f"{label} '{d.name}' removed without being deprecated: set `deprecated: true`, "
                        f"apply, then remove it; or pass --allow-removals")


def _entity_violations(d: ObjectDiff, current: Definitions):
    if d.kind != "entity" or not any(i.rule == "ENTITY_KEY_CHANGED" for i in d.items):
        return
    users = current.views_using_entity(d.name)
    if users:
        yield Violation("ENTITY_CHANGED_IN_USE", d.kind, d.name,
                        f"entity '{d.name}' join_key/dtype changed while applied views use it "
                        f"({', '.join(users)}); define a new entity and move the views to it instead")


def _notes(d: ObjectDiff):
    if d.kind != "feature_view" or d.action != "update" or not d.desired.online:
        return
    if d.desired.major > d.current.major:
        yield (f"feature view '{d.name}' moves to major version {d.desired.major}: its online data starts "
               f"empty; run `featurectl materialize` after apply")
    elif any(i.rule == "TTL_INCREASED" for i in d.items):
        yield (f"feature view '{d.name}' keeps values longer now, but an online store that expires keys "
               f"(Redis) dropped older ones at the old ttl; rematerialize the last {format_duration(d.desired.ttl) if d.desired.ttl else 'window'} to serve them")
