"""`featurectl drift` metrics, each checked against an independent NumPy/SciPy computation
written here (not the engine's code path), through the real CLI's JSON output.

One pair of files holds every scenario as its own column, so one CLI run checks them all.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from tests.fixtures.repos import ANSI, run_featurectl

N_REF, N_CUR = 6000, 5000
KEYS = {"feature", "kind", "n_reference", "n_current", "psi", "js_distance", "ks_statistic", "ks_pvalue",
        "chi2_pvalue", "mean_shift", "null_rate_reference", "null_rate_current", "status"}


# --- the independent computations -----------------------------------------------------------

def values_of(column: list) -> np.ndarray:
    return np.array([v for v in column if v is not None and not (isinstance(v, float) and math.isnan(v))], float)


def numeric_bins(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))  # numpy's default: linear
    # bins (-inf, e1], (e1, e2], …, (ek, inf): searchsorted 'left' gives i with e[i-1] < x <= e[i]
    def count(x):
        return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    return count(ref), count(cur)


def expected_psi(ref_counts, cur_counts) -> float:
    r = np.maximum(ref_counts / ref_counts.sum(), 0.0001)
    c = np.maximum(cur_counts / cur_counts.sum(), 0.0001)
    return float(np.sum((c - r) * np.log(c / r)))


def expected_js(ref_counts, cur_counts) -> float:
    return float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2))


def category_counts(ref: list, cur: list) -> tuple[np.ndarray, np.ndarray]:
    ref_values = [str(v).lower() if isinstance(v, bool) else v for v in ref if v is not None]
    cur_values = [str(v).lower() if isinstance(v, bool) else v for v in cur if v is not None]
    top = [v for v, _ in sorted(Counter(ref_values).items(), key=lambda kv: (-kv[1], kv[0]))[:20]]
    def count(values):
        return np.array([sum(1 for v in values if v == t) for t in top]
                                        + [sum(1 for v in values if v not in top)])
    return count(ref_values), count(cur_values)


# --- the data -----------------------------------------------------------------------------

def scenarios() -> tuple[dict[str, list], dict[str, list]]:
    rng = np.random.default_rng(7)
    ref_normal = rng.normal(10, 2, N_REF)
    with_nulls_ref = [None if i % 10 == 0 else (math.nan if i % 10 == 1 else float(v))
                      for i, v in enumerate(rng.normal(0, 1, N_REF))]
    with_nulls_cur = [None if i % 4 == 0 else float(v) for i, v in enumerate(rng.normal(0.3, 1, N_CUR))]
    cities = [f"city{i:02d}" for i in range(30)]
    weights = np.arange(30, 0, -1) / np.arange(30, 0, -1).sum()
    ref = {
        "identical": ref_normal.tolist(),
        "slight": rng.normal(10, 2, N_REF).tolist(),
        "strong": rng.normal(10, 2, N_REF).tolist(),
        "with_nulls": with_nulls_ref,
        "constant": [5.0] * N_REF,
        "constant_moved": [5.0] * N_REF,
        "counts": rng.poisson(3, N_REF).tolist(),
        "city": rng.choice(cities, N_REF, p=weights).tolist(),
        "city_shifted": rng.choice(cities, N_REF, p=weights).tolist(),
        "single": ["only"] * N_REF,
        "flag": (rng.random(N_REF) < 0.3).tolist(),
    }
    cur = {
        "identical": ref_normal[:N_CUR].tolist(),
        "slight": rng.normal(10.2, 2, N_CUR).tolist(),
        "strong": rng.normal(13, 3, N_CUR).tolist(),
        "with_nulls": with_nulls_cur,
        "constant": [5.0] * N_CUR,
        "constant_moved": [6.0] * N_CUR,
        "counts": rng.poisson(3.4, N_CUR).tolist(),
        "city": rng.choice(cities, N_CUR, p=weights).tolist(),
        "city_shifted": rng.choice(cities, N_CUR, p=weights[::-1]).tolist(),
        "single": ["only"] * N_CUR,
        "flag": (rng.random(N_CUR) < 0.5).tolist(),
    }
    return ref, cur


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    folder = tmp_path_factory.mktemp("drift")
    ref, cur = scenarios()
    schema = pa.schema([(name, pa.string() if name in ("city", "city_shifted", "single") else
                         pa.bool_() if name == "flag" else pa.int64() if name == "counts" else pa.float64())
                        for name in ref])
    pq.write_table(pa.table(ref, schema=schema), folder / "ref.parquet")
    pq.write_table(pa.table(cur, schema=schema), folder / "cur.parquet")
    return folder / "ref.parquet", folder / "cur.parquet", ref, cur


@pytest.fixture(scope="module")
def report(data) -> dict[str, dict]:
    ref_path, cur_path, _, _ = data
    result = run_featurectl("drift", "--reference", ref_path, "--current", cur_path, "--format", "json",
                            cwd=ref_path.parent)
    assert result.code == 1, result.output  # "strong" drifts
    rows = json.loads(result.stdout)
    assert all(set(row) == KEYS for row in rows)
    return {row["feature"]: row for row in rows}


NUMERIC = ["identical", "slight", "strong", "with_nulls", "constant", "constant_moved", "counts"]
CATEGORICAL = ["city", "city_shifted", "single", "flag"]


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_metrics_match_numpy_and_scipy(report, data, name):
    _, _, ref_cols, cur_cols = data
    got = report[name]
    ref, cur = values_of(ref_cols[name]), values_of(cur_cols[name])
    ref_counts, cur_counts = numeric_bins(ref, cur)
    assert got["kind"] == "numeric"
    assert got["n_reference"] == N_REF and got["n_current"] == N_CUR
    assert got["psi"] == pytest.approx(expected_psi(ref_counts, cur_counts), rel=1e-9, abs=1e-12)
    assert got["js_distance"] == pytest.approx(expected_js(ref_counts, cur_counts), rel=1e-9, abs=1e-9)
    ks = stats.ks_2samp(ref, cur, method="asymp")
    # The reference's CDF is exact at each of its values (a column smaller than the grid sample):
    # the statistic can miss only current mass strictly between two reference values.
    bound = 2 / len(ref)
    assert got["ks_statistic"] == pytest.approx(ks.statistic, abs=bound)
    # The p-value is the limiting Kolmogorov distribution's (scipy.stats.kstwobign) at the
    # effective size; ks_2samp(method="asymp") uses the finite-n kstwo, close at these sizes.
    root = math.sqrt(len(ref) * len(cur) / (len(ref) + len(cur)))
    p_low, p_high = (stats.kstwobign.sf(root * max(ks.statistic + d, 0)) for d in (bound, -bound))
    assert p_low - 1e-12 <= got["ks_pvalue"] <= p_high + 1e-12
    assert got["ks_pvalue"] == pytest.approx(ks.pvalue, rel=0.05, abs=1e-3) or ks.pvalue < 1e-6
    assert got["null_rate_reference"] == pytest.approx(1 - len(ref) / N_REF)
    assert got["null_rate_current"] == pytest.approx(1 - len(cur) / N_CUR)
    assert got["chi2_pvalue"] is None
    std = ref.std(ddof=1)
    if std == 0:
        assert got["mean_shift"] == (0.0 if cur.mean() == ref.mean() else None)
    else:
        assert got["mean_shift"] == pytest.approx((cur.mean() - ref.mean()) / std, rel=1e-9)


@pytest.mark.parametrize("name", CATEGORICAL)
def test_categorical_metrics_match_numpy_and_scipy(report, data, name):
    _, _, ref_cols, cur_cols = data
    got = report[name]
    ref_counts, cur_counts = category_counts(ref_cols[name], cur_cols[name])
    assert got["kind"] == "categorical"
    assert got["psi"] == pytest.approx(expected_psi(ref_counts, cur_counts), rel=1e-9, abs=1e-12)
    assert got["js_distance"] == pytest.approx(expected_js(ref_counts, cur_counts), rel=1e-9, abs=1e-9)
    table = np.array([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    expected_p = 1.0 if table.shape[1] == 1 else stats.chi2_contingency(table, correction=False).pvalue
    assert got["chi2_pvalue"] == pytest.approx(expected_p, rel=1e-9, abs=1e-300)
    assert got["ks_statistic"] is None and got["ks_pvalue"] is None and got["mean_shift"] is None


def test_statuses_follow_psi(report):
    assert report["identical"]["status"] == "ok" and report["identical"]["psi"] < 0.01
    assert report["strong"]["status"] == "drift" and report["strong"]["ks_statistic"] > 0.4
    assert report["constant"]["psi"] == 0 and report["constant"]["ks_statistic"] == 0
    assert report["constant_moved"]["status"] == "drift" and report["constant_moved"]["ks_statistic"] == 1
    assert report["single"]["psi"] == 0 and report["single"]["status"] == "ok"
    assert report["city_shifted"]["status"] in ("warn", "drift")
    for row in report.values():
        thresholds = (0.1, 0.25)
        expected = "drift" if row["psi"] >= thresholds[1] else "warn" if row["psi"] >= thresholds[0] else "ok"
        assert row["status"] == expected


def run(*args, cwd: Path, code: int):
    result = run_featurectl("drift", *args, cwd=cwd)
    assert result.code == code, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


def test_exit_codes_follow_fail_on_and_the_thresholds(data):
    ref, cur, _, _ = data
    for column_set, fail_on, psi_drift, code in [("identical", "drift", "0.25", 0), ("slight", "warn", "0.25", 1),
                                                 ("strong", "drift", "100", 0), ("strong", "warn", "100", 1)]:
        one_ref, one_cur = ref.with_name(f"{column_set}_ref.parquet"), ref.with_name(f"{column_set}_cur.parquet")
        pq.write_table(pq.read_table(ref, columns=[column_set]), one_ref)
        pq.write_table(pq.read_table(cur, columns=[column_set]), one_cur)
        run("--reference", one_ref, "--current", one_cur, "--fail-on", fail_on, "--psi-warn", "0.0001",
            "--psi-drift", psi_drift, cwd=ref.parent, code=code)


def test_text_and_markdown_reports_state_the_definition(data):
    ref, cur, _, _ = data
    text = run("--reference", ref, "--current", cur, cwd=ref.parent, code=1).stdout
    assert "strong" in text and "drift" in text and "deciles" in text and "floored at 0.0001" in text
    markdown = run("--reference", ref, "--current", cur, "--format", "markdown", cwd=ref.parent, code=1).stdout
    assert "| **drift** | strong |" in markdown and "floored at 0.0001" in markdown


@pytest.mark.parametrize("make, what", [
    (lambda ref, cur: ("--reference", ref.with_name("missing.parquet"), "--current", cur), "missing.parquet"),
    (lambda ref, cur: ("--reference", ref, "--current", ref.with_name("empty.parquet")), "empty"),
    (lambda ref, cur: ("--reference", ref, "--current", ref.with_name("data.txt")), "unknown file type"),
    (lambda ref, cur: ("--reference", ref, "--current", cur, "--psi-warn", "0.5", "--psi-drift", "0.2"), "psi-warn"),
    (lambda ref, cur: ("--reference", "window:2026-01-01", "--current", cur), "malformed window"),
    (lambda ref, cur: ("--reference", ref, "--current", ref.with_name("other.csv")), "in common"),
])
def test_bad_input_is_exit_2_naming_it(data, make, what):
    ref, cur, _, _ = data
    pq.write_table(pa.table({"identical": pa.array([], pa.float64())}), ref.with_name("empty.parquet"))
    ref.with_name("data.txt").write_text("x\n")
    ref.with_name("other.csv").write_text("unrelated\n1\n")
    result = run(*make(ref, cur), cwd=ref.parent, code=2)
    assert what in result.stderr


def test_staging_a_few_columns_at_a_time_gives_the_same_report(data, monkeypatch):
    """The numeric columns are staged in memory in runs that fit a byte budget (at 10M rows,
    three columns at a time): a budget of one column per run must not change a bin count."""
    from datetime import datetime, timezone

    from featurectl.app import monitoring
    from featurectl.core.monitoring import DriftThresholds
    from featurectl.stats import engine

    ref_path, cur_path, _, _ = data

    def run() -> dict:
        result = monitoring.drift(str(ref_path), str(cur_path), None, DriftThresholds(),
                                  monitoring.Sources(defs=None, offline=None, now=datetime.now(timezone.utc)))
        return {f.feature: f for f in result.features}

    together = run()
    monkeypatch.setattr(engine, "STAGE_BYTES", 1)
    one_at_a_time = run()
    assert set(one_at_a_time) == set(together) == set(NUMERIC + CATEGORICAL)
    for name in NUMERIC:
        got, want = one_at_a_time[name], together[name]
        assert (got.psi, got.ks_statistic, got.n_reference, got.n_current, got.status) == \
               (want.psi, want.ks_statistic, want.n_reference, want.n_current, want.status), name
        if want.mean_shift is None:  # a constant reference: no standard deviation to shift by
            assert got.mean_shift is None, name
        else:
            assert got.mean_shift == pytest.approx(want.mean_shift, rel=1e-9, abs=1e-12), name
