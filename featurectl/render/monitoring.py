"""Drift reports: JSON (SPEC §9 keys exactly), markdown for a PR comment, a table."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from featurectl.core.monitoring import DRIFT_STATUSES, PSI_FLOOR, FeatureDrift
from featurectl.render.tables import TableView

DEFINITION = (f"PSI over the reference's deciles (numpy-linear quantiles, equal edges merged), shares floored at "
              f"{PSI_FLOOR}; categorical: top 20 + other. Status by PSI; p-values are reported, never gate. "
              "Thresholds from other tools (e.g. Evidently's PSI) do not carry over.")
_METRICS = ("psi", "js_distance", "ks_statistic", "ks_pvalue", "chi2_pvalue", "mean_shift")


def drift_rows(result) -> list[dict[str, Any]]:
    """The JSON array: one object per feature with exactly the SPEC's keys."""
    return [{k: _finite(v) for k, v in dataclasses.asdict(f).items()} for f in result.features]


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:.4f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _cells(f: FeatureDrift) -> list[str]:
    return [f.feature, f.kind, f"{f.n_reference:,}", f"{f.n_current:,}", *(_number(getattr(f, m)) for m in _METRICS),
            f"{_rate(f.null_rate_reference)} → {_rate(f.null_rate_current)}"]


HEADERS = ["feature", "kind", "n ref", "n cur", "PSI", "JS", "KS", "KS p", "χ² p", "mean shift (σ)", "nulls"]


def _verdict(result) -> str:
    t = result.thresholds
    failing = result.failing
    counts = {s: sum(1 for f in result.features if f.status == s) for s in DRIFT_STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    gate = (f"{len(failing)} feature(s) at or above --fail-on {t.fail_on}" if failing
            else f"nothing at or above --fail-on {t.fail_on}")
    return f"{len(result.features)} feature(s): {summary}; {gate} (warn at PSI ≥ {t.psi_warn}, drift at ≥ {t.psi_drift})."


def drift_markdown(result) -> str:
    lines = [f"### Drift: `{result.current}` against `{result.reference}`", "",
             "| status | " + " | ".join(HEADERS) + " |", "|" + "---|" * (len(HEADERS) + 1)]
    for f in result.features:
        cells = [c.replace("|", r"\|") for c in _cells(f)]
        lines.append(f"| **{f.status}** | " + " | ".join(cells) + " |")
    lines += ["", _verdict(result), "", f"_{DEFINITION}_"]
    if result.skipped:
        lines += ["", f"Not compared (on one side only): {', '.join(result.skipped)}"]
    return "\n".join(lines) + "\n"


def drift_table(result) -> tuple[str, TableView, list[str]]:
    """The title, the table (plain cells: feature names are never cut) and the lines under it."""
    rows = [(f.status, *_cells(f)) for f in result.features]
    notes = [_verdict(result), DEFINITION]
    if result.skipped:
        notes.append(f"Not compared (on one side only): {', '.join(result.skipped)}")
    return (f"Drift: {result.current} against {result.reference}",
            TableView(("status", *HEADERS), rows, wrap=frozenset({"nulls"})), notes)
