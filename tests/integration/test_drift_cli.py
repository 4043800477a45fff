"""`featurectl drift` and `featurectl profile` in a feature repository: kinds from the applied
dtypes, windows over the offline sources, feature logs, profiles, the monitoring: block."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from featurectl.sdk import FeatureStore
from tests.fixtures.repos import ANSI, copy_example_repo, run_featurectl

CONV = "driver_stats:conv_rate"
FEATURES = "driver_stats:conv_rate,driver_stats:avg_daily_trips,driver_stats:vehicle_type"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = copy_example_repo(tmp_path / "example_repo")
    with FeatureStore(repo, actor="tester") as fs:
        fs.apply()
    return repo


def cli(repo: Path, *args, code: int = 0):
    result = run_featurectl(*args, cwd=repo)
    assert result.code == code, result.output
    assert "Traceback" not in result.output and not ANSI.search(result.output)
    return result


def training_set(path: Path, n: int, seed: int, shift: float = 0.0) -> Path:
    """A get-historical-like training set: keys, a timestamp, features named as requested."""
    rng = np.random.default_rng(seed)
    pq.write_table(pa.table({
        "driver_id": rng.integers(1001, 1006, n),
        "event_timestamp": pa.array(np.full(n, np.datetime64("2026-10-30T00:00:00", "us")), pa.timestamp("us", "UTC")),
        "conv_rate": pa.array(np.clip(rng.normal(0.5 + shift, 0.1, n), 0, 1), pa.float32()),
        "avg_daily_trips": rng.poisson(10 + 20 * shift, n),
        "vehicle_type": rng.choice(["sedan", "suv", "van"], n, p=[0.6, 0.3, 0.1]),
    }), path)
    return path


def by_feature(stdout: str) -> dict[str, dict]:
    return {row["feature"]: row for row in json.loads(stdout)}


def test_features_take_their_kind_from_the_applied_dtypes(repo, tmp_path):
    ref, cur = training_set(tmp_path / "train.parquet", 3000, 1), training_set(tmp_path / "now.parquet", 3000, 2)
    rows = by_feature(cli(repo, "drift", "--reference", ref, "--current", cur, "--features", FEATURES,
                          "--format", "json").stdout)
    assert list(rows) == [CONV, "driver_stats:avg_daily_trips", "driver_stats:vehicle_type"]
    assert [r["kind"] for r in rows.values()] == ["numeric", "numeric", "categorical"]
    assert all(r["status"] == "ok" for r in rows.values())


def test_windows_read_the_offline_source_rows(repo):
    rows = by_feature(cli(repo, "drift", "--reference", "window:2026-10-29/2026-10-30T12:00",
                          "--current", "window:2026-10-30T12:00/2026-11-01", "--features", FEATURES,
                          "--format", "json").stdout)
    source = pq.read_table(repo / "data" / "driver_stats.parquet").to_pandas()
    cut = source["event_timestamp"] < "2026-10-30T12:00Z"
    assert rows[CONV]["n_reference"] == int(cut.sum()) and rows[CONV]["n_current"] == int((~cut).sum())
    assert rows[CONV]["null_rate_reference"] == pytest.approx(source[cut]["conv_rate"].isna().mean())


def test_a_feature_log_directory_counts_only_present_values(repo, tmp_path):
    """serve --log-features layout: DIR/<view>/*.parquet, each feature next to <feature>__status."""
    ref = training_set(tmp_path / "train.parquet", 2000, 1)
    log = tmp_path / "log" / "driver_stats"
    log.mkdir(parents=True)
    served = pq.read_table(training_set(tmp_path / "served.parquet", 1000, 3))
    status = pa.array(["PRESENT"] * 750 + ["NOT_FOUND"] * 250)  # the values under NOT_FOUND are not values
    served = served.append_column("conv_rate__status", status).append_column("request_id", pa.array(["r"] * 1000))
    pq.write_table(served.slice(0, 500), log / "part-0.parquet")
    pq.write_table(served.slice(500), log / "part-1.parquet")
    rows = by_feature(cli(repo, "drift", "--reference", ref, "--current", tmp_path / "log", "--features", CONV,
                          "--format", "json").stdout)
    assert rows[CONV]["n_current"] == 1000 and rows[CONV]["null_rate_current"] == 0.25


def test_bad_inputs_name_the_input_and_the_column(repo, tmp_path):
    ref = training_set(tmp_path / "train.parquet", 500, 1)
    no_conv = tmp_path / "no_conv.parquet"
    pq.write_table(pq.read_table(ref).drop(["conv_rate"]), no_conv)
    err = cli(repo, "drift", "--reference", ref, "--current", no_conv, "--features", CONV, code=2).stderr
    assert "current" in err and "no_conv.parquet" in err and "'conv_rate'" in err
    text = tmp_path / "text.csv"
    text.write_text("conv_rate\nhigh\nlow\n")
    err = cli(repo, "drift", "--reference", ref, "--current", text, "--features", CONV, code=2).stderr
    assert "text.csv" in err and "'conv_rate'" in err and "declared float32" in err
    err = cli(repo, "drift", "--reference", ref, "--current", "window:2026-10-31/2026-10-30", "--features", CONV,
              code=2).stderr
    assert "window:2026-10-31/2026-10-30" in err and "before" in err
    err = cli(repo, "drift", "--reference", ref, "--current", "window:yesterday/now", "--features", CONV,
              code=2).stderr
    assert "invalid timestamp 'yesterday'" in err
    err = cli(repo, "drift", "--reference", ref, "--current", ref, "--features", "customer_profile:favourite_areas",
              code=2).stderr
    assert "list<string>" in err


def test_drift_from_a_profile_equals_drift_from_the_raw_reference(repo, tmp_path):
    ref = training_set(tmp_path / "train.parquet", 40_000, 1)  # larger than the KS grid sample
    cur = training_set(tmp_path / "now.parquet", 30_000, 2, shift=0.3)
    profile = tmp_path / "train.profile.json"
    cli(repo, "profile", ref, "--features", FEATURES, "--out", profile)
    content = json.loads(profile.read_text())
    assert content["format_version"] == 1 and content["registry_revision"] == 1
    assert [f["feature_view_version"] for f in content["features"]] == ["1.0.0"] * 3
    assert len(content["features"][0]["deciles"]) == 9
    raw = by_feature(cli(repo, "drift", "--reference", ref, "--current", cur, "--features", FEATURES,
                         "--format", "json", code=1).stdout)
    from_profile = by_feature(cli(repo, "drift", "--reference", profile, "--current", cur, "--format", "json",
                                  code=1).stdout)
    assert list(from_profile) == list(raw)
    for name, row in raw.items():
        other = from_profile[name]
        for key in ("psi", "js_distance", "mean_shift", "chi2_pvalue", "null_rate_reference", "null_rate_current"):
            expected = row[key] if row[key] is None else pytest.approx(row[key], rel=1e-9, abs=1e-12)
            assert other[key] == expected, (name, key)
        if row["ks_statistic"] is not None:  # the KS grid comes from a sample: the same within its bound
            assert other["ks_statistic"] == pytest.approx(row["ks_statistic"], abs=0.003)
        assert other["status"] == row["status"]


def test_a_profile_of_a_column_holding_infinities_is_strict_json_and_drifts_as_the_raw_reference(tmp_path):
    """Deciles and grid edges may be ±inf (here a fifth of the values): the profile holds them
    as the strings "inf"/"-inf" (JSON has no infinity; writing them failed with exit 3 and
    'Out of range float values are not JSON compliant'), and drift reads them back as floats."""
    values = [1.0, 2.0, float("inf"), 3.0, -float("inf")] * 40
    ref, cur, profile = tmp_path / "ref.parquet", tmp_path / "cur.parquet", tmp_path / "ref.profile.json"
    pq.write_table(pa.table({"x": values}), ref)
    pq.write_table(pa.table({"x": [v * 1.5 for v in values]}), cur)
    run = lambda *args, code=0: cli(tmp_path, *args, code=code)  # noqa: E731 - no repository: kinds from types
    run("profile", ref, "--out", profile)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    (feature,) = json.loads(profile.read_text(), parse_constant=no_constants)["features"]
    assert feature["deciles"][0] == "-inf" and feature["deciles"][-1] == "inf"
    assert feature["mean"] is None and feature["std"] is None
    raw = by_feature(run("drift", "--reference", ref, "--current", cur, "--format", "json", code=1).stdout)
    stored = by_feature(run("drift", "--reference", profile, "--current", cur, "--format", "json", code=1).stdout)
    assert stored == raw


def test_a_profile_is_only_a_reference(repo, tmp_path):
    ref = training_set(tmp_path / "train.parquet", 500, 1)
    profile = tmp_path / "p.profile.json"
    cli(repo, "profile", ref, "--out", profile)
    err = cli(repo, "drift", "--reference", ref, "--current", profile, code=2).stderr
    assert "only be the reference" in err
    profile.write_text(json.dumps({"format": "featurectl.profile", "format_version": 99, "features": []}))
    err = cli(repo, "drift", "--reference", profile, "--current", ref, code=2).stderr
    assert "format_version 99" in err


def test_the_monitoring_block_sets_thresholds_and_flags_override(repo, tmp_path):
    ref = training_set(tmp_path / "train.parquet", 3000, 1)
    cur = training_set(tmp_path / "now.parquet", 3000, 2, shift=0.02)
    args = ("drift", "--reference", ref, "--current", cur, "--features", CONV, "--format", "json")
    psi = json.loads(cli(repo, *args).stdout)[0]["psi"]
    config = repo / "featurectl.yaml"
    data = yaml.safe_load(config.read_text())
    data["monitoring"] = {"drift": {"psi_warn": psi / 4, "psi_drift": psi / 2, "fail_on": "warn"}}
    config.write_text(yaml.safe_dump(data))
    assert json.loads(cli(repo, *args, code=1).stdout)[0]["status"] == "drift"
    cli(repo, *args, "--psi-drift", str(psi * 2), "--psi-warn", str(psi * 2))
    data["monitoring"] = {"drift": {"psi_warn": 0.5, "psi_drift": 0.1}}
    config.write_text(yaml.safe_dump(data))
    err = cli(repo, *args, code=2).stderr
    assert "featurectl.yaml" in err and "psi_warn" in err
