"""p-values from the statistics the engine computed, with scipy's special functions rather
than hand-written distributions (the Kolmogorov distribution is easy to get subtly wrong).

scipy.special, not scipy.stats: the same functions scipy.stats' `kstwobign` and `chi2` are built
on, at a third of the import time (importing scipy.stats cost more than the whole drift scan
of a million rows here).
"""
from __future__ import annotations

import math
import threading

from featurectl.core.monitoring import PValues


def preload() -> None:
    """Import scipy.special on a background thread while the scans run: DuckDB releases the
    GIL, so the ~0.3 s import overlaps them instead of following them."""
    threading.Thread(target=lambda: __import__("scipy.special"), name="preload-scipy", daemon=True).start()


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided two-sample KS p-value from the limiting Kolmogorov distribution at the
    effective size n·m/(n+m) (= scipy.stats.kstwobign.sf(sqrt(n·m/(n+m)) · D))."""
    from scipy.special import kolmogorov

    effective = n_reference * n_current / (n_reference + n_current)
    return float(min(max(kolmogorov(math.sqrt(effective) * statistic), 0.0), 1.0))


def chi2_pvalue(statistic: float, dof: int) -> float:
    """Upper tail of the chi-squared distribution (= scipy.stats.chi2.sf(statistic, dof))."""
    if dof <= 0:  # one category on both sides: nothing can differ
        return 1.0
    from scipy.special import chdtrc

    return float(chdtrc(dof, statistic))


PVALUES: PValues = (ks_pvalue, chi2_pvalue)
