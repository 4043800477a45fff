"""The reference profile file (`featurectl profile … --out F.profile.json`), format_version 1.

One JSON object: where the profile came from (dataset, registry revision, when) and, per
feature, what drift needs of a reference: counts, nulls, mean, std, deciles, the KS grid with
its bin counts (numeric), or the top categories with counts and `other` (categorical).
A reader refuses other format versions rather than guess at their meaning.
"""
from __future__ import annotations

import json
import math
from typing import Any

from featurectl.core.errors import UsageError
from featurectl.core.monitoring import ReferenceProfile, SideCounts

FORMAT = "featurectl.profile"
FORMAT_VERSION = 1
SUFFIX = ".json"


def profile_to_dict(profiles: list[ReferenceProfile], *, dataset: str, registry_revision: int | None,
                    created_at: str, ks_grid_points: int) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": created_at, "dataset": dataset,
        "registry_revision": registry_revision, "ks_grid_points": ks_grid_points,
        "features": [_feature(p) for p in profiles],
    }


def _feature(p: ReferenceProfile) -> dict[str, Any]:
    side = p.side
    entry: dict[str, Any] = {
        "feature": p.feature, "view": p.view, "feature_view_version": p.version, "dtype": p.dtype,
        "kind": p.kind, "rows": side.rows, "nulls": side.rows - side.values, "values": side.values,
    }
    if p.kind == "numeric":
        entry.update(mean=_finite(side.mean), std=_finite(side.std), deciles=_edges(p.deciles),
                     grid=_edges(p.grid), grid_counts=list(side.counts))
    else:
        entry.update(categories=[[c, n] for c, n in zip(p.categories, side.counts)], other=side.counts[-1])
    return entry


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _edges(values: tuple[float, ...]) -> list[float | str]:
    """Deciles or grid edges as JSON numbers, an infinite one (a column holding ±inf) as the
    string "inf" or "-inf": JSON has no infinity, and `float()` reads the strings back."""
    return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]


def is_profile_path(text: str) -> bool:
    return text.lower().endswith(SUFFIX)


def read_profile(text: str) -> tuple[dict[str, Any], list[ReferenceProfile]]:
    """(the file's metadata, its features) or a UsageError naming the file and what is wrong."""
    label = f"reference profile '{text}'"
    try:
        with open(text, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UsageError(f"{label}: cannot read it: {exc.strerror or exc}",
                         hint="write one with `featurectl profile DATASET --out F.profile.json`") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno})",
                         hint="write it again with `featurectl profile`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{label}: not a featurectl profile (no \"format\": \"{FORMAT}\")",
                         hint="write one with `featurectl profile DATASET --out F.profile.json`")
    if data.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{label}: format_version {data.get('format_version')!r} is not supported "
                         f"(this featurectl reads {FORMAT_VERSION})",
                         hint="write the profile again with this featurectl version")
    try:
        features = [_profile(entry) for entry in data["features"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{label}: malformed feature entry ({type(exc).__name__}: {exc})",
                         hint="write the profile again with `featurectl profile`") from None
    meta = {k: v for k, v in data.items() if k != "features"}
    return meta, features


def _profile(entry: dict[str, Any]) -> ReferenceProfile:
    common = dict(view=entry["view"], feature=str(entry["feature"]), kind=entry["kind"], dtype=entry.get("dtype"),
                  version=entry.get("feature_view_version"))
    rows, values = int(entry["rows"]), int(entry["values"])
    if entry["kind"] == "numeric":
        grid, counts = [float(g) for g in entry["grid"]], [int(c) for c in entry["grid_counts"]]
        if len(counts) != len(grid) + 1:
            raise ValueError(f"feature {entry['feature']}: grid_counts needs one count more than grid")
        side = SideCounts(rows, values, tuple(counts), _number(entry.get("mean")), _number(entry.get("std")))
        return ReferenceProfile(side=side, deciles=tuple(float(d) for d in entry["deciles"]), grid=tuple(grid),
                                **common)
    if entry["kind"] == "categorical":
        categories = [(str(c), int(n)) for c, n in entry["categories"]]
        side = SideCounts(rows, values, (*(n for _, n in categories), int(entry["other"])))
        return ReferenceProfile(side=side, categories=tuple(c for c, _ in categories), **common)
    raise ValueError(f"feature {entry['feature']}: unknown kind {entry['kind']!r}")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
