"""The counting every estimator here shares: how many are still followed at a time, how many events each distinct
time has, and the product-limit curve just before each time."""

from __future__ import annotations

import numpy as np


def at_risk(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many of `times` are >= each of `at` (still under observation just before it)."""
    ordered = np.sort(times)
    return ordered.size - np.searchsorted(ordered, at, side="left")


def per_time(distinct: np.ndarray, times: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """Per sorted `distinct` time, how many of `times` fall on it, or the sum of their `values` (rows of any shape);
    each of `times` must be one of `distinct`."""
    values = np.ones(times.size) if values is None else np.asarray(values, float)
    sums = np.zeros((distinct.size, *values.shape[1:]))
    np.add.at(sums, np.searchsorted(distinct, times), values)
    return sums


def left_product_limit(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    """S(t-) at each row's time: the Kaplan-Meier of `events` over all rows, just before that time."""
    event_times = np.unique(times[events])
    survival = np.cumprod(1.0 - per_time(event_times, times[events]) / at_risk(times, event_times))
    return np.concatenate([[1.0], survival])[np.searchsorted(event_times, times, side="left")]
