"""Kaplan-Meier estimates with the confidence intervals R's `survival` package reports.

lifelines computes the product-limit estimate and the event table; its confidence band is the log-log
("exponential Greenwood") one, while R's `survfit` defaults to `conf.type = "log"`. Analysts compare our numbers
with published R output, so the band is computed here from Greenwood's variance with the method named, and the
median and its interval follow R's `quantile.survfit` rule (the first time the curve, or the band, reaches 0.5;
the midpoint of a flat stretch lying exactly at 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from scipy.stats import norm

from analytics.events import event_indicator

CiMethod = Literal["log", "log-log", "plain"]
CI_METHODS: tuple[CiMethod, ...] = ("log", "log-log", "plain")
CI_LABEL = {"log": "log (R survival default, conf.type='log')", "log-log": "log-log (lifelines default)",
            "plain": "plain (linear Greenwood)"}
_EXACT_HALF = 1e-9


@dataclass(frozen=True)
class SurvivalAt:
    """The estimate at one horizon: S(t), its interval and how many were still at risk."""

    time: float
    survival: float
    lower: float
    upper: float
    at_risk: int


class KaplanMeier:
    """Product-limit survival estimate; `fit` returns self and results are plain attributes (lifelines style).

    After `fit`: `table_` (time, at_risk, events, censored, survival, std_err of log S, lower, upper),
    `median_`, `median_lower_`, `median_upper_` (NaN when not reached), `n_`, `events_`.
    """

    def __init__(self, ci_method: CiMethod = "log", alpha: float = 0.05) -> None:
        if ci_method not in CI_METHODS:
            raise ValueError(f"unknown CI method {ci_method!r}; expected one of {', '.join(CI_METHODS)}")
        self.ci_method = ci_method
        self.alpha = alpha

    def fit(self, durations: Sequence[float] | pd.Series, events: Sequence[bool] | pd.Series,
            label: str = "all") -> KaplanMeier:
        times = np.asarray(durations, dtype=float)
        observed = event_indicator(events)
        if times.size == 0:
            raise ValueError(f"{label}: no patients to estimate survival for")
        self.label = label
        self.fitter_ = KaplanMeierFitter(alpha=self.alpha).fit(times, observed, label=label)
        events_table = self.fitter_.event_table
        table = pd.DataFrame({
            "time": events_table.index.to_numpy(dtype=float),
            "at_risk": events_table["at_risk"].to_numpy(dtype=int),
            "events": events_table["observed"].to_numpy(dtype=int),
            "censored": events_table["censored"].to_numpy(dtype=int),
        })
        table["survival"] = np.cumprod(1.0 - table["events"] / table["at_risk"])
        at_risk, deaths = table["at_risk"].to_numpy(float), table["events"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            greenwood = np.cumsum(np.where(deaths > 0, deaths / (at_risk * (at_risk - deaths)), 0.0))
        table["std_err"] = np.sqrt(greenwood)
        table["lower"], table["upper"] = self._band(table["survival"].to_numpy(), table["std_err"].to_numpy())
        self.table_ = table
        self.n_ = int(times.size)
        self.events_ = int(observed.sum())
        self.median_ = self._quantile_time(self.table_["survival"].to_numpy())
        self.median_lower_ = self._quantile_time(self.table_["lower"].to_numpy())
        self.median_upper_ = self._quantile_time(self.table_["upper"].to_numpy())
        return self

    def _band(self, survival: np.ndarray, std_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (1 - alpha) limits by the chosen transform; NaN where S is 0, and on the log-log scale where S is
        1 (as R reports)."""
        z = float(norm.ppf(1 - self.alpha / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.ci_method == "log":
                lower, upper = survival * np.exp(-z * std_err), survival * np.exp(z * std_err)
            elif self.ci_method == "log-log":
                log_s = np.log(survival)
                spread = z * std_err / log_s
                lower, upper = np.exp(-np.exp(np.log(-log_s) - spread)), np.exp(-np.exp(np.log(-log_s) + spread))
                whole = survival >= 1.0  # log(-log 1) is undefined: R reports NA, not [1, 1]
                lower, upper = np.where(whole, np.nan, lower), np.where(whole, np.nan, upper)
            else:
                lower, upper = survival - z * survival * std_err, survival + z * survival * std_err
        zero = survival <= 0
        lower = np.where(zero, np.nan, np.clip(lower, 0.0, 1.0))
        upper = np.where(zero, np.nan, np.clip(upper, 0.0, 1.0))
        return lower, upper

    def _quantile_time(self, curve: np.ndarray, p: float = 0.5) -> float:
        """R's rule: the first time the curve is <= p; when it sits exactly at p, the midpoint between that time
        and the curve's next drop (censoring times on the flat stretch do not count), or the last follow-up time
        when it never drops again. A confidence limit that is
        undefined (S = 0) never counts as reaching p, so a bound the band never reaches is NaN, as R's NA."""
        times = self.table_["time"].to_numpy()
        values = curve  # a band is NaN where S = 0: it never reaches p there (R: the bound is NA)
        steps = np.flatnonzero(values <= p + _EXACT_HALF)
        if steps.size == 0:
            return float("nan")
        first = int(steps[0])
        if abs(values[first] - p) < _EXACT_HALF:  # flat at p until the next drop, or the end of follow-up
            drops = np.flatnonzero(values[first:] < values[first] - _EXACT_HALF)
            end = times[first + int(drops[0])] if drops.size else times[-1]
            return float((times[first] + end) / 2)
        return float(times[first])

    def at(self, horizons: Sequence[float] | np.ndarray) -> list[SurvivalAt]:
        """S(t) at each horizon as R's `summary(fit, times=)` gives it: the last step at or before t."""
        table = self.table_
        results = []
        for horizon in horizons:
            before = table[table["time"] <= horizon]
            still = int((self.fitter_.durations >= horizon).sum())
            if horizon > self.follow_up_beyond:
                results.append(SurvivalAt(float(horizon), float("nan"), float("nan"), float("nan"), still))
                continue
            last = before.iloc[-1]
            results.append(SurvivalAt(float(horizon), float(last["survival"]), float(last["lower"]),
                                      float(last["upper"]), still))
        return results

    @property
    def follow_up_beyond(self) -> float:
        """The longest observed time: an estimate beyond it would be extrapolation, so it is reported as missing."""
        return float(self.table_["time"].max())
