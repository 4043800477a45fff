"""Exact quantiles and fine-bin counts of a sorted column (SPEC §9's deciles and grid).

A quantile q of n values is the linear interpolation between the order statistics at
floor(h) and ceil(h), h = (n − 1)·q (numpy's default, and DuckDB's `quantile_cont`). On a
sorted column both the order statistics and the count of every bin (e[i-1], e[i]] are a
binary search away, so one sort answers the deciles and the histogram together. Pure: the
engine sorts and searches (stats/engine.py); these functions pick the order statistics and
turn "values at most each edge" into bin counts.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol


class Sorted(Protocol):
    """Sorted values by position: a list, or a numpy array."""

    def __getitem__(self, index: Any, /) -> Any: ...


def order_ranks(values: int, quantiles: Sequence[float]) -> list[tuple[int, int, float]]:
    """Per quantile, the 0-based ranks of the two order statistics it lies between and the
    weight of the upper one: (floor(h), ceil(h), h − floor(h))."""
    ranks = []
    for q in quantiles:
        h = (values - 1) * q
        low = math.floor(h)
        ranks.append((low, math.ceil(h), h - low))
    return ranks


def neighbours(ordered: Sorted, ranks: Sequence[tuple[int, int, float]]) -> list[tuple[float, float, float]]:
    """Per quantile at `ranks`: the two order statistics of the sorted values it lies between
    and the upper one's weight. The quantile is lower + weight·(upper − lower); the engine
    does that last step itself (its floating-point steps, e.g. a fused multiply-add, decide
    the last bit)."""
    return [(float(ordered[low]), float(ordered[high]), weight) for low, high, weight in ranks]


def counts_from_ends(ends: Sequence[int], total: int) -> list[int]:
    """Counts per bin (e[i-1], e[i]], the first and last open, from the values at most each
    edge: len(ends) + 1 counts summing to `total`."""
    return [b - a for a, b in zip([0, *ends], [*ends, total])]


def split_grid(grid: Sequence[float], cuts: Sequence[float], pairs: Sequence[tuple[float, float, float]],
               ends: dict[float, int], total: int) -> tuple[list[float], list[int]]:
    """The grid with the quantiles `cuts` added as edges, and the count of every bin.

    `ends` holds the values at most each grid edge and each order statistic of `pairs` (the
    two a cut lies between, from `neighbours`). No value lies strictly between two
    neighbouring order statistics, so the values at most a cut are those at most its upper
    neighbour when it reaches it, else those at most its lower one: the cut's exact value
    (computed later, by the engine) is all that is missing, and no second pass is needed."""
    at = {float(edge): ends[edge] for edge in grid}
    for cut, (lower, upper, _) in zip(cuts, pairs):
        at.setdefault(float(cut), ends[upper] if cut >= upper else ends[lower])
    edges = sorted(at)
    return edges, counts_from_ends([at[edge] for edge in edges], total)
