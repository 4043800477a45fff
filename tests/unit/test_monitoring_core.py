"""The pure monitoring verdicts and the fold of fine bins into PSI bins (core/monitoring.py)."""
from __future__ import annotations

import pytest

from featurectl.core.monitoring import (DRIFT_STATUSES, DriftThresholds, at_or_above, decile_counts, drift_status,
                                        freshness_status, ks_statistic, merge_edges)


@pytest.mark.parametrize("psi, expected", [(0.0, "ok"), (0.0999, "ok"), (0.1, "warn"), (0.2499, "warn"),
                                           (0.25, "drift"), (3.0, "drift")])
def test_drift_status_by_psi_at_the_thresholds(psi, expected):
    assert drift_status(psi, DriftThresholds()) == expected


@pytest.mark.parametrize("age, expected", [(0, "ok"), (3600, "ok"), (4320, "minor"), (4321, "major"),
                                           (7200, "major"), (7201, "critical"), (None, "critical")])
def test_freshness_status_by_age_over_sla(age, expected):
    assert freshness_status(age, 3600) == expected


def test_fail_on_is_at_or_above():
    assert [at_or_above(s, "warn", DRIFT_STATUSES) for s in DRIFT_STATUSES] == [False, True, True]
    assert [at_or_above(s, "drift", DRIFT_STATUSES) for s in DRIFT_STATUSES] == [False, False, True]


def test_thresholds_name_what_is_wrong():
    assert DriftThresholds(0.3, 0.2).problems() == ["psi-warn (0.3) must not be above psi-drift (0.2)"]
    problems = DriftThresholds(-1, 0.2, "bad").problems()
    assert any("psi-warn" in p for p in problems) and any("fail-on" in p for p in problems)


def test_fine_bins_fold_into_the_psi_bins_that_hold_them():
    edges = merge_edges([1.0, 1.0, 3.0])
    assert edges == [1.0, 3.0]
    # fine edges 0.5, 1, 2, 3, 4 and an open last bin
    assert decile_counts([0.5, 1.0, 2.0, 3.0, 4.0], [1, 2, 3, 4, 5, 6], edges) == [3, 7, 11]


def test_ks_statistic_over_cumulative_counts():
    assert ks_statistic([5, 0, 5], [0, 10, 0]) == 0.5
    assert ks_statistic([1, 0], [0, 1]) == 1.0
    assert ks_statistic([0, 0], [1, 1]) is None
