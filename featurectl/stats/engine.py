"""Distribution statistics in DuckDB: one scan per table and pass, every feature of the table
in the same statement; Python only sees a few numbers per feature.

Numeric reference: a 10,000-row sample gives the KS grid (every tenth sampled value); one
scan counts rows, values, mean, std and the values per fine bin of that grid (`histogram`
with the grid as boundaries: bins (g[i-1], g[i]], the last open); the counts say which bins
hold the order statistics of each decile, and one filtered scan fetches just those bins'
values (core/quantiles.py): the exact deciles without sorting the column, and the fine bins
split at the deciles, so that every PSI edge is a grid edge. The current side: one scan
counting per fine bin of the reference's grid, from which the PSI bins and the KS statistic
follow.

The numeric columns of a table are staged once as an Arrow table of plain doubles (NaN as
null) before those passes, a few columns at a time within STAGE_BYTES: the passes then read
memory instead of decoding the file again, and DuckDB scans an Arrow table on every core (a
Parquet file written as one row group, pyarrow's default up to a million rows, scans on one).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from featurectl.core.monitoring import DECILES, OTHER, TOP_CATEGORIES, ReferenceProfile, SideCounts, merge_edges
from featurectl.core.quantiles import Fetched, bins_holding, neighbours, order_ranks, ranges, split_counts
from featurectl.stats.datasets import Column, Table

KS_GRID_POINTS = 1000  # the KS statistic is low by at most ~1/KS_GRID_POINTS (docs/monitoring.md)
# The KS grid is every tenth value of a sorted sample: any grid is valid (the error bound is
# the largest share of one bin), and sampling costs a fraction of approximate quantiles.
GRID_SAMPLE_ROWS = 10 * KS_GRID_POINTS
GRID_SEED = 20260101
STAGE_BYTES = 256 * 2**20  # staged doubles held at once: about 3 columns of 10M rows
_stages = itertools.count()


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
def _staged(conn: duckdb.DuckDBPyConnection, table: Table, columns: list[Column]) -> Iterator[str]:
    """The columns as doubles `__c0`, `__c1`, … in a registered Arrow table, by name."""
    projection = ", ".join(f"{c.numeric()} AS __c{i}" for i, c in enumerate(columns))
    name = f"__stage_{next(_stages)}"
    conn.register(name, conn.sql(f"SELECT {projection} FROM {table.sql}").to_arrow_table())
    try:
        yield name
    finally:
        conn.unregister(name)


def _chunks(table: Table, items: list) -> Iterator[list]:
    """`items` (one per numeric column) in runs whose staged doubles fit STAGE_BYTES."""
    per_chunk = max(1, STAGE_BYTES // (9 * max(table.rows, 1)))  # 8 bytes a value, 1 of validity
    for start in range(0, len(items), per_chunk):
        yield items[start:start + per_chunk]


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
    with _staged(conn, table, [c for _, c in group]) as staged:
        indexes = range(len(group))
        samples = _fetch(conn, f"SELECT {', '.join(f'list_sort(list(__c{i}) FILTER (WHERE __c{i} IS NOT NULL))' for i in indexes)} "
                               f"FROM (SELECT * FROM {staged} "
                               f"USING SAMPLE reservoir({GRID_SAMPLE_ROWS} ROWS) REPEATABLE ({GRID_SEED}))")
        coarse = [_sample_edges(sample) for sample in samples]
        parts = ", ".join(f"count(__c{i}), avg(__c{i}), stddev_samp(__c{i}), {_histogram_sql(i, coarse[i])}"
                          for i in indexes)
        row = _fetch(conn, f"SELECT {parts} FROM {staged}", _grid_params(coarse))
        stats = [(row[4 * i], row[4 * i + 1], row[4 * i + 2], _bin_counts(row[4 * i + 3], coarse[i])) for i in indexes]
        ranks = [order_ranks(values, DECILES) if values else [] for values, *_ in stats]
        wanted = [bins_holding(r, counts) for r, (_, _, _, counts) in zip(ranks, stats)]
        held = _values_in_bins(conn, staged, list(zip(coarse, wanted)))
    fetched = [Fetched(counts, bins, *pairs) for (_, _, _, counts), bins, pairs in zip(stats, wanted, held)]
    deciles = _interpolated(conn, [neighbours(r, f) for r, f in zip(ranks, fetched)])
    profiles = []
    for (w, _), (values, mean, std, counts), grid, cuts, f in zip(group, stats, coarse, deciles, fetched):
        edges, fine = split_counts(grid, counts, cuts, f) if cuts else ([], counts)
        profiles.append(ReferenceProfile(
            view=w.view, feature=w.feature, kind="numeric", dtype=w.dtype, version=w.version,
            side=SideCounts(table.rows, values, tuple(fine), _float(mean), _float(std)),
            deciles=tuple(cuts), grid=tuple(edges)))
    return profiles


def _interpolated(conn, columns: list[list[tuple[float, float, float]]]) -> list[list[float]]:
    """Each quantile from its two order statistics, by DuckDB's own `quantile_cont` over just
    those two values at the upper one's weight: the same double that sorting the whole column
    gives, to the last bit: the engine's compiled arithmetic decides that bit (this build fuses
    the multiply-add), which the same formula in Python would not reproduce."""
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


def _values_in_bins(conn, staged: str, wanted: list[tuple[list[float], list[int]]]
                    ) -> list[tuple[list[float], list[int]]]:
    """Per staged column, the values of the fine bins named, as (sorted distinct values, how
    many of each): one filtered scan of every column, handing over a few thousand values (as
    Arrow, not Python objects) where a sort would order them all. Distinct values keep a bin
    that is mostly one repeated value small."""
    parts, params = [], {}
    for i, (grid, indexes) in enumerate(wanted):
        if not indexes:
            continue
        conditions = []
        for j, (lower, upper) in enumerate(ranges(grid, indexes)):
            bounds = []
            if lower is not None:
                params[f"lo{i}_{j}"] = lower
                bounds.append(f"__c{i} > $lo{i}_{j}::DOUBLE")
            if upper is not None:
                params[f"hi{i}_{j}"] = upper
                bounds.append(f"__c{i} <= $hi{i}_{j}::DOUBLE")
            conditions.append(f"({' AND '.join(bounds) or f'__c{i} IS NOT NULL'})")
        # a filtered list, then its histogram: `histogram(x) FILTER` costs ten times as much here
        parts.append((i, f"list_histogram(list(__c{i}) FILTER (WHERE {' OR '.join(conditions)}))"))
    found: list[tuple[list[float], list[int]]] = [([], []) for _ in wanted]
    if parts:
        inner = ", ".join(f"{sql} AS __h{i}" for i, sql in parts)
        outer = ", ".join(f"map_keys(__h{i}), map_values(__h{i})" for i, _ in parts)
        table = conn.sql(f"SELECT {outer} FROM (SELECT {inner} FROM {staged})", params=params).to_arrow_table()
        lists = [column.combine_chunks().values.to_pylist() for column in table.columns]
        for k, (i, _) in enumerate(parts):
            pairs = sorted(zip(lists[2 * k], lists[2 * k + 1]))
            found[i] = ([v for v, _ in pairs], [n for _, n in pairs])
    return found


def _float(value) -> float | None:
    return None if value is None else float(value)


def _histogram_sql(i: int, grid: list[float]) -> str:
    """Counts of staged column i per fine bin (g[i-1], g[i]] and (g[-1], inf); a grid-less
    column has one bin."""
    return f"histogram(__c{i}, $g{i}::DOUBLE[])" if grid else f"count(__c{i})"


def _bin_counts(value, grid: list[float]) -> list[int]:
    if not grid:
        return [int(value)]
    by_edge = {float(k): int(v) for k, v in (value or {}).items()}
    return [by_edge.get(edge, 0) for edge in grid] + [by_edge.get(float("inf"), 0)]


def _grid_params(grids: list[list[float]]) -> dict[str, list[float]]:
    """The `$g<i>` parameters of _histogram_sql: only grids that it names (DuckDB refuses a
    parameter the statement does not use, as for a column with no values)."""
    return {f"g{i}": g for i, g in enumerate(grids) if g}


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
    grids = [list(p.grid) for p, _ in pairs]
    with _staged(conn, table, [c for _, c in pairs]) as staged:
        parts = ", ".join(f"count(__c{i}), avg(__c{i}), {_histogram_sql(i, grids[i])}" for i in range(len(pairs)))
        row = _fetch(conn, f"SELECT {parts} FROM {staged}", _grid_params(grids))
    return [SideCounts(table.rows, row[3 * i], tuple(_bin_counts(row[3 * i + 2], grid)), _float(row[3 * i + 1]))
            for i, grid in enumerate(grids)]


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
