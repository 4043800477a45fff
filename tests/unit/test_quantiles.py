"""Exact quantiles and fine-bin counts of a sorted column (core/quantiles.py and the engine's
binary searches), against numpy on the whole array and a per-value searchsorted-and-bincount
oracle."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurectl.core.quantiles import neighbours, order_ranks, split_grid
from featurectl.stats.engine import bin_counts, ends_at

DECILES = [k / 10 for k in range(1, 10)]


def fine_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin (e[i-1], e[i]], the last open: each value placed on its own."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1).tolist()


def lerp(lower: float, upper: float, weight: float) -> float:
    return lower + (upper - lower) * weight


def split_at_quantiles(ordered: np.ndarray, edges: list[float], quantiles) -> tuple[list[float], list[float], list[int]]:
    """The quantiles (cuts) of the sorted values, and the grid split at them as the engine splits it."""
    pairs = neighbours(ordered, order_ranks(len(ordered), quantiles))
    cuts = [lerp(*pair) for pair in pairs]
    points = [*edges, *(v for lower, upper, _ in pairs for v in (lower, upper))]
    merged, split = split_grid(edges, cuts, pairs, dict(zip(points, ends_at(ordered, points))), len(ordered))
    return cuts, merged, split


rng = np.random.default_rng(11)
CASES = {
    "normal": rng.normal(3, 2, 20_000),
    "ties": rng.integers(0, 7, 20_000).astype(float),
    "atom": np.where(rng.random(20_000) < 0.9, 0.0, rng.exponential(5, 20_000)),
    "constant": np.full(5_000, 2.5),
    "tiny": np.array([4.0, -1.0, 2.0]),
    "one": np.array([7.0]),
    "beyond the grid": rng.normal(0, 1, 5_000) * 100,
}
WITH_INFINITIES = {**CASES, "infinite": np.array([-np.inf, 1.0, 2.0, np.inf, np.inf, -np.inf])}


def grids(values: np.ndarray) -> dict[str, list[float]]:
    ordered = np.sort(values)
    with np.errstate(invalid="ignore"):  # numpy's quantile between two infinities
        coarse = np.unique(np.quantile(values, [0.3, 0.5, 0.52])).tolist()
    return {"every 10th": np.unique(ordered[9::10]).tolist(), "coarse": [c for c in coarse if c == c], "none": []}


@pytest.mark.parametrize("name", CASES)
def test_the_order_statistics_of_the_deciles_give_numpys_quantiles(name):
    values = CASES[name]
    got = [lerp(*n) for n in neighbours(np.sort(values), order_ranks(len(values), DECILES))]
    assert got == pytest.approx(np.quantile(values, DECILES).tolist(), rel=1e-14, abs=1e-14)


@pytest.mark.parametrize("name", WITH_INFINITIES)
@pytest.mark.parametrize("grid", ["every 10th", "coarse", "none"])
def test_bin_counts_equal_placing_each_value(name, grid):
    values = WITH_INFINITIES[name]
    edges = grids(values)[grid]
    assert bin_counts(np.sort(values), edges) == fine_counts(values, edges)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("grid", ["every 10th", "coarse", "none"])
def test_splitting_the_grid_at_the_deciles_counts_each_part_exactly(name, grid):
    values = CASES[name]
    ordered, edges = np.sort(values), grids(values)[grid]
    cuts, merged, split = split_at_quantiles(ordered, edges, DECILES)
    assert merged == sorted(set(edges) | set(cuts))
    assert split == fine_counts(values, merged)


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60), st.lists(st.integers(-6, 6), max_size=8, unique=True),
       st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_any_split_of_any_grid_counts_exactly(values, grid, quantiles):
    """Ties everywhere, cuts on edges and between them, edges outside the values."""
    data = np.array(values, float)
    ordered, edges = np.sort(data), sorted(float(g) for g in grid)
    cuts, merged, split = split_at_quantiles(ordered, edges, quantiles)
    assert merged == sorted(set(edges) | set(cuts))
    assert split == fine_counts(data, merged)
