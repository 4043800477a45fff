"""The versioned plan format (featurectl/formats/plan.py): the writer's output is pinned by a
golden file, every older golden still loads, and the mapping from core objects is explicit.

When an intended, additive change alters the written plan, regenerate the golden with
`FEATURECTL_REGENERATE_GOLDEN=1 pytest tests/unit/test_plan_format.py` and review its diff.
A change that renames or removes a key needs a new FORMAT_VERSION and an upgrade instead.
"""
from __future__ import annotations

import dataclasses
import typing
import json
import os
from pathlib import Path

import pytest

from featurectl.app import saved_plan
from featurectl.core.diff import Item
from featurectl.core.plan import Base, FollowUp
from featurectl.core.policy import build_plan
from featurectl.formats import plan as plan_format
from tests.unit.factories import changed, entity, feature, service, view, without_feature, world

DATA = Path(__file__).resolve().parents[1] / "data"
WRITTEN = DATA / f"plan_v{plan_format.FORMAT_VERSION}_written.json"
# Every saved plan of an older shape that featurectl must keep reading (hand-written or
# written by an older release); add one whenever FORMAT_VERSION moves.
GOLDENS = sorted(DATA.glob("plan_v*.json"))


def sample_plan():
    """One plan touching every key of the format: add, update (items, impacted), remove,
    a violation, a warning and every kind of follow-up."""
    cur = world(view("gone", deprecated=True), service("bumped"), view("stale", version="0.1.0"), view("longer"),
                view(features=[*view().features, feature("trips_today", "int64")]))
    des = world(entity("rider"), service("bumped", version="1.0.1"), view("longer", version="1.1.0", ttl="7d"),
                view("stale", version="0.1.0", description="changed without a bump"),
                changed(without_feature(view(), "trips"), version="2.0.0", ttl="2d"))
    return build_plan("rides", Base("registry", revision=7), cur, des)


def test_the_sample_plan_covers_every_part_of_the_format():
    p = sample_plan()
    assert {c.action for c in p.changes} == {"add", "update", "remove"}
    assert p.violations and p.warnings
    assert {type(f) for f in p.follow_ups} == set(typing.get_args(FollowUp))
    assert any(c.impacted for c in p.changes) and any(c.items for c in p.changes)


def test_the_writer_output_equals_the_golden_file():
    written = saved_plan.dump(sample_plan())
    if os.environ.get("FEATURECTL_REGENERATE_GOLDEN"):
        WRITTEN.write_text(written)
    assert written == WRITTEN.read_text(), (
        f"the plan format changed; see the docstring of {__name__} before regenerating {WRITTEN.name}")


def test_the_json_plan_is_the_saved_plan_without_what_apply_needs():
    p = sample_plan()
    saved = plan_format.saved_plan_to_dict(p)
    assert {k: v for k, v in saved.items() if k not in ("allow_removals", "desired")} == plan_format.plan_to_dict(p)
    assert plan_format.revision_changes(p) == saved["changes"]


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.name for g in GOLDENS])
def test_every_golden_plan_loads_at_the_current_version(golden: Path):
    data = saved_plan.load(golden)
    assert data["format_version"] == plan_format.FORMAT_VERSION
    desired = saved_plan.desired_of(data, golden)
    assert desired.feature_views, "a golden plan carries the definitions it applies"


def test_goldens_cover_every_version_up_to_the_current_one():
    versions = {json.loads(g.read_text())["format_version"] for g in GOLDENS}
    assert versions == set(range(1, plan_format.FORMAT_VERSION + 1))
    assert set(plan_format.UPGRADES) == set(range(1, plan_format.FORMAT_VERSION))


def test_a_field_added_to_a_core_dataclass_does_not_reach_the_format():
    """asdict() would write `extra` too: the mapping names each key itself."""
    Richer = dataclasses.make_dataclass("Richer", [("extra", str, dataclasses.field(default="x"))],
                                        bases=(Item,), frozen=True)
    item = Richer("FEATURE_REMOVED", "features.trips", "major", {"name": "trips"}, None, "gone")
    assert list(plan_format.item_to_dict(item)) == ["rule", "path", "bump", "old", "new", "message"]


def test_a_renamed_core_field_fails_loudly_instead_of_renaming_the_key():
    Renamed = dataclasses.make_dataclass("Renamed", ["rule", "path", "bump", "old", "new", "text"], frozen=True)
    with pytest.raises(AttributeError, match="message"):
        plan_format.item_to_dict(Renamed("R", "p", "minor", None, None, "t"))


@pytest.mark.parametrize("document, expected", [
    ({"format_version": 99}, "newer"),
    ({"format_version": 0}, "ever wrote"),
    ({"format_version": "1"}, "no integer format_version"),
    ([], "no integer format_version"),
])
def test_upgrade_refuses_what_it_cannot_read(document, expected):
    with pytest.raises(plan_format.FormatError, match=expected):
        plan_format.upgrade(document)
