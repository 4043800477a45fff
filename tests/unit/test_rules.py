"""The rule catalog, one fixture per rule id and scope, run through the diff engine."""
from __future__ import annotations

import pytest

from featurectl.core.bumps import largest
from featurectl.core.diff import diff
from featurectl.core.rules import CATALOG, RULES_BY_ID
from tests.unit.factories import changed, feature, view, with_feature, world
from tests.unit.rule_cases import CASES, RuleCase


def findings(current, desired) -> list[tuple[str, str, str, str, str]]:
    diffs, _ = diff(current, desired)
    return sorted((d.kind, d.name, i.rule, i.path, i.bump) for d in diffs for i in d.items)


def scope_of(finding) -> str:
    kind, _, _, path, _ = finding
    return "feature" if kind == "feature_view" and path.startswith("features.") else kind


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_case(case: RuleCase):
    assert findings(case.current, case.desired) == sorted(case.expected)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_case_reversed_is_also_classified(case: RuleCase):
    """Undoing a change is itself a change: a non-empty case stays non-empty backwards."""
    assert bool(findings(case.desired, case.current)) == bool(case.expected)


def test_every_rule_and_scope_has_a_case():
    covered = {(f[2], scope_of(f)) for case in CASES for f in case.expected}
    wanted = {(rule.id, scope) for rule in CATALOG for scope in rule.scopes}
    assert wanted - covered == set(), "add a case to tests/unit/rule_cases.py for these"


def test_case_findings_carry_the_catalog_bump():
    for case in CASES:
        for _, _, rule, _, bump in case.expected:
            assert RULES_BY_ID[rule].bump == bump, (case.name, rule)


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_catalog_ids_are_unique_and_bumps_valid():
    ids = [r.id for r in CATALOG]
    assert len(ids) == len(set(ids))
    assert {r.bump for r in CATALOG} <= {"patch", "minor", "major"}


def test_required_bump_is_the_largest_item_bump():
    desired = world(changed(with_feature(view(), "trips", dtype="float64"), ttl="2h"))
    (d,) = diff(world(), desired)[0]
    assert sorted(i.rule for i in d.items) == ["FEATURE_DTYPE_WIDENED", "TTL_DECREASED"]
    assert d.required_bump == "major" == largest(i.bump for i in d.items)


def test_identical_definitions_have_no_diff_and_count_unchanged():
    diffs, unchanged = diff(world(), world())
    assert diffs == [] and unchanged == 4


def test_added_and_removed_objects():
    diffs, unchanged = diff(world(), world(view("new_view")))
    assert [(d.kind, d.name, d.action, d.items) for d in diffs] == [("feature_view", "new_view", "add", ())]
    diffs, _ = diff(world(view("gone")), world())
    assert [(d.action, d.required_bump) for d in diffs] == [("remove", "major")]


def test_version_only_change_is_an_update_without_items():
    (d,), unchanged = diff(world(), world(view(version="1.0.1")))
    assert (d.action, d.items, d.required_bump) == ("update", (), "none")


def test_feature_order_matters_only_as_a_change_without_items():
    v = view()
    reordered = changed(v, features=list(reversed(v.features)))
    (d,), _ = diff(world(v), world(reordered))
    assert d.items == () and d.required_bump == "none"


def test_item_messages_and_values():
    cur = world(with_feature(view(), "f", dtype="float64", constraints={"min": 0, "max": 1}))
    des = world(with_feature(view(), "f", dtype="float64", constraints={"min": -1, "max": 1}))
    (d,), _ = diff(cur, des)
    (item,) = d.items
    assert (item.old, item.new) == (0.0, -1.0)
    assert "min lowered from 0 to -1" in item.message
    removed = diff(world(), world(changed(view(), features=[feature("conv_rate")])))[0][0]
    trips = next(i for i in removed.items if i.path == "features.trips")
    assert (trips.old, trips.new) == ({"name": "trips", "dtype": "int64"}, None)
    assert trips.message == "feature 'trips' removed"
