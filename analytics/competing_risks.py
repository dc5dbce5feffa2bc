"""Cumulative incidence with competing risks, as R's `cmprsk::cuminc` estimates it.

Sarcoma series report local recurrence and distant metastasis with death as a competing event: 1 - KM of one
event, censoring the others, overstates its incidence. The Aalen-Johansen estimate of cause k is
F_k(t) = sum over event times s <= t of S(s-) d_k(s) / n(s), S the all-cause Kaplan-Meier; its variance is
cuminc's (Gray's delta-method estimate), and the pointwise interval is taken on the log(-log) scale, which keeps
it inside [0, 1] (the band R users compute from cuminc's variance; NaN where F is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

CENSORED = 0


class CumulativeIncidence:
    """`fit` returns self. After it: `table_` (time, at_risk, events of the cause, competing events, incidence,
    variance, lower, upper) at each distinct event time (of any cause), and `n_`, `events_`."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, durations: Sequence[float] | pd.Series, causes: Sequence[object] | pd.Series, cause: object,
            censored: object = CENSORED) -> CumulativeIncidence:
        """`causes`: per patient the event that ended follow-up (`censored` for none); `cause`: the one estimated."""
        times = np.asarray(durations, float)
        labels = np.asarray(causes, object)
        if times.size == 0:
            raise ValueError("no patients to estimate cumulative incidence for")
        failed = labels != censored
        of_interest = labels == cause
        event_times = np.unique(times[failed])
        ordered = np.sort(times)
        at_risk = (ordered.size - np.searchsorted(ordered, event_times, side="left")).astype(float)
        d1 = np.array([np.count_nonzero(of_interest & (times == t)) for t in event_times], float)
        d2 = np.array([np.count_nonzero(failed & ~of_interest & (times == t)) for t in event_times], float)
        incidence, variance = _cuminc(at_risk, d1, d2)
        self.table_ = pd.DataFrame({"time": event_times, "at_risk": at_risk.astype(int), "events": d1.astype(int),
                                    "competing": d2.astype(int), "incidence": incidence, "variance": variance})
        self.table_["lower"], self.table_["upper"] = self._band(incidence, variance)
        self.n_ = int(times.size)
        self.events_ = int(of_interest.sum())
        return self

    def _band(self, incidence: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = float(norm.ppf(1 - self.alpha / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = z * np.sqrt(variance) / (incidence * np.log(incidence))
            lower, upper = incidence ** np.exp(-spread), incidence ** np.exp(spread)  # F log F < 0
        undefined = (incidence <= 0) | (incidence >= 1)
        return np.where(undefined, np.nan, lower), np.where(undefined, np.nan, upper)

    def at(self, horizons: Sequence[float]) -> pd.DataFrame:
        """The estimate at each horizon: the last step at or before it (0 before the first event)."""
        rows = []
        for horizon in horizons:
            before = self.table_[self.table_["time"] <= horizon]
            if before.empty:
                rows.append((horizon, 0.0, 0.0, float("nan"), float("nan")))
            else:
                last = before.iloc[-1]
                rows.append((horizon, last["incidence"], last["variance"], last["lower"], last["upper"]))
        return pd.DataFrame(rows, columns=["time", "incidence", "variance", "lower", "upper"])


def _cuminc(at_risk: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The estimate and cmprsk's variance, step by step over the distinct event times (cmprsk's `cinc`)."""
    survival, current = 1.0, 0.0
    v1 = v2 = v3 = 0.0
    incidence, variance = np.zeros(at_risk.size), np.zeros(at_risk.size)
    for i, (n, ours, others) in enumerate(zip(at_risk, d1, d2, strict=True)):
        after = survival * (n - ours - others) / n
        current += survival * ours / n
        if others > 0 and after > 0:
            ties = 1.0 - (others - 1.0) / (n - 1.0) if others > 1 else 1.0
            weight = survival * survival * ties * others / (n * n)
            t3, t4 = 1.0 / after, current / after
            v1, v2, v3 = v1 + t4 * t4 * weight, v2 + t3 * t4 * weight, v3 + t3 * t3 * weight
        if ours > 0:
            ties = 1.0 - (ours - 1.0) / (n - 1.0) if ours > 1 else 1.0
            weight = survival * survival * ties * ours / (n * n)
            t3 = 1.0 / after if after > 0 else 0.0
            t4 = 1.0 + t3 * current
            v1, v2, v3 = v1 + t4 * t4 * weight, v2 + t3 * t4 * weight, v3 + t3 * t3 * weight
        incidence[i] = current
        variance[i] = v1 + current * current * v3 - 2.0 * current * v2
        survival = after
    return incidence, variance
