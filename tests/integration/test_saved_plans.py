"""Saved plans through the CLI: `plan --out FILE` then `apply FILE` applies exactly what was
reviewed, and only at the registry revision it was made against."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from featurectl.app import saved_plan
from featurectl.core.definitions import Definitions
from tests.fixtures.repos import ANSI, CliResult, edit_view, git_commit_all

GOLDEN_V1 = Path(__file__).resolve().parents[1] / "data" / "plan_v1.json"


def ok(result: CliResult, code: int = 0) -> CliResult:
    assert result.code == code, f"exit {result.code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


def history(run_cli) -> list[dict]:
    return json.loads(ok(run_cli("history", "--format", "json")).stdout)


def shown(run_cli, name: str) -> dict:
    return yaml.safe_load(ok(run_cli("show", name)).stdout)


def bump_with_feature(repo: Path, version: str, feature: str) -> None:
    def change(view: dict) -> None:
        view["version"] = version
        view["features"].append({"name": feature, "dtype": "float64"})
    edit_view(repo, "driver_stats", change)


@pytest.fixture
def applied(example_repo: Path, run_cli) -> Path:
    ok(run_cli("apply"))
    return example_repo


def test_apply_of_a_saved_plan_applies_the_saved_content_not_the_working_tree(applied: Path, run_cli) -> None:
    bump_with_feature(applied, "1.1.0", "reviewed_feature")
    saved = json.loads(ok(run_cli("plan", "--format", "json", "--out", "reviewed.json")).stdout)
    on_disk = json.loads((applied / "reviewed.json").read_text())
    assert {k: on_disk[k] for k in saved} == saved, "the saved file holds the plan as shown"

    # The working tree moves on after the review, and even breaks.
    bump_with_feature(applied, "1.2.0", "unreviewed_feature")
    (applied / "features" / "broken.yaml").write_text("feature_views: [oops\n")

    text = ok(run_cli("apply", "reviewed.json")).stdout
    assert "revision 2" in text
    view = shown(run_cli, "driver_stats")
    names = [f["name"] for f in view["features"]]
    assert view["version"] == "1.1.0" and "reviewed_feature" in names and "unreviewed_feature" not in names
    last = history(run_cli)[-1]
    assert last["revision"] == 2
    assert last["changes"] == saved["changes"], "the registry records exactly the reviewed changes"

    # Applying the same file again: the registry moved past the plan's base.
    refused = ok(run_cli("apply", "reviewed.json"), 1)
    assert "STALE_PLAN" in refused.stderr
    assert [r["revision"] for r in history(run_cli)] == [1, 2]


def test_a_plan_saved_before_another_apply_is_stale(applied: Path, run_cli) -> None:
    bump_with_feature(applied, "1.1.0", "first")
    ok(run_cli("plan", "--out", "first.json"))
    ok(run_cli("plan", "--out", "second.json"))
    ok(run_cli("apply", "first.json"))
    before = history(run_cli)

    refused = ok(run_cli("apply", "second.json"), 1)
    assert "STALE_PLAN" in refused.stderr and "second.json" in refused.stderr
    assert "revision 1" in refused.stderr and "revision 2" in refused.stderr
    assert history(run_cli) == before


def test_an_invalid_saved_plan_is_refused(applied: Path, run_cli) -> None:
    edit_view(applied, "driver_stats", lambda v: v.update(features=v["features"][:-1], version="1.1.0"))
    ok(run_cli("plan", "--out", "invalid.json"), 1)
    assert json.loads((applied / "invalid.json").read_text())["valid"] is False
    before = history(run_cli)
    refused = ok(run_cli("apply", "invalid.json"), 1)
    assert "VERSION_BUMP_TOO_SMALL" in refused.output and "nothing was applied" in refused.stderr
    assert history(run_cli) == before


def test_a_hand_edited_saved_plan_is_judged_again(applied: Path, run_cli) -> None:
    bump_with_feature(applied, "1.1.0", "harmless")
    ok(run_cli("plan", "--out", "p.json"))
    data = json.loads((applied / "p.json").read_text())
    view = next(v for v in data["desired"]["feature_views"] if v["name"] == "driver_stats")
    view["features"] = [f for f in view["features"] if f["name"] != "vehicle_type"]  # breaking, still 1.1.0
    (applied / "p.json").write_text(json.dumps(data))
    before = history(run_cli)
    refused = ok(run_cli("apply", "p.json"), 1)
    assert "VERSION_BUMP_TOO_SMALL" in refused.output
    assert history(run_cli) == before


def test_a_saved_plan_edited_to_hold_a_dangling_reference_is_bad_input(applied: Path, run_cli) -> None:
    ok(run_cli("plan", "--out", "p.json"))
    data = json.loads((applied / "p.json").read_text())
    service = data["desired"]["feature_services"][0]
    service.update(version="1.1.0", features=[*service["features"], "driver_stats:ghost"])
    (applied / "p.json").write_text(json.dumps(data))
    before = history(run_cli)
    refused = ok(run_cli("apply", "p.json"), 2)
    assert "p.json" in refused.stderr and "DANGLING_REFERENCE" in refused.stderr and "ghost" in refused.stderr
    assert history(run_cli) == before


@pytest.mark.parametrize("content, expected", [
    ("{not json", "not a JSON plan file"),
    ('{"format_version": 1, "project": "rides"}', "not a saved plan"),
    ('{"format_version": 99, "desired": {}}', "newer"),
    ('{"format_version": 1, "project": "rides", "base": {"kind": "registry", "revision": 1},'
     ' "desired": {"feature_views": [{"name": "v"}]}}', "desired"),
])
def test_a_damaged_plan_file_is_bad_input(content: str, expected: str, applied: Path, run_cli) -> None:
    (applied / "damaged.json").write_text(content)
    refused = ok(run_cli("apply", "damaged.json"), 2)
    assert "damaged.json" in refused.stderr and expected in refused.stderr


def test_a_plan_for_another_project_is_refused(applied: Path, run_cli) -> None:
    ok(run_cli("plan", "--out", "p.json"))
    data = json.loads((applied / "p.json").read_text())
    (applied / "p.json").write_text(json.dumps({**data, "project": "payments"}))
    assert "payments" in ok(run_cli("apply", "p.json"), 1).stderr


def test_a_plan_made_against_a_git_ref_cannot_be_applied(example_repo: Path, run_cli) -> None:
    git_commit_all(example_repo, "definitions")
    bump_with_feature(example_repo, "1.1.0", "in_review")
    made = ok(run_cli("plan", "--against", "HEAD", "--out", "ci.json"))
    assert "not applied" in made.stderr, "plan warns that the file is for review only"
    assert json.loads((example_repo / "ci.json").read_text())["base"] == {"kind": "git", "ref": "HEAD"}
    refused = ok(run_cli("apply", "ci.json"), 1)
    assert "git" in refused.stderr and "ci.json" in refused.stderr
    assert not (example_repo / ".featurectl" / "registry.db").exists() or history(run_cli) == []


def test_golden_format_v1_plan_loads_and_applies(example_repo: Path, run_cli) -> None:
    data = saved_plan.load(GOLDEN_V1)
    assert data["format_version"] == saved_plan.FORMAT_VERSION
    desired = saved_plan.desired_of(data, GOLDEN_V1)
    assert isinstance(desired, Definitions) and set(desired.feature_views) == {"driver_stats"}

    shutil.copy(GOLDEN_V1, example_repo / "golden.json")
    ok(run_cli("apply", "golden.json"))
    view = shown(run_cli, "driver_stats")
    assert view["description"] == "Golden plan of format_version 1"
    assert [f["name"] for f in view["features"]] == ["conv_rate", "avg_daily_trips"]
    assert [c["name"] for c in history(run_cli)[0]["changes"]] == ["driver", "driver_hourly", "driver_stats"]


def test_a_revision_stores_the_changes_of_the_plan_it_applied(applied: Path, run_cli) -> None:
    bump_with_feature(applied, "1.1.0", "surge")
    ok(run_cli("plan", "--out", "p.json"))
    ok(run_cli("apply", "p.json"))
    saved = json.loads((applied / "p.json").read_text())
    assert history(run_cli)[-1]["changes"] == saved["changes"]
