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
