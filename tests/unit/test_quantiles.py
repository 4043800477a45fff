"""Exact quantiles from fine-bin counts and the values of a few bins (core/quantiles.py),
against numpy on the whole sorted array."""
from __future__ import annotations

import numpy as np
import pytest

from featurectl.core.quantiles import Fetched, bins_holding, neighbours, order_ranks, ranges, split_counts

DECILES = [k / 10 for k in range(1, 10)]


def fine_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin (e[i-1], e[i]], the last open: numpy's own searchsorted, not the code under test."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1).tolist()


def fetch(values: np.ndarray, edges: list[float], bins: list[int]) -> tuple[list[float], list[int]]:
    """The distinct values of those bins and how many of each."""
    index = np.searchsorted(edges, values, side="left")
    distinct, repeats = np.unique(values[np.isin(index, bins)], return_counts=True)
    return distinct.tolist(), repeats.tolist()


def lerp(lower: float, upper: float, weight: float) -> float:
    return lower + (upper - lower) * weight


def interpolated(values: np.ndarray, q: float) -> float:
    """The definition, on the whole sorted array: linear between floor(h) and ceil(h)."""
    ordered = np.sort(values)
    h = (len(values) - 1) * q
    low, high = int(np.floor(h)), int(np.ceil(h))
    return lerp(float(ordered[low]), float(ordered[high]), h - low)


def deciles_and_bins(values: np.ndarray, edges: list[float]):
    counts = fine_counts(values, edges)
    ranks = order_ranks(len(values), DECILES)
    bins = bins_holding(ranks, counts)
    fetched = Fetched(counts, bins, *fetch(values, edges, bins))
    return counts, bins, fetched, [lerp(*n) for n in neighbours(ranks, fetched)]


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


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("grid", ["every 10th", "coarse", "none"])
def test_deciles_from_a_few_bins_equal_the_definition_and_numpy(name, grid):
    values = CASES[name]
    ordered = np.sort(values)
    edges = {"every 10th": np.unique(ordered[9::10]).tolist(),
             "coarse": np.unique(np.quantile(values, [0.3, 0.5, 0.52])).tolist(), "none": []}[grid]
    counts, bins, fetched, got = deciles_and_bins(values, edges)
    assert got == [interpolated(values, q) for q in DECILES]  # the same order statistics and weights
    assert got == pytest.approx(np.quantile(values, DECILES).tolist(), rel=1e-14, abs=1e-14)
    assert len(bins) <= 18  # two order statistics per decile at most


@pytest.mark.parametrize("name", CASES)
def test_splitting_the_fine_bins_at_the_deciles_counts_each_part_exactly(name):
    values = CASES[name]
    edges = np.unique(np.sort(values)[9::10]).tolist()
    counts, _, fetched, deciles = deciles_and_bins(values, edges)
    merged, split = split_counts(edges, counts, deciles, fetched)
    assert merged == sorted(set(edges) | set(deciles))
    assert split == fine_counts(values, merged)


def test_neighbouring_bins_are_fetched_as_one_range():
    edges = [1.0, 2.0, 3.0, 4.0]
    assert ranges(edges, [0, 1, 3, 4]) == [(None, 2.0), (3.0, None)]
    assert ranges(edges, [2]) == [(2.0, 3.0)]


def test_an_order_statistic_in_a_bin_not_fetched_is_refused():
    values = np.arange(100.0)
    edges = [49.0]
    counts = fine_counts(values, edges)
    with pytest.raises(ValueError, match="values fetched"):
        Fetched(counts, [0], values[:10].tolist(), [1] * 10)
    fetched = Fetched(counts, [1], values[50:].tolist(), [1] * 50)
    with pytest.raises(KeyError):
        fetched.at(3)
