"""Use cases over definitions and the registry: plan, apply, apply a saved plan."""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from featurectl.app.errors import PlanRefused
from featurectl.app.features import current_definitions
from featurectl.app import saved_plan
from featurectl.core.definitions import Definitions
from featurectl.core.outcomes import STALE_PLAN
from featurectl.core.plan import Base, Plan
from featurectl.core.policy import build_plan
from featurectl.formats.plan import revision_changes
from featurectl.registry.base import Commit, Registry, StaleRevision

MAX_APPLY_ATTEMPTS = 5


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    revision: int | None  # None: nothing to apply


def plan_against_registry(project: str, registry: Registry, desired: Definitions,
                          allow_removals: bool = False) -> Plan:
    revision, current = current_definitions(registry)
    return build_plan(project, Base("registry", revision=revision), current, desired,
                      allow_removals=allow_removals)


def plan_against_git(project: str, ref: str, current: Definitions, desired: Definitions,
                     allow_removals: bool = False) -> Plan:
    return build_plan(project, Base("git", ref=ref), current, desired, allow_removals=allow_removals)


def default_actor() -> str:
    for var in ("FEATURECTL_ACTOR", "GITHUB_ACTOR", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _commit(registry: Registry, plan: Plan, actor: str, now: datetime, git_commit: str | None) -> int:
    if plan.base.revision is None:  # a plan against a git ref has no registry revision to swap
        raise PlanRefused("only a plan made against the registry can be applied")
    return registry.commit(Commit(
        expected_revision=plan.base.revision, definitions=plan.desired.to_dict(),
        changes=revision_changes(plan), actor=actor, applied_at=now, git_commit=git_commit,
    ))


def _refuse_invalid(plan: Plan) -> None:
    if not plan.valid:
        raise PlanRefused(f"the plan has {len(plan.violations)} violation(s); nothing was applied", plan=plan)


def apply(project: str, registry: Registry, desired: Definitions, *, actor: str, clock: Callable[[], datetime],
          git_commit: str | None = None, allow_removals: bool = False) -> ApplyResult:
    """Plan and commit; if another apply lands in between, plan again against the new head so
    no update is lost (a plan that became invalid is refused, never forced)."""
    for _ in range(MAX_APPLY_ATTEMPTS):
        plan = plan_against_registry(project, registry, desired, allow_removals)
        _refuse_invalid(plan)
        if not plan.has_changes:
            return ApplyResult(plan, None)
        try:
            return ApplyResult(plan, _commit(registry, plan, actor, clock(), git_commit))
        except StaleRevision as exc:
            moved = exc
    raise _stale(f"the last of {MAX_APPLY_ATTEMPTS} plans", moved, "other applies kept landing; try again")


def _stale(plan: str, exc: StaleRevision, fix: str) -> PlanRefused:
    return PlanRefused(STALE_PLAN.message(plan=plan, made=exc.expected, now=exc.actual, fix=fix), rule=STALE_PLAN.id)


def apply_saved(path: Path, project: str, registry: Registry, *, actor: str, clock: Callable[[], datetime],
                git_commit: str | None = None) -> ApplyResult:
    """Apply exactly the saved plan, only at the registry revision it was made against."""
    data = saved_plan.load(path)
    base = data.get("base", {})
    if base.get("kind") != "registry":
        raise PlanRefused(f"{path} was made against a git ref; only a plan made against the registry can be "
                          "applied (run `featurectl plan --out FILE` without --against)")
    if data.get("project") != project:
        raise PlanRefused(f"{path} is a plan for project '{data.get('project')}', not '{project}'")
    desired = saved_plan.desired_of(data, path)
    revision, current = current_definitions(registry)
    if revision != base.get("revision"):
        raise _stale(str(path), StaleRevision(base.get("revision"), revision), "make the plan again")
    # Re-judging the same inputs gives the same plan; this also refuses a hand-edited invalid file.
    plan = build_plan(project, Base("registry", revision=revision), current, desired,
                      allow_removals=bool(data.get("allow_removals")))
    _refuse_invalid(plan)
    if not plan.has_changes:
        return ApplyResult(plan, None)
    try:
        return ApplyResult(plan, _commit(registry, plan, actor, clock(), git_commit))
    except StaleRevision as exc:
        raise _stale(str(path), exc, "make the plan again") from None
