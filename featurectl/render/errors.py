"""Wording of the failures the CLI reports itself (the exit code is the CLI's choice)."""
from __future__ import annotations

from featurectl.core.outcomes import STALE_PLAN
from featurectl.registry.base import StaleRevision


def stale_plan(exc: StaleRevision) -> tuple[str, str]:
    """A commit that lost the race with another apply: the STALE_PLAN outcome's one wording."""
    fix = "make the plan again"
    return f"{STALE_PLAN.id}: " + STALE_PLAN.message(plan="the plan", made=exc.expected, now=exc.actual, fix=fix), fix


def nothing_written(message: str) -> str:
    """`message`, as a sentence, then the promise that bad source data changed nothing."""
    text = message.rstrip()
    return f"{text}{'' if text.endswith(('.', '!', '?')) else '.'} Nothing was written."
