"""The output policy: what every figure that leaves a centre passes through, declared once.

Designed from how trusted research environments check outputs (docs/decisions.md, "Output policy"), not from
cell suppression, whose blanks a reader gives back by subtraction, by the notes that say why a cell is blank, by
relations the suppression does not model, and by differencing releases:

- Every count is rounded to the midpoint of its band of `rounding` (OpenSAFELY's midpoint rounding): with 5,
  1-5 show as 3, 6-10 as 8; 0 stays 0. No count is blanked, so nothing says which counts are small, and every
  relation between counts (levels to totals, responders to CR + PR, one table's n to another's) narrows a count
  to a band at best, never to one value (`tests/test_disclosure.py` attacks it with every relation it knows).
- Protection is applied per centre, and a pooled figure is the sum of the centres' protected ones (or is fitted on
  their protected risk tables): a pooled count minus the published centres gives back only what those centres
  published, the hub computes exactly what the report does, and the pooled figures add no information.
- Survival is estimated from a protected risk table, as OpenSAFELY's Kaplan-Meier action does: times on a grid
  of `time_grid_months`, then the cumulative count of each outcome (event, competing event, censored) rounded
  as above. A curve then steps only when a band of patients is crossed, by a band's worth; its band, median,
  rates, numbers at risk and log-rank tests all come from that table, so none carries one patient's time.
- A test or model resting on a group smaller than `threshold` is not published (DataSHIELD's nfilter.tab and
  nfilter.subset), nor a model with more terms than `model_density` times its patients (nfilter.glm), nor a
  breakdown of a group into more non-empty levels than `levels_density` times its size (nfilter.levels.density).
- Estimates and statistics leave with `significant_figures`, p-values with `p_figures`: what a reader needs, not
  the 16 digits that let one enumerate candidate tables and rerun the test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class OutputPolicy:
    """The declared output policy (`[analysis.policy]` in the configuration); `protect=False` is for a centre's
    own use, and the report says which policy it was published under."""

    threshold: int = 5
    rounding: int = 5
    time_grid_months: float = 1.0
    significant_figures: int = 3
    p_figures: int = 2
    levels_density: float = 0.33
    model_density: float = 0.33
    protect: bool = True

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.rounding < 1 or self.time_grid_months <= 0:
            raise ValueError("the output policy's threshold and rounding must be >= 1 and its time grid > 0")
        if not (0 < self.levels_density <= 1 and 0 < self.model_density <= 1):
            raise ValueError("the output policy's densities must be in (0, 1]")

    def count(self, value: float | int | None) -> int | None:
        """A count as it may leave: the midpoint of its band of `rounding` (0 stays 0); unchanged unprotected."""
        if value is None or pd.isna(value):
            return None
        whole = int(value)
        if not self.protect or whole == 0:
            return whole
        return math.ceil(whole / self.rounding) * self.rounding - self.rounding // 2

    def counts(self, values: np.ndarray | Sequence[int]) -> np.ndarray:
        """`count` of each value (integers)."""
        whole = np.asarray(values, dtype=np.int64)
        if not self.protect:
            return whole
        return np.where(whole == 0, 0, np.ceil(whole / self.rounding).astype(np.int64) * self.rounding
                        - self.rounding // 2)

    def estimate(self, value: float | None) -> float | None:
        """An estimate or statistic to `significant_figures`."""
        return _significant(value, self.significant_figures) if self.protect else value

    def p_value(self, value: float | None) -> float | None:
        """A p-value to `p_figures`."""
        return _significant(value, self.p_figures) if self.protect else value

    def times(self, months: np.ndarray | pd.Series) -> np.ndarray:
        """Follow-up times (months) moved up to the end of their interval of the grid (0 stays 0): an event in
        month 7 of follow-up is counted at 7 months, whatever its day."""
        values = np.asarray(months, dtype=float)
        if not self.protect:
            return values
        return np.ceil(np.round(values / self.time_grid_months, 9)) * self.time_grid_months

    def too_small(self, *counts: float | int | None) -> bool:
        """Whether any of these counts (of a group's patients, events, patients still at risk) is below the
        threshold: a group no published test, model or estimate may rest on. Unprotected, nothing is."""
        return self.protect and any(c is None or pd.isna(c) or c < self.threshold for c in counts)

    def describe(self) -> str:
        """The policy in one paragraph, for the report's methods."""
        if not self.protect:
            return ("Unprotected: exact counts, times and statistics, for use inside the centre only. Nothing of "
                    "this report may leave the centre.")
        half = self.rounding // 2
        return (f"Every count is rounded to the midpoint of its band of {self.rounding} (1-{self.rounding} shows "
                f"as {self.rounding - half}; 0 is 0), per centre; a pooled count is the sum of the centres' "
                f"rounded counts, so totals, percentages and sums of rows differ slightly from exact ones. "
                f"Survival curves, rates, medians, numbers at risk, cumulative incidence and log-rank tests are "
                f"estimated from risk tables with times on a {self.time_grid_months:g}-month grid and cumulative "
                f"counts rounded the same way, so a curve steps only on groups of patients; an estimate is shown "
                f"where at least {self.threshold} remain at risk. Tests and models on a group of fewer than "
                f"{self.threshold}, with more terms than {self.model_density:g} x patients, or breakdowns into "
                f"more levels than {self.levels_density:g} x the group are not published. Estimates have "
                f"{self.significant_figures} significant figures, p-values {self.p_figures}.")


UNPROTECTED = OutputPolicy(protect=False)


class Refused(ValueError):
    """A request a centre does not answer: outside what its plan declares, or what its policy lets leave. The
    hub sees why, and a model that needed the answer says it was not published."""


def _significant(value: float | None, figures: int) -> float | None:
    if value is None or pd.isna(value) or not np.isfinite(value) or value == 0:
        return value
    return float(f"{float(value):.{figures}g}")


def protected_outcomes(times: np.ndarray | pd.Series, outcomes: np.ndarray | pd.Series,
                       policy: OutputPolicy) -> pd.DataFrame:
    """One centre's (time, outcome) rows replaced by the rows of its protected risk table: times on the grid, and
    per outcome (event, competing event, censored: any labels) as many rows at each grid time as its rounded
    cumulative count grew there. Every estimator fitted on them (Kaplan-Meier, cumulative incidence, log-rank)
    gives what the published risk table gives, and their concatenation over centres is the pooled one."""
    frame = pd.DataFrame({"time": policy.times(times), "outcome": np.asarray(outcomes)})
    if not policy.protect or frame.empty:
        return frame
    parts = []
    for outcome, rows in frame.groupby("outcome", sort=True):
        per_time = rows.groupby("time").size().sort_index()
        rounded = policy.counts(per_time.cumsum().to_numpy())
        grew = np.diff(np.concatenate([[0], rounded]))
        parts.append(pd.DataFrame({"time": np.repeat(per_time.index.to_numpy(), grew), "outcome": outcome}))
    result = pd.concat(parts, ignore_index=True).sort_values(["time", "outcome"], kind="stable")
    return result.astype({"outcome": frame["outcome"].dtype}).reset_index(drop=True)


def significant(table: pd.DataFrame, estimates: Sequence[str], p_values: Sequence[str],
                policy: OutputPolicy) -> pd.DataFrame:
    """`table` with its estimate columns to the policy's significant figures and its p-value columns to its
    p-value figures."""
    result = table.copy()
    for columns, rounding in ((estimates, policy.estimate), (p_values, policy.p_value)):
        for column in (c for c in columns if c in result.columns):
            result[column] = pd.to_numeric(result[column], errors="coerce").map(rounding).astype(float)
    return result
