"""Exact quantiles from a histogram and the few values around each quantile (SPEC §9's deciles).

Sorting a whole column to read nine of its values costs more than counting it into fine
bins; the counts already say which bin holds each order statistic a quantile needs, so only
the values of those bins have to be looked at. Pure: the engine counts and fetches (DuckDB),
these functions pick the order statistics and split the bins at the quantiles.

A quantile q of n values is the linear interpolation between the order statistics at
floor(h) and ceil(h), h = (n − 1)·q (numpy's default, and DuckDB's `quantile_cont`).
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

Bin = tuple[float | None, float | None]  # a fine bin (lower, upper]; None for an open end


def order_ranks(values: int, quantiles: Sequence[float]) -> list[tuple[int, int, float]]:
    """Per quantile, the 0-based ranks of the two order statistics it lies between and the
    weight of the upper one: (floor(h), ceil(h), h − floor(h))."""
    ranks = []
    for q in quantiles:
        h = (values - 1) * q
        low = math.floor(h)
        ranks.append((low, math.ceil(h), h - low))
    return ranks


def bins_holding(ranks: Sequence[tuple[int, int, float]], counts: Sequence[int]) -> list[int]:
    """The fine bins (indexes into `counts`) holding the order statistics at those ranks."""
    ends = list(itertools.accumulate(counts))  # ends[b]: values in bins 0..b
    return sorted({bisect.bisect_right(ends, rank) for low, high, _ in ranks for rank in (low, high)})


def bin_bounds(edges: Sequence[float], index: int) -> Bin:
    """Bin `index` of the fine bins (e[i-1], e[i]] over `edges`, the first and last open."""
    return (edges[index - 1] if index > 0 else None, edges[index] if index < len(edges) else None)


def ranges(edges: Sequence[float], indexes: Sequence[int]) -> list[Bin]:
    """The bins at `indexes` (sorted), neighbours joined: fewer ranges for one filter."""
    joined: list[tuple[int, int]] = []
    for index in indexes:
        if joined and joined[-1][1] == index - 1:
            joined[-1] = (joined[-1][0], index)
        else:
            joined.append((index, index))
    return [(bin_bounds(edges, first)[0], bin_bounds(edges, last)[1]) for first, last in joined]


def neighbours(ranks: Sequence[tuple[int, int, float]], fetched: Fetched) -> list[tuple[float, float, float]]:
    """Per quantile at `ranks`: the two order statistics it lies between and the upper one's
    weight. The quantile is lower + weight·(upper − lower); the engine does that last step
    itself (its floating-point steps, e.g. a fused multiply-add, decide the last bit)."""
    return [(fetched.at(low), fetched.at(high), weight) for low, high, weight in ranks]


def split_counts(edges: Sequence[float], counts: Sequence[int], cuts: Sequence[float],
                 fetched: Fetched) -> tuple[list[float], list[int]]:
    """The fine bins with `cuts` added as edges: (edges, counts), each count exact.

    A cut falls in a fetched bin (it lies between two neighbouring order statistics, whose
    bins were fetched) or in an empty bin between them, so every split is counted."""
    cuts = sorted(set(cuts) - set(edges))
    if not cuts:
        return list(edges), list(counts)
    new_counts: list[int] = []
    for index, count in enumerate(counts):
        lower, upper = bin_bounds(edges, index)
        inner = [c for c in cuts if (lower is None or c > lower) and (upper is None or c < upper)]
        below = [fetched.at_most(index, cut) for cut in inner] if count else [0] * len(inner)
        new_counts.extend(b - a for a, b in zip([0, *below], [*below, count]))
    return sorted({*edges, *cuts}), new_counts


class Fetched:
    """The values of some fine bins: `values` sorted and distinct, each `repeats[i]` times,
    all the values of the bins `bins` (of the fine bins counted by `counts`), no others."""

    def __init__(self, counts: Sequence[int], bins: Sequence[int], values: Sequence[float], repeats: Sequence[int]):
        self._starts = [0, *itertools.accumulate(counts)]  # _starts[b]: values below bin b
        # _offsets[b]: fetched values below bin b; _ends[i]: fetched values up to values[i]
        self._offsets = dict(zip(bins, itertools.accumulate([0, *(counts[b] for b in bins)])))
        self._values, self._ends = values, list(itertools.accumulate(repeats))
        held = sum(counts[b] for b in bins)
        if (self._ends[-1] if self._ends else 0) != held:
            raise ValueError(f"{self._ends[-1] if self._ends else 0} values fetched for bins holding {held}")

    def at(self, rank: int) -> float:
        """The order statistic at `rank` (0-based); its bin must have been fetched."""
        index = bisect.bisect_right(self._starts, rank) - 1
        position = self._offsets[index] + rank - self._starts[index]
        return float(self._values[bisect.bisect_right(self._ends, position)])

    def at_most(self, index: int, cut: float) -> int:
        """How many values of fetched bin `index` are at most `cut`, a value inside the bin."""
        upto = bisect.bisect_right(self._values, cut)
        return (self._ends[upto - 1] if upto else 0) - self._offsets[index]
