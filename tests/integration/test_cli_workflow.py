"""The team workflow through the real `featurectl` process, on a copy of example_repo:
validate, plan (three formats), apply, detailed exit codes, version policy, removals,
reading the registry, export, rules, schema, init, and --help of every command."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.fixtures.repos import ANSI, CliResult, edit_view, edit_yaml, find_named

SPEC_RULE_IDS = {
    "FEATURE_ADDED", "FEATURE_ADDED_REQUIRED", "FEATURE_REMOVED", "FEATURE_DTYPE_WIDENED",
    "FEATURE_DTYPE_CHANGED", "FEATURE_NULLABILITY_CHANGED", "FEATURE_DEFAULT_CHANGED",
    "FEATURE_CONSTRAINT_RELAXED", "FEATURE_CONSTRAINT_TIGHTENED", "ENTITIES_CHANGED", "TTL_DECREASED",
    "TTL_INCREASED", "SOURCE_CHANGED", "ONLINE_DISABLED", "ONLINE_ENABLED", "METADATA_CHANGED",
    "SERVICE_FEATURE_REMOVED", "SERVICE_FEATURE_ADDED", "ENTITY_CHANGED_IN_USE", "VERSION_BUMP_TOO_SMALL",
    "VERSION_DECREASED", "VERSION_UNCHANGED", "OBJECT_REMOVED", "DANGLING_REFERENCE",
}
PLAN_KEYS = {"format_version", "project", "base", "valid", "summary", "changes", "violations", "warnings"}
EXTENSION_KEYS = {"notes", "follow_ups"}  # beyond SPEC §4.1: "needs materialization after a major bump" and the like
SUMMARY_KEYS = {"add", "update", "remove", "unchanged", "violations", "warnings"}
CHANGE_KEYS = {"kind", "name", "action", "from_version", "to_version", "required_bump", "declared_bump",
               "valid", "items"}
ITEM_KEYS = {"rule", "path", "bump", "old", "new", "message"}
COMMANDS = ["init", "validate", "plan", "apply", "materialize", "materialize-incremental", "get-online",
            "get-historical", "list", "show", "history", "export", "rules", "schema"]


def ok(result: CliResult, code: int = 0) -> CliResult:
    """Assert the exit code, plain (uncoloured) output and no traceback; return the result."""
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert not ANSI.search(result.output), f"ANSI escape codes in non-terminal output:\n{result.output!r}"
    assert "Traceback" not in result.output
    return result


def plan_json(run_cli, *args: str, code: int = 0) -> dict:
    return json.loads(ok(run_cli("plan", "--format", "json", *args), code).stdout)


def history(run_cli) -> list[dict]:
    return json.loads(ok(run_cli("history", "--format", "json")).stdout)


def shown(run_cli, name: str, *args: str, code: int = 0) -> dict:
    return yaml.safe_load(ok(run_cli("show", name, *args), code).stdout)


def feature_names(view: dict) -> list[str]:
    return [f["name"] for f in view["features"]]


def add_nullable_feature(repo: Path, version: str = "1.1.0") -> None:
    def change(view: dict) -> None:
        view["version"] = version
        view["features"].append({"name": "surge_multiplier", "dtype": "float64"})
    edit_view(repo, "driver_stats", change)


def remove_feature(repo: Path, version: str) -> None:
    def change(view: dict) -> None:
        view["version"] = version
        view["features"] = [f for f in view["features"] if f["name"] != "acc_rate"]
    edit_view(repo, "driver_stats", change)


@pytest.fixture
def applied(example_repo: Path, run_cli) -> Path:
    """example_repo with its definitions applied once (registry revision 1)."""
    ok(run_cli("apply"))
    return example_repo


def test_validate_plan_in_every_format_apply_then_nothing_to_change(example_repo: Path, run_cli) -> None:
    assert "Valid" in ok(run_cli("validate")).stdout
    assert not (example_repo / ".featurectl" / "registry.db").exists(), "validate must not touch the registry"

    text = ok(run_cli("plan")).stdout
    assert "+ feature_view driver_stats" in text and "+ feature_view customer_profile" in text
    assert "9 to add" in text

    plan = plan_json(run_cli)
    assert set(plan) == PLAN_KEYS | EXTENSION_KEYS
    assert plan["format_version"] == 1 and plan["project"] == "rides" and plan["valid"] is True
    assert plan["base"] == {"kind": "registry", "revision": 0}
    assert set(plan["summary"]) == SUMMARY_KEYS
    assert plan["summary"] == {"add": 9, "update": 0, "remove": 0, "unchanged": 0, "violations": 0, "warnings": 0}
    for change in plan["changes"]:
        assert CHANGE_KEYS <= set(change) <= CHANGE_KEYS | {"impacted"}, change
        assert change["action"] == "add" and change["kind"] in {"entity", "source", "feature_view", "feature_service"}
    views = {c["name"]: c for c in plan["changes"] if c["kind"] == "feature_view"}
    assert set(views) == {"driver_stats", "customer_profile", "driver_customer_affinity"}
    assert views["driver_stats"]["to_version"] == "1.0.0"

    markdown = ok(run_cli("plan", "--format", "markdown")).stdout
    assert markdown.startswith("## ") and "**Valid**" in markdown
    assert "#### + add feature view `driver_stats`" in markdown and "**9** to add" in markdown

    applied_text = ok(run_cli("apply")).stdout
    assert "revision 1" in applied_text

    again = ok(run_cli("plan", "--detailed-exitcode"), 0).stdout
    assert "No changes" in again
    plan = plan_json(run_cli)
    assert plan["base"] == {"kind": "registry", "revision": 1}
    assert plan["changes"] == [] and plan["summary"]["unchanged"] == 9 and plan["valid"] is True
    assert "Nothing to apply" in ok(run_cli("apply")).stdout
    assert [r["revision"] for r in history(run_cli)] == [1], "an apply with no changes records no revision"


def test_detailed_exitcode_4_for_a_minor_change(applied: Path, run_cli) -> None:
    add_nullable_feature(applied)
    ok(run_cli("plan", "--detailed-exitcode"), 4)
    plan = plan_json(run_cli)
    (change,) = plan["changes"]
    assert (change["name"], change["action"], change["from_version"], change["to_version"]) == \
        ("driver_stats", "update", "1.0.0", "1.1.0")
    assert change["required_bump"] == "minor" and change["declared_bump"] == "minor"
    (item,) = change["items"]
    assert set(item) == ITEM_KEYS
    assert item["rule"] == "FEATURE_ADDED" and item["path"] == "features.surge_multiplier" and item["old"] is None
    assert change["impacted"] == ["driver_ranking"]


def test_detailed_exitcode_5_for_a_correctly_versioned_major_change(applied: Path, run_cli) -> None:
    remove_feature(applied, "2.0.0")
    text = ok(run_cli("plan", "--detailed-exitcode"), 5).stdout
    assert "FEATURE_REMOVED" in text and "materialize" in text, "plan says the new major starts empty"
    ok(run_cli("apply"))
    assert "acc_rate" not in feature_names(shown(run_cli, "driver_stats"))


def test_removal_without_major_bump_is_a_violation_and_apply_changes_nothing(applied: Path, run_cli) -> None:
    before = history(run_cli)
    remove_feature(applied, "1.1.0")
    ok(run_cli("plan", "--detailed-exitcode"), 1)
    plan = plan_json(run_cli, code=1)
    assert plan["valid"] is False and plan["summary"]["violations"] == 1
    (violation,) = plan["violations"]
    assert (violation["rule"], violation["kind"], violation["name"]) == \
        ("VERSION_BUMP_TOO_SMALL", "feature_view", "driver_stats")
    assert "2.0.0" in violation["message"]

    refused = ok(run_cli("apply"), 1)
    assert "VERSION_BUMP_TOO_SMALL" in refused.output and "nothing was applied" in refused.output
    assert history(run_cli) == before
    view = shown(run_cli, "driver_stats")
    assert view["version"] == "1.0.0" and "acc_rate" in feature_names(view)


def drop_service(repo: Path) -> None:
    edit_yaml(repo / "features/drivers.yaml", lambda d: d.pop("feature_services"))


def test_object_removed_unless_allow_removals(applied: Path, run_cli) -> None:
    drop_service(applied)
    plan = plan_json(run_cli, code=1)
    assert [(v["rule"], v["name"]) for v in plan["violations"]] == [("OBJECT_REMOVED", "driver_ranking")]
    ok(run_cli("plan", "--detailed-exitcode"), 1)
    assert "OBJECT_REMOVED" in ok(run_cli("apply"), 1).output
    assert "driver_ranking" in ok(run_cli("list")).stdout

    assert plan_json(run_cli, "--allow-removals")["valid"] is True
    ok(run_cli("apply", "--allow-removals"))
    assert "driver_ranking" not in ok(run_cli("list", "feature_services")).stdout
    changes = history(run_cli)[-1]["changes"]
    assert [(c["kind"], c["name"], c["action"]) for c in changes] == [("feature_service", "driver_ranking", "remove")]


def test_deprecate_apply_then_remove(applied: Path, run_cli) -> None:
    def deprecate(data: dict) -> None:
        for obj in (find_named(data["feature_views"], "driver_stats"), find_named(data["feature_services"], "driver_ranking")):
            obj.update(deprecated=True, version="1.0.1")
    edit_yaml(applied / "features/drivers.yaml", deprecate)
    plan = plan_json(run_cli)
    assert {i["rule"] for c in plan["changes"] for i in c["items"]} == {"METADATA_CHANGED"}
    ok(run_cli("plan", "--detailed-exitcode"), 4)
    ok(run_cli("apply"))
    assert "deprecated" in ok(run_cli("list", "feature_views")).stdout

    edit_yaml(applied / "features/drivers.yaml", lambda d: (d.pop("feature_views"), d.pop("feature_services")))
    plan = plan_json(run_cli)
    assert plan["valid"] is True and plan["summary"]["remove"] == 2
    ok(run_cli("apply"))
    assert "driver_stats" not in ok(run_cli("list", "feature_views")).stdout
    assert "driver_ranking" not in ok(run_cli("list", "feature_services")).stdout
    # The removed object's history is still readable.
    assert shown(run_cli, "driver_stats", "--version", "1.0.1")["deprecated"] is True


def test_show_an_earlier_version_and_history_json(applied: Path, run_cli) -> None:
    add_nullable_feature(applied)
    ok(run_cli("apply"))
    assert "surge_multiplier" in feature_names(shown(run_cli, "driver_stats"))
    old = shown(run_cli, "driver_stats", "--version", "1.0.0")
    assert old["version"] == "1.0.0" and "surge_multiplier" not in feature_names(old)
    missing = ok(run_cli("show", "driver_stats", "--version", "9.9.9"), 2)
    assert "9.9.9" in missing.stderr and "1.0.0" in missing.stderr
    assert "no_such_thing" in ok(run_cli("show", "no_such_thing"), 2).stderr

    revisions = history(run_cli)
    assert [r["revision"] for r in revisions] == [1, 2]
    for r in revisions:
        assert {"revision", "applied_at", "actor", "changes"} <= set(r)
        assert r["actor"] == "tester"
        assert datetime.fromisoformat(r["applied_at"]).tzinfo is not None
    assert datetime.fromisoformat(revisions[0]["applied_at"]) <= datetime.fromisoformat(revisions[1]["applied_at"])
    assert len(revisions[0]["changes"]) == 9
    (change,) = revisions[1]["changes"]
    assert (change["name"], change["from_version"], change["to_version"]) == ("driver_stats", "1.0.0", "1.1.0")
    assert change["items"][0]["rule"] == "FEATURE_ADDED"
    only = json.loads(ok(run_cli("history", "customer_profile", "--format", "json")).stdout)
    assert [r["revision"] for r in only] == [1]


def test_export_of_a_mixed_yaml_and_python_repo_round_trips(example_repo: Path, run_cli) -> None:
    exported = ok(run_cli("export")).stdout
    data = yaml.safe_load(exported)
    views = {v["name"]: v for v in data["feature_views"]}
    assert set(views) == {"driver_stats", "customer_profile", "driver_customer_affinity"}  # YAML and Python
    assert views["customer_profile"]["source"] == "customer_profile_daily"
    assert {s["name"] for s in data["sources"]} == {"driver_hourly", "customer_profile_daily", "driver_customer_trips"}
    assert {e["name"] for e in data["entities"]} == {"driver", "customer"}

    # The canonical YAML, used as the only definition file, compiles to the same canonical form.
    for path in (example_repo / "features").iterdir():
        path.unlink()
    (example_repo / "features" / "all.yaml").write_text(exported)
    assert ok(run_cli("export")).stdout == exported


def test_rules_json_lists_every_spec_rule(run_cli) -> None:
    rows = json.loads(ok(run_cli("rules", "--format", "json")).stdout)
    ids = {row["id"] for row in rows}
    assert SPEC_RULE_IDS <= ids, f"missing: {SPEC_RULE_IDS - ids}"
    bumps = {row["id"]: row["bump"] for row in rows}
    assert bumps["FEATURE_REMOVED"] == "major" and bumps["FEATURE_ADDED"] == "minor"
    assert bumps["METADATA_CHANGED"] == "patch" and bumps["FEATURE_DTYPE_WIDENED"] == "minor"
    assert all(row["purpose"] for row in rows)
    text = ok(run_cli("rules")).stdout
    assert all(rule in text for rule in SPEC_RULE_IDS)


def test_schema_is_json_schema_with_defs(run_cli) -> None:
    schema = json.loads(ok(run_cli("schema")).stdout)
    assert isinstance(schema["$defs"], dict) and schema["$defs"]
    assert {"entities", "sources", "feature_views", "feature_services"} <= set(schema["properties"])


def test_init_creates_a_repository_that_runs_end_to_end(tmp_path: Path, run_cli) -> None:
    ok(run_cli("init", "demo_repo", cwd=tmp_path))
    repo = tmp_path / "demo_repo"
    assert (repo / "featurectl.yaml").is_file()
    ok(run_cli("validate", cwd=repo))
    ok(run_cli("plan", "--detailed-exitcode", cwd=repo), 4)
    ok(run_cli("apply", cwd=repo))
    materialized = ok(run_cli("materialize-incremental", "now", cwd=repo)).stdout
    assert "entities written" in materialized
    view = yaml.safe_load(ok(run_cli("export", cwd=repo)).stdout)["feature_views"][0]
    entity = yaml.safe_load(ok(run_cli("export", cwd=repo)).stdout)["entities"][0]
    feature = view["features"][0]["name"]
    key = entity["join_key"]
    rows = json.loads(ok(run_cli("get-online", "--features", f"{view['name']}:{feature}", "-e", f"{key}=1001",
                                 cwd=repo)).stdout)
    assert len(rows) == 1 and rows[0][key] == 1001 and rows[0][feature] is not None
    # Running from a subdirectory finds the repository; --repo names it from anywhere.
    ok(run_cli("validate", cwd=repo / "features"))
    ok(run_cli("validate", "--repo", repo, cwd=tmp_path))


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command: str, run_cli) -> None:
    result = ok(run_cli(command, "--help"))
    assert "Usage" in result.stdout and command in result.stdout


def test_top_level_help_lists_every_command(run_cli) -> None:
    text = ok(run_cli("--help")).stdout
    assert all(command in text for command in COMMANDS)


def test_no_colour_codes_when_piped_even_with_a_colour_terminal_type(applied: Path, run_cli) -> None:
    colourful = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    add_nullable_feature(applied)
    for args in (["plan"], ["list"], ["rules"], ["history"], ["validate"], ["show", "nope"]):
        result = run_cli(*args, env=colourful)
        assert result.code in (0, 2) and not ANSI.search(result.output), (args, result.output)


def rekey_driver(repo: Path) -> None:
    edit_yaml(repo / "features/entities.yaml",
              lambda d: find_named(d["entities"], "driver").update(join_key="driver_key"))


POLICY_VIOLATIONS = {
    "ENTITY_CHANGED_IN_USE": rekey_driver,
    "VERSION_DECREASED": lambda repo: edit_view(repo, "driver_stats", lambda v: v.update(version="0.9.0")),
    "VERSION_UNCHANGED": lambda repo: edit_view(repo, "driver_stats", lambda v: v.update(description="Changed")),
}


@pytest.mark.parametrize("rule", sorted(POLICY_VIOLATIONS))
def test_policy_violations_refuse_plan_and_apply(rule: str, applied: Path, run_cli) -> None:
    POLICY_VIOLATIONS[rule](applied)
    plan = plan_json(run_cli, code=1)
    assert [v["rule"] for v in plan["violations"]] == [rule]
    ok(run_cli("plan", "--detailed-exitcode"), 1)
    assert rule in ok(run_cli("apply"), 1).output
    assert [r["revision"] for r in history(run_cli)] == [1]


def test_a_version_bump_without_change_is_a_warning(applied: Path, run_cli) -> None:
    edit_view(applied, "driver_stats", lambda v: v.update(version="1.0.1"))
    plan = plan_json(run_cli)
    assert plan["valid"] is True and plan["summary"]["warnings"] == 1 and plan["violations"] == []
    assert plan["warnings"][0]["name"] == "driver_stats"
    ok(run_cli("apply"))
    assert shown(run_cli, "driver_stats")["version"] == "1.0.1"


def test_a_plan_judged_with_allow_removals_names_the_flag_apply_needs(applied: Path, run_cli) -> None:
    add_nullable_feature(applied)
    assert "Run `featurectl apply` to apply it." in ok(run_cli("plan", "--allow-removals")).stdout
    drop_service(applied)
    assert "Run `featurectl apply --allow-removals` to apply it." in ok(run_cli("plan", "--allow-removals")).stdout
    assert "OBJECT_REMOVED" in ok(run_cli("apply"), 1).output
    ok(run_cli("apply", "--allow-removals"))
