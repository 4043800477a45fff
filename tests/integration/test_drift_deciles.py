"""The reference's deciles and fine-bin counts on columns larger than the KS grid's sample,
where the deciles are read from the few bins that hold them: checked against numpy on the
whole column and against DuckDB's own `quantile_cont` (a sort of every value)."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurectl.app import monitoring
from featurectl.stats.engine import GRID_SAMPLE_ROWS

ROWS = 4 * GRID_SAMPLE_ROWS
DECILES = [k / 10 for k in range(1, 10)]


def columns() -> dict[str, list]:
    rng = np.random.default_rng(5)
    normal = rng.normal(50, 10, ROWS)
    return {
        "normal": normal.tolist(),
        "ties": rng.integers(0, 12, ROWS).tolist(),  # int64: every decile on a run of equal values
        "atom": np.where(rng.random(ROWS) < 0.85, 0.0, rng.lognormal(0, 2, ROWS)).tolist(),
        "constant": [3.25] * ROWS,
        "nulls_and_nan": [None if i % 3 == 0 else (math.nan if i % 7 == 0 else -math.nan if i % 11 == 0 else float(v))
                          for i, v in enumerate(rng.normal(0, 1, ROWS))],  # NaN of either sign is a null
        # a handful of values among nulls: the grid's sample may hold none of them
        "sparse": [float(i % 5) if i % 9000 == 1 else None for i in range(ROWS)],
        "empty": [None] * ROWS,
        "wide": (rng.standard_t(1.5, ROWS) * 1e6).tolist(),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("deciles") / "ref.parquet"
    cols = columns()
    schema = pa.schema([(n, pa.int64() if n == "ties" else pa.float64()) for n in cols])
    pq.write_table(pa.table(cols, schema=schema), path, row_group_size=ROWS // 3)
    return path, cols


@pytest.fixture(scope="module")
def profile(data) -> dict[str, dict]:
    path, _ = data
    content = monitoring.profile(str(path), None, monitoring.Sources(None, None, datetime.now(timezone.utc)))
    return {f["feature"]: f for f in content["features"]}


def values_of(column: list) -> np.ndarray:
    return np.array([v for v in column if v is not None and not math.isnan(v)], float)


NAMES = list(columns())


@pytest.mark.parametrize("name", NAMES)
def test_deciles_are_numpys_and_duckdbs_exact_quantiles(data, profile, name):
    path, cols = data
    values = values_of(cols[name])
    got = profile[name]["deciles"]
    if not len(values):
        assert got == []
        return
    assert got == pytest.approx(np.quantile(values, DECILES).tolist(), rel=1e-14, abs=1e-12)
    exact = duckdb.sql(f"SELECT quantile_cont(x, {DECILES}) FROM (SELECT CAST({name} AS DOUBLE) AS x "
                       f"FROM read_parquet('{path}')) WHERE NOT isnan(x)").fetchall()[0][0]
    assert got == exact  # the same doubles as sorting every value


@pytest.mark.parametrize("name", NAMES)
def test_fine_bin_counts_are_exact_and_the_deciles_are_edges(data, profile, name):
    _, cols = data
    values = values_of(cols[name])
    feature = profile[name]
    grid = feature["grid"]
    assert grid == sorted(set(grid))
    assert set(feature["deciles"]) <= set(grid)
    expected = np.bincount(np.searchsorted(grid, values, side="left"), minlength=len(grid) + 1).tolist()
    assert feature["grid_counts"] == expected
    assert (feature["values"], feature["nulls"]) == (len(values), ROWS - len(values))


def test_drift_on_large_columns_matches_numpy_psi(data, tmp_path):
    """PSI over the reference's deciles, the reference now profiled through the few-bins path."""
    path, cols = data
    rng = np.random.default_rng(9)
    shifted = {n: (np.array(values_of(v)) + 0.5).tolist() if n in ("normal", "wide") else v
               for n, v in cols.items() if n in ("normal", "wide")}
    cur = tmp_path / "cur.parquet"
    pq.write_table(pa.table({n: rng.permutation(v)[:ROWS // 2] for n, v in shifted.items()}), cur)
    result = monitoring.drift(str(path), str(cur), None, monitoring.DriftThresholds(),
                              monitoring.Sources(None, None, datetime.now(timezone.utc)))
    got = {f.feature: f for f in result.features}
    current = pq.read_table(cur).to_pydict()
    for name in ("normal", "wide"):
        ref, now = values_of(cols[name]), values_of(current[name])
        edges = np.unique(np.quantile(ref, DECILES))
        r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
        c = np.bincount(np.searchsorted(edges, now, side="left"), minlength=len(edges) + 1) / len(now)
        r, c = np.maximum(r, 0.0001), np.maximum(c, 0.0001)
        assert got[name].psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("values", [[4.5], [2.0, -1.0], [3.0, 3.0, 1.0], [1.0, None, 7.0, None, 2.0]])
def test_a_tiny_reference_has_numpys_deciles_and_exact_counts(tmp_path, values):
    path = tmp_path / "tiny.parquet"
    pq.write_table(pa.table({"x": pa.array(values, pa.float64())}), path)
    content = monitoring.profile(str(path), None, monitoring.Sources(None, None, datetime.now(timezone.utc)))
    (feature,) = content["features"]
    present = values_of(values)
    assert feature["deciles"] == pytest.approx(np.quantile(present, DECILES).tolist(), rel=1e-14, abs=1e-14)
    grid = feature["grid"]
    assert feature["grid_counts"] == np.bincount(np.searchsorted(grid, present, side="left"),
                                                 minlength=len(grid) + 1).tolist()
