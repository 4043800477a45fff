"""Distribution statistics: DuckDB reads and stages each table, numpy sorts each numeric
column once; Python only sees a few numbers per feature.

The numeric columns of a table are staged once as an Arrow table of plain doubles (NaN as
null), a few columns at a time within STAGE_BYTES: DuckDB decodes the file (Parquet, CSV, an
offline store's query) once, and everything after reads memory.

Numeric reference: a 10,000-row sample gives the KS grid (every tenth sampled value). Each
column is then sorted (numpy's vectorised sort, ~15 ns a value, a fifth of what DuckDB's
`histogram` over the ~1,000-edge grid cost): the sorted column gives the exact deciles (two
order statistics each) and, by binary search, the count of every fine bin of the grid split
at the deciles, so that every PSI edge is a grid edge (core/quantiles.py). The current side:
each column sorted and counted over the reference's grid, from which the PSI bins and the KS
statistic follow. numpy's sort releases the GIL, so the columns are sorted on every core.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import duckdb
import numpy as np

from featurectl.core.monitoring import DECILES, OTHER, TOP_CATEGORIES, ReferenceProfile, SideCounts, merge_edges
from featurectl.core.quantiles import counts_from_ends, neighbours, order_ranks, split_grid
from featurectl.stats.datasets import Column, Table

if TYPE_CHECKING:
    import pyarrow as pa

KS_GRID_POINTS = 1000  # the KS statistic is low by at most ~1/KS_GRID_POINTS (docs/monitoring.md)
# The KS grid is every tenth value of a sorted sample: any grid is valid (the error bound is
# the largest share of one bin), and sampling costs a fraction of approximate quantiles.
GRID_SAMPLE_ROWS = 10 * KS_GRID_POINTS
GRID_SEED = 20260101
STAGE_BYTES = 256 * 2**20  # staged doubles held at once: about 3 columns of 10M rows
_stages = itertools.count()
T = TypeVar("T")


@dataclass(frozen=True)
class Wanted:
    """A feature to compare: where it is, its kind, and what the definitions say of it."""

    view: str | None
    feature: str
    kind: str
    dtype: str | None = None
    version: str | None = None


def _by_table(columns: list[tuple[Wanted, Column]]) -> dict[Table, list[tuple[Wanted, Column]]]:
    groups: dict[Table, list[tuple[Wanted, Column]]] = {}
    for wanted, column in columns:
        groups.setdefault(column.table, []).append((wanted, column))
    return groups


def _fetch(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> tuple:
    return conn.execute(sql, params or {}).fetchall()[0]


@contextmanager
def _staged(conn: duckdb.DuckDBPyConnection, table: Table, columns: list[Column]) -> Iterator[tuple[str, "pa.Table"]]:
    """The columns as doubles `__c0`, `__c1`, … in an Arrow table, registered by the name
    yielded beside it."""
    projection = ", ".join(f"{c.numeric()} AS __c{i}" for i, c in enumerate(columns))
    name = f"__stage_{next(_stages)}"
    staged = conn.sql(f"SELECT {projection} FROM {table.sql}").to_arrow_table()
    conn.register(name, staged)
    try:
        yield name, staged
    finally:
        conn.unregister(name)


def _chunks(table: Table, items: list) -> Iterator[list]:
    """`items` (one per numeric column) in runs whose staged doubles fit STAGE_BYTES."""
    per_chunk = max(1, STAGE_BYTES // (9 * max(table.rows, 1)))  # 8 bytes a value, 1 of validity
    for start in range(0, len(items), per_chunk):
        yield items[start:start + per_chunk]


def _per_column(staged: "pa.Table", work: Callable[[int, np.ndarray], T]) -> list[T]:
    """`work(i, sorted values of column i)` for every staged column, nulls left out, on every
    core; one sorted copy per thread is alive at a time."""
    def one(i: int) -> T:
        column = staged.column(i)
        values = np.empty(len(column) - column.null_count)
        at = 0
        for chunk in column.chunks:  # one chunk's copy at a time beside the column's own
            part = (chunk.drop_null() if chunk.null_count else chunk).to_numpy()
            values[at:at + len(part)] = part
            at += len(part)
        values.sort()
        return work(i, values)

    workers = min(staged.num_columns, os.cpu_count() or 1)
    if workers <= 1:
        return [one(i) for i in range(staged.num_columns)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(staged.num_columns)))


def ends_at(ordered: np.ndarray, points) -> list[int]:
    """How many of the sorted values are at most each point."""
    return np.searchsorted(ordered, np.asarray(points, dtype=np.float64), side="right").tolist()


def bin_counts(ordered: np.ndarray, edges) -> list[int]:
    """How many of the sorted values fall in each bin (e[i-1], e[i]] over the sorted `edges`,
    the first and last open."""
    return counts_from_ends(ends_at(ordered, edges), len(ordered))


def _mean(ordered: np.ndarray) -> float | None:
    with np.errstate(invalid="ignore", over="ignore"):  # ±inf values: an inf or NaN mean, as in SQL
        return float(ordered.mean()) if len(ordered) else None


def _std(ordered: np.ndarray, mean: float | None) -> float | None:
    """The sample standard deviation, squared deviations summed a block at a time: numpy's
    own `std` would hold a temporary as large as the column."""
    if len(ordered) < 2 or mean is None:
        return None
    block = 1 << 20
    with np.errstate(invalid="ignore", over="ignore"):
        squares = sum(float(np.square(ordered[at:at + block] - mean).sum()) for at in range(0, len(ordered), block))
        return (squares / (len(ordered) - 1)) ** 0.5


def profile_reference(conn: duckdb.DuckDBPyConnection, columns: list[tuple[Wanted, Column]]) -> list[ReferenceProfile]:
    profiles: dict[int, ReferenceProfile] = {}
    index = {id(w): i for i, (w, _) in enumerate(columns)}
    for table, group in _by_table(columns).items():
        numeric = [(w, c) for w, c in group if w.kind == "numeric"]
        if numeric:
            for (wanted, _), profile in zip(numeric, _profile_numeric(conn, table, numeric)):
                profiles[index[id(wanted)]] = profile
        for wanted, column in group:
            if wanted.kind == "categorical":
                profiles[index[id(wanted)]] = _profile_categorical(conn, table, wanted, column)
    return [profiles[i] for i in range(len(columns))]


def _profile_numeric(conn, table: Table, group: list[tuple[Wanted, Column]]) -> list[ReferenceProfile]:
    return [profile for chunk in _chunks(table, group) for profile in _profile_staged(conn, table, chunk)]


def _profile_staged(conn, table: Table, group: list[tuple[Wanted, Column]]) -> list[ReferenceProfile]:
    with _staged(conn, table, [c for _, c in group]) as (name, staged):
        samples = _fetch(conn, f"SELECT {', '.join(f'list_sort(list(__c{i}) FILTER (WHERE __c{i} IS NOT NULL))' for i in range(len(group)))} "
                               f"FROM (SELECT * FROM {name} "
                               f"USING SAMPLE reservoir({GRID_SAMPLE_ROWS} ROWS) REPEATABLE ({GRID_SEED}))")
        coarse = [_sample_edges(sample) for sample in samples]

        def summarise(i: int, ordered: np.ndarray):
            pairs = neighbours(ordered, order_ranks(len(ordered), DECILES)) if len(ordered) else []
            points = [*coarse[i], *(value for lower, upper, _ in pairs for value in (lower, upper))]
            mean = _mean(ordered)
            return len(ordered), (mean, _std(ordered, mean)), pairs, dict(zip(points, ends_at(ordered, points)))

        summaries = _per_column(staged, summarise)
    deciles = _interpolated(conn, [pairs for _, _, pairs, _ in summaries])
    profiles = []
    for (w, _), (values, (mean, std), pairs, ends), grid, cuts in zip(group, summaries, coarse, deciles):
        edges, counts = split_grid(grid, cuts, pairs, ends, values)
        profiles.append(ReferenceProfile(
            view=w.view, feature=w.feature, kind="numeric", dtype=w.dtype, version=w.version,
            side=SideCounts(table.rows, values, tuple(counts), mean, std),
            deciles=tuple(cuts), grid=tuple(edges)))
    return profiles


def _interpolated(conn, columns: list[list[tuple[float, float, float]]]) -> list[list[float]]:
    """Each quantile from its two order statistics, by DuckDB's own `quantile_cont` over just
    those two values at the upper one's weight: the same double that sorting the whole column
    in DuckDB gives, to the last bit: the engine's compiled arithmetic decides that bit (this
    build fuses the multiply-add), which the same formula in Python would not reproduce."""
    between = [(lower, upper, weight) for column in columns for lower, upper, weight in column if weight]
    interpolated = iter(())
    if between:
        parts = ", ".join(f"quantile_cont(v, $w{j}) FILTER (WHERE k = {j})" for j in range(len(between)))
        params: dict[str, object] = {f"w{j}": weight for j, (_, _, weight) in enumerate(between)}
        params.update(k=[j for j in range(len(between)) for _ in (0, 1)],
                      v=[value for lower, upper, _ in between for value in (lower, upper)])
        interpolated = iter(_fetch(conn, f"SELECT {parts} FROM (SELECT unnest($k) AS k, unnest($v::DOUBLE[]) AS v)",
                                   params))
    return [[next(interpolated) if weight else lower for lower, _, weight in column] for column in columns]


def _sample_edges(sample) -> list[float]:
    """The KS grid from a sorted sample (the deciles join it later): every value when the
    sample may hold the whole column, else every tenth."""
    sample = sample or []
    # A column smaller than the sample is all in it: then every value is an edge, and the
    # reference's CDF is exact at each of its values.
    step = 1 if len(sample) < GRID_SAMPLE_ROWS else len(sample) // KS_GRID_POINTS
    return merge_edges([float(v) for v in sample[step - 1::step]])


def _profile_categorical(conn, table: Table, wanted: Wanted, column: Column) -> ReferenceProfile:
    value = column.categorical()
    top = conn.execute(f"SELECT __v, count(*) AS n FROM (SELECT {value} AS __v FROM {table.sql}) "
                       f"WHERE __v IS NOT NULL GROUP BY __v ORDER BY n DESC, __v LIMIT {TOP_CATEGORIES}").fetchall()
    values = _fetch(conn, f"SELECT count({value}) FROM {table.sql}")[0]
    counts = [n for _, n in top]
    return ReferenceProfile(
        view=wanted.view, feature=wanted.feature, kind="categorical", dtype=wanted.dtype, version=wanted.version,
        side=SideCounts(table.rows, values, (*counts, values - sum(counts))),
        categories=tuple(v for v, _ in top))


def observe_current(conn: duckdb.DuckDBPyConnection, pairs: list[tuple[ReferenceProfile, Column]]) -> list[SideCounts]:
    """The current side of each feature over its reference's bins: one scan per table for the
    numeric features, one grouped count per categorical feature."""
    observed: dict[int, SideCounts] = {}
    by_table: dict[Table, list[int]] = {}
    for i, (_, column) in enumerate(pairs):
        by_table.setdefault(column.table, []).append(i)
    for table, indexes in by_table.items():
        numeric = [i for i in indexes if pairs[i][0].kind == "numeric"]
        if numeric:
            for i, side in zip(numeric, _observe_numeric(conn, table, [pairs[i] for i in numeric])):
                observed[i] = side
        for i in indexes:
            if pairs[i][0].kind == "categorical":
                observed[i] = _observe_categorical(conn, table, *pairs[i])
    return [observed[i] for i in range(len(pairs))]


def _observe_numeric(conn, table: Table, pairs: list[tuple[ReferenceProfile, Column]]) -> list[SideCounts]:
    return [side for chunk in _chunks(table, pairs) for side in _observe_staged(conn, table, chunk)]


def _observe_staged(conn, table: Table, pairs: list[tuple[ReferenceProfile, Column]]) -> list[SideCounts]:
    def observe(i: int, ordered: np.ndarray) -> SideCounts:
        grid = pairs[i][0].grid
        return SideCounts(table.rows, len(ordered), tuple(bin_counts(ordered, grid)), _mean(ordered))

    with _staged(conn, table, [c for _, c in pairs]) as (_, staged):
        return _per_column(staged, observe)


def _observe_categorical(conn, table: Table, reference: ReferenceProfile, column: Column) -> SideCounts:
    value = column.categorical()
    rows = conn.execute(f"SELECT __v, count(*) FROM (SELECT {value} AS __v FROM {table.sql}) "
                        f"WHERE __v IN (SELECT unnest($cats::VARCHAR[])) GROUP BY __v",
                        {"cats": list(reference.categories)}).fetchall()
    by_value = dict(rows)
    values = _fetch(conn, f"SELECT count({value}) FROM {table.sql}")[0]
    counts = [by_value.get(c, 0) for c in reference.categories]
    return SideCounts(table.rows, values, (*counts, values - sum(counts)))


__all__ = ["KS_GRID_POINTS", "OTHER", "Wanted", "observe_current", "profile_reference"]
