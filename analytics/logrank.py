"""Log-rank comparison of survival between groups, reported as R's `survdiff` does (observed, expected, chi-square)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines.statistics import multivariate_logrank_test


class LogRankTest:
    """k-group log-rank test; `fit` returns self.

    After `fit`: `statistic_` (chi-square), `degrees_of_freedom_`, `p_value_`, and `groups_`: one row per group
    with n, observed and expected events. lifelines gives the statistic; the expected counts (which it does not
    expose) are summed here over the pooled event times: E_g = sum_t d_t * n_g(t) / n(t).
    """

    def fit(self, durations: Sequence[float] | pd.Series, events: Sequence[bool] | pd.Series,
            groups: Sequence[object] | pd.Series) -> LogRankTest:
        frame = pd.DataFrame({"time": np.asarray(durations, float), "event": np.asarray(events, bool),
                              "group": np.asarray(groups, object)})
        labels = sorted(frame["group"].unique(), key=str)
        if len(labels) < 2:
            raise ValueError("a log-rank test needs at least two groups")
        result = multivariate_logrank_test(frame["time"], frame["group"], frame["event"])
        self.statistic_ = float(result.test_statistic)
        self.p_value_ = float(result.p_value)
        self.degrees_of_freedom_ = len(labels) - 1
        event_times, deaths = np.unique(frame.loc[frame["event"], "time"].to_numpy(), return_counts=True)
        at_risk_all = _at_risk(frame["time"].to_numpy(), event_times)
        rows = []
        for label in labels:
            group = frame[frame["group"] == label]
            share = _at_risk(group["time"].to_numpy(), event_times) / np.maximum(at_risk_all, 1)
            rows.append({"group": label, "n": len(group), "observed": int(group["event"].sum()),
                         "expected": float(np.sum(deaths * share))})
        self.groups_ = pd.DataFrame(rows)
        return self


def _at_risk(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many of `times` are >= each of `at` (still under observation just before it)."""
    ordered = np.sort(times)
    return ordered.size - np.searchsorted(ordered, at, side="left")
