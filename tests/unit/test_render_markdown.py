"""plan.md.j2: the pull-request comment, rendered from a hand-written plan in the SPEC 4.1 shape."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import featurectl.render

TEMPLATES = Path(featurectl.render.__file__).parent / "templates"

PLAN = {
    "format_version": 1,
    "project": "rides",
    "base": {"kind": "git", "ref": "origin/main"},
    "valid": False,
    "summary": {"add": 1, "update": 2, "remove": 1, "unchanged": 4, "violations": 1, "warnings": 1},
    "changes": [
        {"kind": "feature_view", "name": "driver_stats", "action": "update",
         "from_version": "1.2.0", "to_version": "1.3.0",
         "required_bump": "major", "declared_bump": "minor", "valid": False,
         "items": [
             {"rule": "FEATURE_REMOVED", "path": "features.trips_today", "bump": "major",
              "old": {"name": "trips_today", "dtype": "int64"}, "new": None,
              "message": "feature 'trips_today' removed"},
             {"rule": "FEATURE_DTYPE_CHANGED", "path": "features.tags.dtype", "bump": "major",
              "old": "list<int32>", "new": "list<string>",
              "message": "dtype list<int32> -> list<string> | not a widening"},
             {"rule": "FEATURE_CONSTRAINT_TIGHTENED", "path": "features.conv_rate.constraints", "bump": "minor",
              "old": None, "new": {"min": 0, "max": 1, "allowed": None},
              "message": "constraint added"},
         ],
         "impacted": ["driver_ranking", "eta_model"]},
        {"kind": "feature_view", "name": "rider_stats", "action": "add",
         "from_version": None, "to_version": "1.0.0",
         "required_bump": "none", "declared_bump": None, "valid": True, "items": [], "impacted": []},
        {"kind": "source", "name": "rider_trips", "action": "update",
         "from_version": None, "to_version": None,
         "required_bump": "minor", "declared_bump": None, "valid": True,
         "items": [{"rule": "SOURCE_CHANGED", "path": "path", "bump": "minor",
                    "old": "data/trips.parquet", "new": "data/trips_v2.parquet",
                    "message": "source path changed"}]},
        {"kind": "feature_service", "name": "legacy_ranking", "action": "remove",
         "from_version": "0.9.1", "to_version": None,
         "required_bump": "none", "declared_bump": None, "valid": True, "items": []},
    ],
    "violations": [
        {"rule": "VERSION_BUMP_TOO_SMALL", "kind": "feature_view", "name": "driver_stats",
         "message": "driver_stats changes need a major bump: declare >= 2.0.0"},
    ],
    "warnings": [
        {"rule": "VERSION_BUMP_WITHOUT_CHANGE", "kind": "feature_service", "name": "eta_model",
         "message": "version raised to 1.1.0 with no change"},
    ],
    "notes": ["feature view rider_stats starts a new major: run materialize"],
}


@pytest.fixture(scope="module")
def env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False,
                       trim_blocks=True, lstrip_blocks=True)


def render(env: Environment, plan: dict) -> str:
    return env.get_template("plan.md.j2").render(plan=plan)


def table_rows(md: str, first_cell: str) -> list[list[str]]:
    """Cells of the table rows whose first cell is `first_cell`."""
    rows = []
    for line in md.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if cells[0] == first_cell:
                rows.append(cells)
    return rows


def test_title_base_and_blocked_verdict_with_counts(env):
    md = render(env, PLAN)

    assert md.startswith("## featurectl plan for `rides` against git `origin/main`\n")
    assert "**Blocked**: 1 violation must be fixed" in md
    assert ("**1** to add · **2** to update · **1** to remove · 4 unchanged · 1 violation · 1 warning") in md


def test_violations_table_comes_before_the_changes(env):
    md = render(env, PLAN)

    (row,) = table_rows(md, "`VERSION_BUMP_TOO_SMALL`")
    assert row[1:] == ["feature view `driver_stats`", "driver_stats changes need a major bump: declare >= 2.0.0"]
    assert md.index("### Violations") < md.index("### Changes") < md.index("#### ~ update feature view `driver_stats`")
    assert md.index("VERSION_BUMP_TOO_SMALL") < md.index("FEATURE_REMOVED")


def test_update_shows_versions_bumps_items_and_impacted_services(env):
    md = render(env, PLAN)
    section = md[md.index("#### ~ update feature view `driver_stats`"):md.index("#### + add")]

    assert ":x:" in section.splitlines()[0]
    assert "Version `1.2.0` → `1.3.0` · required bump **major**, declared **minor** (too small)." in section
    assert table_rows(section, "`FEATURE_REMOVED`") == [[
        "`FEATURE_REMOVED`", "major", "`features.trips_today`",
        "`{name: trips_today, dtype: int64}` → —", "feature 'trips_today' removed"]]
    (dtype_row,) = table_rows(section, "`FEATURE_DTYPE_CHANGED`")
    # '<' would start an HTML tag on GitHub and '|' would split the cell: both are escaped.
    assert dtype_row[3] == "`list<int32>` → `list<string>`"
    assert dtype_row[4] == "dtype list&lt;int32> -> list&lt;string> \\| not a widening"
    (constraint_row,) = table_rows(section, "`FEATURE_CONSTRAINT_TIGHTENED`")
    assert constraint_row[3] == "— → `{min: 0, max: 1, allowed: null}`"
    assert "**Impacted feature services:** `driver_ranking`, `eta_model`" in section


def test_add_remove_and_unversioned_changes(env):
    md = render(env, PLAN)

    assert "#### + add feature view `rider_stats`\n\nNew at version `1.0.0`." in md
    assert "#### - remove feature service `legacy_ranking`\n\nRemoved (was version `0.9.1`)." in md
    assert "#### ~ update source `rider_trips`\n\nRequired bump **minor** (entities and sources carry no version)." in md
    assert table_rows(md, "`SOURCE_CHANGED`")[0][3] == "`data/trips.parquet` → `data/trips_v2.parquet`"
    add_section = md[md.index("#### + add"):md.index("#### ~ update source")]
    assert "Impacted" not in add_section and "| rule |" not in add_section


def test_warnings_and_notes_follow_the_changes(env):
    md = render(env, PLAN)

    assert md.index("### Changes") < md.index("### Warnings") < md.index("### Notes")
    assert table_rows(md, "`VERSION_BUMP_WITHOUT_CHANGE`")[0][1] == "feature service `eta_model`"
    assert "- feature view rider_stats starts a new major: run materialize" in md


def test_every_table_is_separated_from_the_text_above_it(env):
    lines = render(env, PLAN).splitlines()
    for n, line in enumerate(lines):
        if line.startswith("| rule |"):
            assert lines[n - 1] == "", f"a table needs a blank line above it, at line {n + 1}"
            assert lines[n + 1].startswith("|---")


def test_valid_plan_against_the_registry_has_no_violation_section(env):
    plan = copy.deepcopy(PLAN)
    plan.update(base={"kind": "registry", "revision": 7}, valid=True, violations=[], warnings=[])
    plan["summary"].update(violations=0, warnings=0)
    plan["changes"][0].update(valid=True, to_version="2.0.0", declared_bump="major")
    del plan["notes"]

    md = render(env, plan)

    assert md.startswith("## featurectl plan for `rides` against registry revision 7\n")
    assert ":white_check_mark: **Valid**" in md and "Blocked" not in md
    assert "### Violations" not in md and "### Warnings" not in md and "### Notes" not in md
    assert "declared **major**." in md and ":x:" not in md


def test_no_changes_and_an_empty_registry(env):
    plan = {"format_version": 1, "project": "rides", "base": {"kind": "registry", "revision": None},
            "valid": True, "changes": [], "violations": [], "warnings": [],
            "summary": {"add": 0, "update": 0, "remove": 0, "unchanged": 9, "violations": 0, "warnings": 0}}

    md = render(env, plan)

    assert md.startswith("## featurectl plan for `rides` against an empty registry\n")
    assert "**No changes**: the definitions match the registry." in md
    assert "### Changes" not in md


def test_top_level_keys_render_the_same_as_a_plan_variable(env):
    template = env.get_template("plan.md.j2")
    assert template.render(**PLAN) == template.render(plan=PLAN)


def test_reads_only_keys_of_the_plan_shape_and_tolerates_missing_optional_ones(env):
    """StrictUndefined fails on any key the template invents; impacted and notes are optional."""
    strict = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False,
                         trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    bare = copy.deepcopy(PLAN)
    del bare["notes"]
    for change in bare["changes"]:
        change.pop("impacted", None)

    assert strict.get_template("plan.md.j2").render(plan=PLAN) == render(env, PLAN)
    md = strict.get_template("plan.md.j2").render(plan=bare)
    assert "Impacted" not in md and "### Notes" not in md
