"""Output column names of retrieved features (`feature`, or `view__feature` with full
feature names) and the one check that they collide with nothing: online reads, every
offline engine and the server name columns the same way."""
from __future__ import annotations

from typing import Iterable

from featurectl.core.errors import UsageError

FULL_NAME_SEPARATOR = "__"


def output_name(view: str, feature: str, full_feature_names: bool) -> str:
    return f"{view}{FULL_NAME_SEPARATOR}{feature}" if full_feature_names else feature


def check_output_names(names: Iterable[tuple[str, str, str]], reserved: Iterable[str] = (),
                       full_feature_names: bool = False) -> None:
    """`names` are (view, feature, output column); `reserved` the caller's own columns (entity
    rows, join keys). Two features, or a feature and a reserved column, may not share a name."""
    seen: dict[str, str] = {r: "an entity-row column" for r in reserved}
    for view, feature, out in names:
        if out in seen:
            hint = (f"rename the entity-row column '{out}'" if full_feature_names else
                    "pass --full-feature-names (SDK: full_feature_names=True) to name columns view__feature")
            raise UsageError(f"output column '{out}' of {view}:{feature} collides with {seen[out]}", hint=hint)
        seen[out] = f"{view}:{feature}"
