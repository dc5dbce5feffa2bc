"""Counts and rates with exact confidence intervals, and the between-group test the reference study used.

The study compares categorical variables "using the Chi square or Fisher's exact test, when appropriate". The
rule here, written down so it is the same for every centre: Pearson's chi-square (Yates-corrected for 2x2, as R's
`chisq.test`) when every expected count is at least 5; otherwise Fisher's exact test, exact for 2x2 tables and
estimated by Monte Carlo over tables with the same margins for larger ones (R's `fisher.test(simulate.p.value=TRUE)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, chi2_contingency, fisher_exact, random_table
from scipy.stats.contingency import odds_ratio

MONTE_CARLO_TABLES = 20_000
_SEED = 20_170_731  # fixed, so a rerun gives the same p-value (the study's cut-off date)


@dataclass(frozen=True)
class Rate:
    """k of n with the Clopper-Pearson interval."""

    count: int
    total: int
    lower: float
    upper: float

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.total if self.total else float("nan")


def exact_rate(count: int, total: int, confidence: float = 0.95) -> Rate:
    """Clopper-Pearson ('exact') interval, as R's `binom.test` reports it."""
    if total == 0:
        return Rate(0, 0, float("nan"), float("nan"))
    interval = binomtest(int(count), int(total)).proportion_ci(confidence_level=confidence, method="exact")
    return Rate(int(count), int(total), float(interval.low), float(interval.high))


@dataclass(frozen=True)
class GroupComparison:
    """The test applied to one contingency table, named so a reader knows which it was."""

    test: str
    statistic: float
    p_value: float


def compare_groups(table: pd.DataFrame | np.ndarray) -> GroupComparison:
    """Chi-square when every expected count is >= 5, else Fisher's exact test (see the module docstring)."""
    observed = np.asarray(table, dtype=np.int64)
    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]
    if observed.shape[0] < 2 or observed.shape[1] < 2:
        return GroupComparison("not applicable (one group or one category)", float("nan"), float("nan"))
    statistic, p_value, _, expected = chi2_contingency(observed)
    if (expected >= 5).all():
        name = "chi-square (Yates)" if observed.shape == (2, 2) else "chi-square"
        return GroupComparison(name, float(statistic), float(p_value))
    if observed.shape == (2, 2):  # the statistic: the conditional MLE of the odds ratio, as R's fisher.test
        odds = odds_ratio(observed, kind="conditional").statistic
        return GroupComparison("Fisher's exact (conditional MLE odds ratio)", float(odds),
                               float(fisher_exact(observed).pvalue))
    return GroupComparison(f"Fisher's exact (Monte Carlo, {MONTE_CARLO_TABLES} tables)", float("nan"),
                           _fisher_monte_carlo(observed))


def _fisher_monte_carlo(observed: np.ndarray) -> float:
    """P(a table with these margins is no more probable than the observed one), by simulation as R does it."""
    margins = random_table(observed.sum(axis=1), observed.sum(axis=0), seed=_SEED)
    simulated = margins.rvs(size=MONTE_CARLO_TABLES)
    observed_p = margins.pmf(observed)
    as_extreme = np.count_nonzero(margins.pmf(simulated) <= observed_p * (1 + 1e-7))
    return float((1 + as_extreme) / (MONTE_CARLO_TABLES + 1))
