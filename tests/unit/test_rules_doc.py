"""docs/rules.md is generated from the catalog; it must not drift from it."""
from pathlib import Path

from featurectl.render.plan_data import catalog_rows
from featurectl.render.text import environment

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_rules_doc_is_generated_from_the_catalog():
    expected = environment().get_template("rules.md.j2").render(rows=catalog_rows())
    assert DOC.read_text() == expected, "docs/rules.md is stale: run `make docs`"


def test_catalog_holds_every_rule_id_of_the_spec():
    spec_ids = {
        "FEATURE_ADDED", "FEATURE_ADDED_REQUIRED", "FEATURE_REMOVED", "FEATURE_DTYPE_WIDENED",
        "FEATURE_DTYPE_CHANGED", "FEATURE_NULLABILITY_CHANGED", "FEATURE_DEFAULT_CHANGED",
        "FEATURE_CONSTRAINT_RELAXED", "FEATURE_CONSTRAINT_TIGHTENED", "ENTITIES_CHANGED",
        "TTL_DECREASED", "TTL_INCREASED", "SOURCE_CHANGED", "ONLINE_DISABLED", "ONLINE_ENABLED",
        "METADATA_CHANGED", "SERVICE_FEATURE_REMOVED", "SERVICE_FEATURE_ADDED",
        "VERSION_BUMP_TOO_SMALL", "VERSION_DECREASED", "VERSION_UNCHANGED", "OBJECT_REMOVED",
        "ENTITY_CHANGED_IN_USE", "DANGLING_REFERENCE", "STALE_PLAN",
    }
    assert spec_ids <= {row["id"] for row in catalog_rows()}


def test_policy_outcomes_are_a_table_with_severity_and_message():
    policy = [row for row in catalog_rows() if row["kind"] == "policy"]
    assert len({row["id"] for row in policy}) == len(policy)
    assert {row["severity"] for row in policy} == {"violation", "warning", "error"}
    by_id = {row["id"]: row for row in policy}
    assert by_id["VERSION_BUMP_WITHOUT_CHANGE"]["severity"] == "warning"
    assert by_id["DANGLING_REFERENCE"]["severity"] == "error"
    assert all(row["message"] and row["purpose"] for row in policy)


def test_the_policy_reports_each_outcome_by_its_table_severity():
    """Whatever the policy finds is in the table, and lands among violations or warnings as
    the table's severity says."""
    from featurectl.core.outcomes import POLICY_OUTCOMES
    from featurectl.core.plan import Base
    from featurectl.core.policy import build_plan
    from tests.unit.factories import changed, entity, service, view, without_feature, world

    severity = {o.id: o.severity for o in POLICY_OUTCOMES}
    cur = world(view("gone"), service("bumped"), view("small"), view("down", version="2.0.0"))
    des = world(entity(dtype="string"), service("bumped", version="1.0.1"),
                changed(without_feature(view("small"), "trips"), version="1.1.0"),
                view("down", version="1.9.0"), changed(view(), description="d"))
    p = build_plan("rides", Base("registry", revision=1), cur, des)
    found = {v.rule: "violation" for v in p.violations} | {w.rule: "warning" for w in p.warnings}
    assert set(found) == {"OBJECT_REMOVED", "VERSION_BUMP_WITHOUT_CHANGE", "VERSION_BUMP_TOO_SMALL",
                          "VERSION_DECREASED", "VERSION_UNCHANGED", "ENTITY_CHANGED_IN_USE"}
    assert all(severity[rule] == where for rule, where in found.items())
