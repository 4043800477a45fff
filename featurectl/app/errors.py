"""Outcomes of use cases that the CLI maps to exit codes."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotation only: the plan's modules (and semver) load where plans are made
    from featurectl.core.plan import Plan


class PlanRefused(Exception):
    """The rules refused a plan or a saved plan (exit code 1)."""

    def __init__(self, message: str, plan: Plan | None = None, rule: str | None = None):
        self.plan, self.rule = plan, rule
        super().__init__(f"{rule}: {message}" if rule else message)


class MaterializationFailed(Exception):
    """At least one view's run failed validation (exit 1), could not read its source (exit 2)
    or its store failed (exit 3)."""

    def __init__(self, message: str, runs: list, store_failure: bool, bad_input: bool = False):
        self.runs, self.store_failure, self.bad_input = runs, store_failure, bad_input
        super().__init__(message)
