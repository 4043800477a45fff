"""Version policy: classified changes -> a Plan with violations, warnings and follow-ups."""
from __future__ import annotations

import json

import pytest

from featurectl.core.plan import Base, NewMajorStartsEmpty, OldMajorDataRetained, Plan, TtlIncreasedNeedsRematerialize
from featurectl.core.policy import build_plan
from featurectl.formats.plan import plan_to_dict
from tests.unit.factories import changed, entity, feature, service, view, with_feature, without_feature, world

REGISTRY = Base("registry", revision=7)

# One change of each size on the standard view, applied at whatever version the test says.
CHANGE_OF_SIZE = {
    "patch": lambda v: changed(v, description="now documented"),
    "minor": lambda v: changed(v, ttl="2d"),
    "major": lambda v: without_feature(v, "trips"),
}


def plan(current, desired, **kw) -> Plan:
    return build_plan("rides", REGISTRY, current, desired, **kw)


def view_change(applied: str, size: str | None, declared: str, **kw) -> Plan:
    cur = view(version=applied)
    des = CHANGE_OF_SIZE[size](cur) if size else cur
    return plan(world(cur), world(changed(des, version=declared)), **kw)


def rules(violations) -> list[str]:
    return [v.rule for v in violations]


@pytest.mark.parametrize("applied, size, declared, violation, floor", [
    # SPEC examples from 1.4.2
    ("1.4.2", "patch", "1.4.3", None, None),
    ("1.4.2", "patch", "1.4.2", "VERSION_UNCHANGED", "1.4.3"),
    ("1.4.2", "minor", "1.5.0", None, None),
    ("1.4.2", "minor", "1.4.3", "VERSION_BUMP_TOO_SMALL", "1.5.0"),
    ("1.4.2", "minor", "1.4.2", "VERSION_UNCHANGED", "1.5.0"),
    ("1.4.2", "major", "2.0.0", None, None),
    ("1.4.2", "major", "1.9.9", "VERSION_BUMP_TOO_SMALL", "2.0.0"),
    ("1.4.2", "major", "1.5.0", "VERSION_BUMP_TOO_SMALL", "2.0.0"),
    ("1.4.2", "major", "1.4.3", "VERSION_BUMP_TOO_SMALL", "2.0.0"),
    ("1.4.2", "major", "2.0.0-rc.1", "VERSION_BUMP_TOO_SMALL", "2.0.0"),
    # a larger bump than needed is fine
    ("1.4.2", "patch", "2.0.0", None, None),
    ("1.4.2", "minor", "1.6.0", None, None),
    # below 1.0.0 one level less is needed
    ("0.3.1", "major", "0.4.0", None, None),
    ("0.3.1", "major", "0.3.2", "VERSION_BUMP_TOO_SMALL", "0.4.0"),
    ("0.3.1", "major", "0.3.1", "VERSION_UNCHANGED", "0.4.0"),
    ("0.3.1", "minor", "0.3.2", None, None),
    ("0.3.1", "minor", "0.3.1", "VERSION_UNCHANGED", "0.3.2"),
    ("0.3.1", "patch", "0.3.2", None, None),
    ("0.3.1", "major", "1.0.0", None, None),
    # lower than applied, whatever changed
    ("1.4.2", "patch", "1.4.1", "VERSION_DECREASED", "1.4.3"),
    ("1.4.2", "major", "1.3.9", "VERSION_DECREASED", "2.0.0"),
    ("1.4.2", None, "1.4.1", "VERSION_DECREASED", None),
])
def test_version_policy(applied, size, declared, violation, floor):
    p = view_change(applied, size, declared)
    if violation is None:
        assert p.violations == () and p.valid
        assert [c.valid for c in p.changes] == [True]
        return
    (v,) = p.violations
    assert (v.rule, v.kind, v.name) == (violation, "feature_view", "driver_stats")
    assert not p.valid and [c.valid for c in p.changes] == [False]
    if floor:
        assert f"declare >= {floor}" in v.message
    assert applied in v.message


def test_required_and_declared_bumps_on_the_change():
    (c,) = view_change("1.4.2", "major", "1.5.0").changes
    assert (c.from_version, c.to_version, c.required_bump, c.declared_bump) == ("1.4.2", "1.5.0", "major", "minor")
    assert c.items[0].rule == "FEATURE_REMOVED"


def test_too_small_message_names_the_needed_bump():
    (v,) = view_change("1.4.2", "major", "1.5.0").violations
    assert v.message == "feature view 'driver_stats' 1.4.2 -> 1.5.0 needs a major bump: declare >= 2.0.0"


def test_bump_without_change_is_a_warning_and_valid():
    p = view_change("1.4.2", None, "1.4.3")
    assert p.valid and p.violations == ()
    assert rules(p.warnings) == ["VERSION_BUMP_WITHOUT_CHANGE"]
    assert p.summary == {"add": 0, "update": 1, "remove": 0, "unchanged": 3, "violations": 0, "warnings": 1}


def test_service_versions_follow_the_same_policy():
    cur = world(service(features=["driver_stats:conv_rate", "driver_stats:trips"]))
    p = plan(cur, world(service(version="1.1.0")))
    (v,) = p.violations
    assert (v.rule, v.kind, v.name) == ("VERSION_BUMP_TOO_SMALL", "feature_service", "driver_ranking")
    assert "declare >= 2.0.0" in v.message
    assert plan(cur, world(service(version="2.0.0"))).valid


def test_unversioned_kinds_have_no_version_violations():
    p = plan(world(), world(entity(description="new"), changed(world().sources["driver_hourly"], description="x")))
    assert p.valid and {c.kind for c in p.changes} == {"entity", "source"}
    assert all(c.from_version is None and c.to_version is None for c in p.changes)


# --- removals -----------------------------------------------------------------------

@pytest.mark.parametrize("kind, obj", [("feature_view", view("old_view")), ("feature_service", service("old_svc"))])
def test_removing_a_view_or_service_is_a_violation(kind, obj):
    p = plan(world(obj), world())
    (v,) = p.violations
    assert (v.rule, v.kind, v.name) == ("OBJECT_REMOVED", kind, obj.name)
    assert "deprecated: true" in v.message and "--allow-removals" in v.message
    (c,) = p.changes
    assert (c.action, c.required_bump, c.valid) == ("remove", "major", False)


@pytest.mark.parametrize("kind, obj", [("feature_view", view("old_view")), ("feature_service", service("old_svc"))])
def test_removal_allowed_when_deprecated_or_allowed(kind, obj):
    assert plan(world(changed(obj, deprecated=True)), world()).valid
    assert plan(world(obj), world(), allow_removals=True).valid


def test_deprecated_only_in_desired_does_not_allow_removal_later():
    """The applied definition must carry deprecated: the repository's word alone is not enough."""
    p = plan(world(view("old_view")), world(view("other", deprecated=True)))
    assert "OBJECT_REMOVED" in rules(p.violations)


def test_removing_unused_entity_or_source_is_not_a_violation():
    p = plan(world(entity("rider")), world())
    assert p.valid and [(c.kind, c.action) for c in p.changes] == [("entity", "remove")]


# --- entities -----------------------------------------------------------------------

def test_entity_key_change_in_use_is_a_violation():
    p = plan(world(), world(entity(join_key="driver_key")))
    (v,) = p.violations
    assert (v.rule, v.kind, v.name) == ("ENTITY_CHANGED_IN_USE", "entity", "driver")
    assert "driver_stats" in v.message


def test_entity_key_change_not_in_use_is_allowed():
    p = plan(world(entity("rider")), world(entity("rider", dtype="string")))
    assert p.valid
    (c,) = p.changes
    assert [i.rule for i in c.items] == ["ENTITY_KEY_CHANGED"] and c.required_bump == "major"


def test_entity_used_only_by_a_new_view_is_not_in_use():
    rider_view = view("rider_stats", entities=["rider"])
    p = plan(world(entity("rider")), world(entity("rider", join_key="rid"), rider_view))
    assert "ENTITY_CHANGED_IN_USE" not in rules(p.violations)


def test_entity_description_change_in_use_is_fine():
    assert plan(world(), world(entity(description="a driver"))).valid


# --- impacted services and notes ----------------------------------------------------

def test_impacted_lists_applied_services_referencing_the_view():
    cur = world(service("b_svc", features=["driver_stats:*"]), service("unrelated", features=["other:x"]),
                view("other", features=[feature("x")]))
    des = world(service("b_svc", features=["driver_stats:*"]), service("unrelated", features=["other:x"]),
                view("other", features=[feature("x")]), service("new_svc", features=["driver_stats:trips"]),
                view(version="2.0.0", features=[feature("conv_rate"), feature("acc_rate")]))
    p = plan(cur, des)
    change = next(c for c in p.changes if c.name == "driver_stats")
    assert change.impacted == ("b_svc", "driver_ranking")
    assert next(c for c in p.changes if c.name == "new_svc").impacted is None


def test_new_view_has_no_impacted_services():
    (c,) = plan(world(), world(view("fresh"))).changes
    assert c.impacted == ()


def test_major_bump_of_online_view_asks_for_materialization_and_keeps_the_old_major():
    p = view_change("1.4.2", "major", "2.0.0")
    assert p.follow_ups == (NewMajorStartsEmpty("driver_stats", 2), OldMajorDataRetained("driver_stats", 1))
    starts, kept = plan_to_dict(p)["notes"]
    assert "driver_stats" in starts and "major version 2" in starts and "materialize" in starts
    assert "major 1" in kept and "featurectl prune" in kept


def test_a_view_going_offline_at_a_new_major_only_keeps_the_old_data():
    cur = view(version="1.4.2")
    p = plan(world(cur), world(changed(cur, version="2.0.0", online=False)))
    assert p.follow_ups == (OldMajorDataRetained("driver_stats", 1),)


@pytest.mark.parametrize("applied, change, declared, online", [
    ("1.4.2", CHANGE_OF_SIZE["major"], "2.0.0", False),   # offline view: nothing to materialize
    ("1.4.2", lambda v: with_feature(v, "extra"), "1.5.0", True),   # minor change, same major
    ("1.4.2", None, "1.4.3", True),
])
def test_no_note_without_a_new_online_major(applied, change, declared, online):
    cur = view(version=applied, online=online)
    des = change(cur) if change else cur
    assert plan(world(cur), world(changed(des, version=declared))).follow_ups == ()


def test_ttl_increase_notes_rematerializing_the_longer_window():
    p = view_change("1.4.2", "minor", "1.5.0")   # ttl lengthened to 2d
    assert p.follow_ups == (TtlIncreasedNeedsRematerialize("driver_stats", 2 * 86400),)
    (note,) = plan_to_dict(p)["notes"]
    assert "driver_stats" in note and "rematerialize the last 2d" in note
    # Redis keys no longer expire at the old ttl (reads apply the ttl): the note must not say so.
    assert "Redis" not in note and "dropped" not in note
    assert "loaded under the old ttl" in note
    (follow_up,) = plan_to_dict(p)["follow_ups"]
    assert follow_up == {"type": "ttl_increased_needs_rematerialize", "view": "driver_stats", "ttl": "2d",
                         "message": note}


# --- new objects and summary --------------------------------------------------------

def test_new_objects_need_only_a_valid_version():
    des = world(entity("rider"), view("rider_stats", version="0.0.1", entities=["rider"]),
                service("fresh", version="7.3.1"))
    p = plan(world(), des)
    assert p.valid and p.warnings == ()
    assert [(c.kind, c.name, c.action, c.required_bump, c.declared_bump) for c in p.changes] == [
        ("entity", "rider", "add", "none", "none"),
        ("feature_view", "rider_stats", "add", "none", "none"),
        ("feature_service", "fresh", "add", "none", "none"),
    ]


def test_plan_summary_counts():
    cur = world(view("gone", deprecated=True), view("bad"))
    des = world(entity("rider"), view("bad", ttl="1h"), changed(view(), version="1.0.1", description="d"))
    p = plan(cur, des)
    assert p.summary == {"add": 1, "update": 2, "remove": 1, "unchanged": 3, "violations": 1, "warnings": 0}
    assert [(c.name, c.valid) for c in p.changes] == [
        ("rider", True), ("bad", False), ("driver_stats", True), ("gone", True)]
    assert p.largest_bump == "major" and p.has_changes and not p.valid


def test_empty_plan():
    p = plan(world(), world())
    assert p.valid and not p.has_changes and p.largest_bump == "none"
    assert p.summary == {"add": 0, "update": 0, "remove": 0, "unchanged": 4, "violations": 0, "warnings": 0}


def test_build_plan_does_not_mutate_its_inputs():
    cur, des = world(), world(changed(view(), version="2.0.0"), without_feature(view(), "trips"))
    before = (cur.to_dict(), des.to_dict())
    plan(cur, des)
    assert (cur.to_dict(), des.to_dict()) == before


# --- the JSON plan (SPEC 4.1) -------------------------------------------------------

TOP_KEYS = {"format_version", "project", "base", "valid", "summary", "changes", "violations", "warnings"}
# `notes` (the "materialize after a major bump" lines SPEC 3 asks plan to say) and `follow_ups`
# (the same, structured) are the keys the project adds to the SPEC 4.1 example
# (docs/decisions.md); anything else is a contract change.
EXTRA_TOP_KEYS = {"notes", "follow_ups"}
CHANGE_KEYS = {"kind", "name", "action", "from_version", "to_version", "required_bump",
               "declared_bump", "valid", "items"}
ITEM_KEYS = {"rule", "path", "bump", "old", "new", "message"}
VIOLATION_KEYS = {"rule", "kind", "name", "message"}


def test_json_plan_has_the_spec_keys():
    cur = world(view(version="1.2.0", features=[*view().features, feature("trips_today", "int64")]))
    des = world(view(version="1.3.0"), entity("rider"))
    data = json.loads(json.dumps(plan_to_dict(plan(cur, des))))
    assert set(data) == TOP_KEYS | EXTRA_TOP_KEYS
    assert data["format_version"] == 1 and data["project"] == "rides"
    assert data["base"] == {"kind": "registry", "revision": 7}
    assert data["valid"] is False
    assert set(data["summary"]) == {"add", "update", "remove", "unchanged", "violations", "warnings"}
    entity_change, view_change_ = data["changes"]
    assert set(entity_change) == CHANGE_KEYS
    assert set(view_change_) == CHANGE_KEYS | {"impacted"}
    assert view_change_["impacted"] == ["driver_ranking"]
    assert view_change_["items"] == [{
        "rule": "FEATURE_REMOVED", "path": "features.trips_today", "bump": "major",
        "old": {"name": "trips_today", "dtype": "int64"}, "new": None,
        "message": "feature 'trips_today' removed"}]
    assert (view_change_["required_bump"], view_change_["declared_bump"]) == ("major", "minor")
    (violation,) = data["violations"]
    assert set(violation) == VIOLATION_KEYS
    assert violation["rule"] == "VERSION_BUMP_TOO_SMALL" and violation["message"].endswith("declare >= 2.0.0")
    assert data["warnings"] == []


def test_json_plan_git_base_has_ref_not_revision():
    p = build_plan("rides", Base("git", ref="origin/main"), world(), world())
    assert plan_to_dict(p)["base"] == {"kind": "git", "ref": "origin/main"}


def test_json_values_use_spec_vocabulary():
    cur = world(view("gone"), with_feature(view(), "f", dtype="int32"))
    des = world(entity("rider"), with_feature(view(version="1.1.0"), "f", dtype="int64"))
    data = plan_to_dict(plan(cur, des, allow_removals=True))
    for change in data["changes"]:
        assert change["kind"] in {"entity", "source", "feature_view", "feature_service"}
        assert change["action"] in {"add", "update", "remove"}
        assert {change["required_bump"], change["declared_bump"]} <= {"none", "patch", "minor", "major"}
