"""Version policy: turn classified differences into a plan with verdicts.

Separate from the rules on purpose: rules say what changed and how big it is; the policy
says whether the declared versions and removals are acceptable.
"""
from __future__ import annotations

from featurectl.core.bumps import Bump, declared_bump, is_lower, minimum_version
from featurectl.core.definitions import Definitions
from featurectl.core.diff import ObjectDiff, diff
from featurectl.core.model import VERSIONED, parse_ref
from featurectl.core.outcomes import (
    ENTITY_CHANGED_IN_USE,
    OBJECT_REMOVED,
    VERSION_BUMP_TOO_SMALL,
    VERSION_BUMP_WITHOUT_CHANGE,
    VERSION_DECREASED,
    VERSION_UNCHANGED,
    Outcome,
)
from featurectl.core.plan import (
    Base,
    Change,
    FollowUp,
    NewMajorStartsEmpty,
    OldMajorDataRetained,
    Plan,
    TtlIncreasedNeedsRematerialize,
    Violation,
)
from featurectl.core.rules import RULES_BY_ID


# The change rules the policy looks at, resolved once (a mistyped id fails at import).
ENTITY_KEY_CHANGED, TTL_INCREASED = (RULES_BY_ID[rule_id] for rule_id in ("ENTITY_KEY_CHANGED", "TTL_INCREASED"))


def build_plan(project: str, base: Base, current: Definitions, desired: Definitions,
               *, allow_removals: bool = False) -> Plan:
    diffs, unchanged = diff(current, desired)
    findings: list[tuple[Outcome, Violation]] = []
    follow_ups: list[FollowUp] = []
    for d in diffs:
        findings.extend(_version_findings(d))
        findings.extend(_removal_findings(d, allow_removals))
        findings.extend(_entity_findings(d, current))
        follow_ups.extend(_follow_ups(d))
    violations = tuple(v for outcome, v in findings if outcome.severity == "violation")
    warnings = tuple(v for outcome, v in findings if outcome.severity == "warning")
    faulty = {(v.kind, v.name) for v in violations}
    changes = tuple(_change(d, current, (d.kind, d.name) not in faulty) for d in diffs)
    return Plan(project=project, base=base, changes=changes, violations=violations,
                warnings=warnings, unchanged=unchanged, desired=desired, follow_ups=tuple(follow_ups),
                allow_removals=allow_removals)


def _finding(outcome: Outcome, d: ObjectDiff, **fields) -> tuple[Outcome, Violation]:
    message = outcome.message(label=d.kind.replace("_", " "), name=d.name, **fields)
    return outcome, Violation(outcome.id, d.kind, d.name, message)


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


def _version_findings(d: ObjectDiff):
    if d.kind not in VERSIONED or d.action != "update":
        return
    applied, declared, required = d.current.version, d.desired.version, d.required_bump
    versions = dict(applied=applied, declared=declared, required=required, floor=minimum_version(applied, required))
    if is_lower(declared, applied):
        yield _finding(VERSION_DECREASED, d, **versions)
    elif required != "none" and declared == applied:
        yield _finding(VERSION_UNCHANGED, d, **versions)
    elif required != "none" and is_lower(declared, versions["floor"]):
        yield _finding(VERSION_BUMP_TOO_SMALL, d, **versions)
    elif required == "none" and is_lower(applied, declared):
        yield _finding(VERSION_BUMP_WITHOUT_CHANGE, d, **versions)


def _removal_findings(d: ObjectDiff, allow_removals: bool):
    if d.action == "remove" and d.kind in VERSIONED and not d.current.deprecated and not allow_removals:
        yield _finding(OBJECT_REMOVED, d)


def _entity_findings(d: ObjectDiff, current: Definitions):
    if d.kind != "entity" or not any(i.rule == ENTITY_KEY_CHANGED.id for i in d.items):
        return
    users = current.views_using_entity(d.name)
    if users:
        yield _finding(ENTITY_CHANGED_IN_USE, d, views=", ".join(users))


def _follow_ups(d: ObjectDiff):
    if d.kind != "feature_view" or d.action != "update":
        return
    if d.desired.major > d.current.major:
        if d.desired.online:
            yield NewMajorStartsEmpty(d.name, d.desired.major)
        if d.current.online:
            yield OldMajorDataRetained(d.name, d.current.major)
    elif d.desired.online and any(i.rule == TTL_INCREASED.id for i in d.items):
        yield TtlIncreasedNeedsRematerialize(d.name, d.desired.ttl)
