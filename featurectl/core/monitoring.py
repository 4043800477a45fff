"""Monitoring verdicts and the drift metrics computed from bin counts (SPEC §9).

Pure: the engine counts rows per bin (DuckDB); these functions turn a handful of counts into
numbers and statuses. No I/O, no clock: ages are given, not measured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

DRIFT_STATUSES = ("ok", "warn", "drift")
FRESHNESS_STATUSES = ("ok", "minor", "major", "critical")
PSI_FLOOR = 0.0001  # a bin's share is floored at this before PSI, so an empty bin stays finite
DECILES = tuple(round(k / 10, 1) for k in range(1, 10))
TOP_CATEGORIES = 20
OTHER = "other"
# Freshness: ratio of age to SLA at or below which each status holds (beyond the last: critical).
FRESHNESS_LIMITS = (("ok", 1.0), ("minor", 1.2), ("major", 2.0))


@dataclass(frozen=True)
class DriftThresholds:
    psi_warn: float = 0.1
    psi_drift: float = 0.25
    fail_on: str = "drift"

    def given(self, psi_warn: float | None = None, psi_drift: float | None = None,
              fail_on: str | None = None) -> "DriftThresholds":
        """These thresholds with the ones given (not None) in their place."""
        return DriftThresholds(self.psi_warn if psi_warn is None else psi_warn,
                               self.psi_drift if psi_drift is None else psi_drift,
                               self.fail_on if fail_on is None else fail_on)

    def problems(self) -> list[str]:
        found = []
        if not (math.isfinite(self.psi_warn) and self.psi_warn >= 0):
            found.append(f"psi-warn must be a number >= 0, got {self.psi_warn}")
        if not (math.isfinite(self.psi_drift) and self.psi_drift >= 0):
            found.append(f"psi-drift must be a number >= 0, got {self.psi_drift}")
        if not found and self.psi_warn > self.psi_drift:
            found.append(f"psi-warn ({self.psi_warn}) must not be above psi-drift ({self.psi_drift})")
        if self.fail_on not in DRIFT_STATUSES[1:]:
            found.append(f"fail-on must be warn or drift, got {self.fail_on!r}")
        return found


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: the SPEC §9 JSON object, field for field."""

    feature: str
    kind: str  # numeric | categorical
    n_reference: int
    n_current: int
    psi: float
    js_distance: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    chi2_pvalue: float | None
    mean_shift: float | None
    null_rate_reference: float | None
    null_rate_current: float | None
    status: str


@dataclass(frozen=True)
class SideCounts:
    """One side of a feature over the reference's bins: rows (nulls included), values
    (neither null nor NaN), a count per bin, and for numeric features the mean and std."""

    rows: int
    values: int
    counts: tuple[int, ...]
    mean: float | None = None
    std: float | None = None


@dataclass(frozen=True)
class ReferenceProfile:
    """What drift needs of the reference, whether just scanned or read from a profile file.

    numeric: `grid` holds the upper edges of the fine bins that `side.counts` counts (the
    last bin, above the last edge, is open); the decile edges are among them.
    categorical: `side.counts` holds one count per category, then one for `other`."""

    view: str | None
    feature: str
    kind: str
    side: SideCounts
    deciles: tuple[float, ...] = ()
    grid: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    dtype: str | None = None
    version: str | None = None

    @property
    def name(self) -> str:
        return f"{self.view}:{self.feature}" if self.view else self.feature


PValues = tuple[Callable[[float, int, int], float], Callable[[float, int], float]]  # (ks, chi2)


def compare(reference: ReferenceProfile, current: SideCounts, thresholds: DriftThresholds,
            pvalues: PValues) -> FeatureDrift:
    ks_pvalue, chi2_pvalue = pvalues
    ref = reference.side
    if reference.kind == "numeric":
        edges = merge_edges(reference.deciles)
        ref_bins = decile_counts(reference.grid, ref.counts, edges)
        cur_bins = decile_counts(reference.grid, current.counts, edges)
        ks = ks_statistic(ref.counts, current.counts)
        metrics = dict(ks_statistic=ks, ks_pvalue=None if ks is None else ks_pvalue(ks, ref.values, current.values),
                       chi2_pvalue=None, mean_shift=mean_shift(ref.mean, ref.std, current.mean))
    else:
        ref_bins, cur_bins = list(ref.counts), list(current.counts)
        chi2 = chi2_statistic(ref_bins, cur_bins)
        metrics = dict(ks_statistic=None, ks_pvalue=None, mean_shift=None,
                       chi2_pvalue=None if chi2 is None else chi2_pvalue(*chi2))
    value = psi(ref_bins, cur_bins)
    return FeatureDrift(
        feature=reference.name, kind=reference.kind, n_reference=ref.rows, n_current=current.rows,
        psi=value, js_distance=js_distance(ref_bins, cur_bins),
        null_rate_reference=null_rate(ref.rows, ref.values),
        null_rate_current=null_rate(current.rows, current.values),
        status=drift_status(value, thresholds), **metrics)


def decile_counts(grid: Sequence[float], counts: Sequence[int], edges: Sequence[float]) -> list[int]:
    """Fold fine-bin counts into the PSI bins (-inf, e1], …, (ek, inf): every edge is a grid
    edge, so each fine bin lies inside one PSI bin."""
    folded = [0] * (len(edges) + 1)
    index = 0
    for upper, count in zip([*grid, math.inf], counts):
        while index < len(edges) and upper > edges[index]:
            index += 1
        folded[index] += count
    return folded


def drift_status(psi: float, thresholds: DriftThresholds) -> str:
    if psi >= thresholds.psi_drift:
        return "drift"
    if psi >= thresholds.psi_warn:
        return "warn"
    return "ok"


def at_or_above(status: str, fail_on: str, order: Sequence[str]) -> bool:
    return order.index(status) >= order.index(fail_on)


def freshness_status(age_seconds: float | None, sla_seconds: float) -> str:
    """ok / minor / major / critical by age ÷ SLA; nothing ever written is critical."""
    if age_seconds is None:
        return "critical"
    ratio = age_seconds / sla_seconds
    for status, limit in FRESHNESS_LIMITS:
        if ratio <= limit:
            return status
    return "critical"


def merge_edges(quantiles: Sequence[float]) -> list[float]:
    """Bin edges from the reference's quantiles: equal edges merge into one."""
    return sorted(set(float(q) for q in quantiles))


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(reference: Sequence[int], current: Sequence[int], floor: float = PSI_FLOOR) -> float:
    """Σ (c − r) · ln(c / r) over the bins, each share floored at `floor`."""
    pairs = [(max(r, floor), max(c, floor)) for r, c in zip(shares(reference), shares(current))]
    return sum((c - r) * math.log(c / r) for r, c in pairs)


def js_distance(reference: Sequence[int], current: Sequence[int]) -> float | None:
    """Jensen–Shannon distance, base 2 (0 identical, 1 disjoint), over unfloored shares."""
    if not sum(reference) or not sum(current):
        return None
    p, q = shares(reference), shares(current)

    def kl_to_mid(a: list[float]) -> float:
        return sum(x * math.log2(x / ((x + y) / 2)) for x, y in zip(a, q if a is p else p) if x > 0)

    divergence = (kl_to_mid(p) + kl_to_mid(q)) / 2
    return math.sqrt(max(divergence, 0.0))


def ks_statistic(reference: Sequence[int], current: Sequence[int]) -> float | None:
    """Largest distance between the two empirical CDFs evaluated at the upper bin edges.

    Over a fine grid of bins this is the two-sample KS statistic, low by at most the largest
    share either side has in one bin (`ks_error_bound`)."""
    nr, nc = sum(reference), sum(current)
    if not nr or not nc:
        return None
    largest = cum_r = cum_c = 0
    for r, c in zip(reference, current):
        cum_r += r
        cum_c += c
        largest = max(largest, abs(cum_r * nc - cum_c * nr))  # integers: no rounding on the way
    return largest / (nr * nc)


def ks_error_bound(reference: Sequence[int], current: Sequence[int]) -> float:
    return max(max(shares(reference), default=0.0), max(shares(current), default=0.0))


def chi2_statistic(reference: Sequence[int], current: Sequence[int]) -> tuple[float, int] | None:
    """Pearson's chi-squared test of homogeneity on the 2 × k table of counts (categories
    empty on both sides dropped); returns (statistic, degrees of freedom)."""
    columns = [(r, c) for r, c in zip(reference, current) if r or c]
    nr, nc = sum(r for r, _ in columns), sum(c for _, c in columns)
    if not nr or not nc:
        return None
    total = nr + nc
    statistic = 0.0
    for r, c in columns:
        for observed, side in ((r, nr), (c, nc)):
            expected = side * (r + c) / total
            statistic += (observed - expected) ** 2 / expected
    return statistic, len(columns) - 1


def mean_shift(mean_reference: float | None, std_reference: float | None,
               mean_current: float | None) -> float | None:
    """(mean_current − mean_reference) / std_reference; 0 for equal means on a constant
    reference, null when a side has no values or the shift has no finite size."""
    if mean_reference is None or mean_current is None or std_reference is None:
        return None
    if std_reference == 0:
        return 0.0 if mean_current == mean_reference else None
    shift = (mean_current - mean_reference) / std_reference
    return shift if math.isfinite(shift) else None


def null_rate(rows: int, values: int) -> float | None:
    return (rows - values) / rows if rows else None


@dataclass(frozen=True)
class ViewFreshness:
    """One view's freshness (SPEC §9): the first eight fields are the JSON object's keys."""

    view: str
    major: int
    freshness_sla_seconds: int
    age_seconds: float | None
    ratio: float | None
    status: str
    newest_event_timestamp: datetime | None
    watermark: datetime | None
    source_newest_event_timestamp: datetime | None = None
    checked_source: bool = False
    behind: str = "nothing"  # nothing | source | materialization | never written
    pipeline_lag_seconds: float | None = None


def assess_freshness(view: str, major: int, sla_seconds: int, now: datetime, newest: datetime | None,
                     watermark: datetime | None, source_newest: datetime | None = None,
                     checked_source: bool = False) -> ViewFreshness:
    """Data age against the SLA, and which clock is behind: a source whose newest event is
    no newer than what is served is itself late; otherwise materialization is. Without the
    source's time, a watermark within the SLA means materialization ran and found nothing new."""
    age = None if newest is None else (now - newest).total_seconds()
    lag = None if watermark is None else (now - watermark).total_seconds()
    status = freshness_status(age, sla_seconds)
    if newest is None:
        behind = "never written"
    elif status == "ok":
        behind = "nothing"
    elif checked_source:
        behind = "source" if source_newest is None or source_newest <= newest else "materialization"
    else:
        behind = "source" if lag is not None and lag <= sla_seconds else "materialization"
    return ViewFreshness(view, major, sla_seconds, age, None if age is None else age / sla_seconds, status,
                         newest, watermark, source_newest, checked_source, behind, lag)
