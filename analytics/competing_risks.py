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
from scipy.stats import chi2, norm

from analytics.counting import at_risk, per_time

CENSORED = 0


class CumulativeIncidence:
    """`fit` returns self. After it: `table_` (time, at_risk, events of the cause, competing events, incidence,
    variance, lower, upper) at each distinct event time (of any cause), and `n_`, `events_`, `follow_up_` (the
    longest time observed)."""

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
        followed = at_risk(times, event_times).astype(float)
        d1 = per_time(event_times, times[of_interest])
        d2 = per_time(event_times, times[failed & ~of_interest])
        incidence, variance = _cuminc(followed, d1, d2)
        self.table_ = pd.DataFrame({"time": event_times, "at_risk": followed.astype(int), "events": d1.astype(int),
                                    "competing": d2.astype(int), "incidence": incidence, "variance": variance})
        self.table_["lower"], self.table_["upper"] = self._band(incidence, variance)
        self.n_ = int(times.size)
        self.events_ = int(of_interest.sum())
        self.follow_up_ = float(times.max())
        return self

    def _band(self, incidence: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = float(norm.ppf(1 - self.alpha / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = z * np.sqrt(variance) / (incidence * np.log(incidence))
            lower, upper = incidence ** np.exp(-spread), incidence ** np.exp(spread)  # F log F < 0
        undefined = (incidence <= 0) | (incidence >= 1)
        return np.where(undefined, np.nan, lower), np.where(undefined, np.nan, upper)

    def at(self, horizons: Sequence[float]) -> pd.DataFrame:
        """The estimate at each horizon: the last step at or before it (0 before the first event); missing past the
        longest follow-up, as cmprsk's `timepoints` (an estimate there would be extrapolation)."""
        rows = []
        for horizon in horizons:
            before = self.table_[self.table_["time"] <= horizon]
            if horizon > self.follow_up_:
                rows.append((horizon, float("nan"), float("nan"), float("nan"), float("nan")))
            elif before.empty:
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


class GrayTest:
    """Gray's K-sample test that the cumulative incidence of one cause is the same in every group (Gray 1988), with
    the weight (1 - F(t-))^rho, strata summed, as `cmprsk::cuminc(...)$Tests` computes it. `fit` returns self;
    after it: `statistic_` (chi-square), `degrees_of_freedom_`, `p_value_`."""

    def __init__(self, rho: float = 0.0) -> None:
        self.rho = rho

    def fit(self, durations: Sequence[float] | pd.Series, causes: Sequence[object] | pd.Series,
            groups: Sequence[object] | pd.Series, cause: object, censored: object = CENSORED,
            strata: Sequence[object] | pd.Series | None = None) -> GrayTest:
        times = np.asarray(durations, float)
        labels = np.asarray(causes, object)
        kind = np.where(labels == cause, 1, np.where(labels == censored, 0, 2))
        levels = sorted(set(np.asarray(groups, object).tolist()), key=str)
        if len(levels) < 2:
            raise ValueError("Gray's test needs at least two groups")
        group = np.array([levels.index(g) for g in np.asarray(groups, object)])
        layers = np.zeros(times.size, int) if strata is None else np.unique(np.asarray(strata, object).astype(str),
                                                                             return_inverse=True)[1]
        score, variance = np.zeros(len(levels) - 1), np.zeros((len(levels) - 1, len(levels) - 1))
        for layer in np.unique(layers):
            rows = layers == layer
            s, v = _gray_stratum(times[rows], kind[rows], group[rows], len(levels), self.rho)
            score += s
            variance += v
        self.degrees_of_freedom_ = len(levels) - 1
        if np.linalg.matrix_rank(variance) < variance.shape[0]:  # a group without the cause's events: no test
            self.statistic_, self.p_value_ = float("nan"), float("nan")  # (R reports statistic -1, p 1)
            return self
        self.statistic_ = float(score @ np.linalg.solve(variance, score))
        self.p_value_ = float(chi2.sf(self.statistic_, self.degrees_of_freedom_))
        return self


def _gray_stratum(times: np.ndarray, kind: np.ndarray, group: np.ndarray, groups: int,
                  rho: float) -> tuple[np.ndarray, np.ndarray]:
    """The scores of the first K-1 groups and their covariance in one stratum (Gray 1988, section 2)."""
    k1 = groups - 1
    followed = np.bincount(group, minlength=groups).astype(float)
    f_before, s_before = np.zeros(groups), np.ones(groups)  # per group: F of the cause, all-cause KM, at t-
    pooled_before = 0.0
    score, v = np.zeros(k1), np.zeros((k1, k1))
    c, v2, v3 = np.zeros((groups, groups)), np.zeros((k1, groups)), np.zeros(groups)
    distinct, position = np.unique(times, return_inverse=True)
    counts = np.zeros((distinct.size, 3, groups))  # per time: censored, the cause, other causes; per group
    np.add.at(counts, (position, kind, group), 1.0)
    for d in counts:
        n1, n2 = d[1].sum(), d[2].sum()
        if n1 > 0 or n2 > 0:
            present = followed > 0
            safe = np.where(present, followed, 1.0)
            s_after = np.where(present, s_before * (followed - d[1] - d[2]) / safe, s_before)
            f_after = np.where(present, f_before + s_before * d[1] / safe, f_before)
            h = np.divide(followed, s_before, out=np.zeros(groups), where=present)  # weighted risk sets
            total_h = h.sum()
            total_r = (h * (1.0 - f_before)).sum()
            pooled = pooled_before + n1 / total_h
            weight = (1.0 - pooled_before) ** rho
            a = np.where(present[:, None] & present[None, :], -weight * np.outer(h, h) / total_h, 0.0)
            np.fill_diagonal(a, np.where(present, weight * h * (1.0 - h / total_h), 0.0))
            c += a * n1 / (total_h * (1.0 - pooled_before))
            score += np.where(present[:k1], weight * (d[1][:k1] - n1 * h[:k1] * (1.0 - f_before[:k1]) / total_r),
                              0.0)
            if n1 > 0:
                for k in np.flatnonzero(present):
                    t4 = 1.0 - (1.0 - pooled) / s_after[k] if s_after[k] > 0 else 1.0
                    t5 = 1.0 - (n1 - 1.0) / (total_h * s_before[k] - 1.0) if n1 > 1 else 1.0
                    t3 = t5 * s_before[k] * n1 / (total_h * followed[k])
                    v3[k] += t4 * t4 * t3
                    t1 = a[:k1, k] - t4 * c[:k1, k]
                    v2[:, k] += t1 * t4 * t3
                    v += np.outer(t1, t1) * t3
            if n2 > 0:
                for k in np.flatnonzero((s_after > 0) & (d[2] > 0)):
                    t4 = (1.0 - pooled) / s_after[k]
                    t5 = 1.0 - (d[2][k] - 1.0) / (followed[k] - 1.0) if d[2][k] > 1 else 1.0
                    t3 = t5 * s_before[k] ** 2 * d[2][k] / followed[k] ** 2
                    v3[k] += t4 * t4 * t3
                    t1 = t4 * c[:k1, k]
                    v2[:, k] -= t1 * t4 * t3
                    v += np.outer(t1, t1) * t3
            f_before, s_before, pooled_before = f_after, s_after, pooled
        followed -= d.sum(axis=0)
    v += (c[:k1] * v3) @ c[:k1].T + c[:k1] @ v2.T + v2 @ c[:k1].T
    return score, v
