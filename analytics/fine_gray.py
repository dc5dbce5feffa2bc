"""The Fine-Gray proportional subdistribution hazards model, as R's `cmprsk::crr` fits it.

A patient who failed from a competing cause stays in the risk set of the cause of interest, weighted by how
likely they would still have been followed (the censoring distribution's Kaplan-Meier, G(t-)/G(t_i-)). The
coefficients maximise that weighted partial likelihood (Breslow ties) by Newton iterations; their variance is
Fine and Gray's sandwich, whose middle term also carries the estimation of G (crr's `crrvv`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics.counting import left_product_limit, per_time
from analytics.risksets import runaway

CENSORED, CAUSE, OTHER = 0, 1, 2


class FineGray:
    """`fit` returns self; after it: `params_`, `standard_errors_`, `summary_` (term, coef, se, hazard_ratio with
    CI, z, p), `loglik_`, `converged_` (false also where a coefficient may be infinite, named in `infinite_`),
    `n_`, `events_`."""

    def __init__(self, alpha: float = 0.05, max_iter: int = 30, tolerance: float = 1e-9) -> None:
        self.alpha, self.max_iter, self.tolerance = alpha, max_iter, tolerance

    def fit(self, durations: Sequence[float] | pd.Series, causes: Sequence[object] | pd.Series,
            covariates: pd.DataFrame, cause: object, censored: object = CENSORED) -> FineGray:
        order = np.argsort(np.asarray(durations, float), kind="stable")
        times = np.asarray(durations, float)[order]
        labels = np.asarray(causes, object)[order]
        kind = np.where(labels == cause, CAUSE, np.where(labels == censored, CENSORED, OTHER))
        x = covariates.to_numpy(float)[order]
        self._data = _Data(times, kind, x - x.mean(axis=0), left_product_limit(times, kind == CENSORED))
        beta = np.zeros(x.shape[1])
        current = self._data.likelihood(beta)
        self.converged_ = False
        for _ in range(self.max_iter):
            step = np.linalg.solve(current[2], current[1])
            halvings = 0
            while True:
                candidate = self._data.likelihood(beta + step)
                if candidate[0] >= current[0] - 1e-12 or halvings > 20:
                    break
                step, halvings = step / 2, halvings + 1
            done = abs(candidate[0] - current[0]) < self.tolerance * max(1.0, abs(current[0]))
            beta, current = beta + step, candidate
            if done:
                self.converged_ = bool(np.all(np.isfinite(beta)))
                break
        # crr stops after 10 iterations and says it did not converge; a separating covariate is no estimate here
        self.infinite_ = tuple(covariates.columns[i] for i in runaway(beta, current[1], current[2], self.tolerance)) \
            if self.converged_ else ()
        self.converged_ = self.converged_ and not self.infinite_
        information_inverse = np.linalg.inv(current[2])
        covariance = information_inverse @ self._data.sandwich_middle(beta) @ information_inverse
        se = np.sqrt(np.diag(covariance))
        z = beta / se
        spread = float(norm.ppf(1 - self.alpha / 2)) * se
        self.params_, self.standard_errors_, self.covariance_, self.loglik_ = beta, se, covariance, current[0]
        self.n_, self.events_ = int(times.size), int((kind == CAUSE).sum())
        self.summary_ = pd.DataFrame({
            "term": list(covariates.columns), "coef": beta, "se": se, "hazard_ratio": np.exp(beta),
            "hr_lower": np.exp(beta - spread), "hr_upper": np.exp(beta + spread), "z": z,
            "p": 2 * norm.sf(np.abs(z))})
        return self


class _Data:
    """Sorted data, and the weighted risk sets of the cause's failure times as cumulative sums: patients still
    followed (time >= t, summed from the end) and patients who failed from a competing cause before t (summed from
    the start, weighted 1/G(t_i-), then scaled by G(t-)). Linear in the number of patients."""

    def __init__(self, times: np.ndarray, kind: np.ndarray, x: np.ndarray, g_left: np.ndarray) -> None:
        self.times, self.kind, self.x, self.g_left = times, kind, x, g_left
        failures = kind == CAUSE
        self.fail_times = np.unique(times[failures])
        self.d = per_time(self.fail_times, times[failures])
        self.start = np.searchsorted(times, self.fail_times, side="left")  # first row still followed
        self.g_fail = g_left[self.start]  # G(t-) at each failure time
        self.fail_x = per_time(self.fail_times, times[failures], x[failures])
        self.outer = x[:, :, None] * x[:, None, :]

    def risk_sets(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """exp(x b) per row, and per failure time the weighted risk set's sum, mean and second moment."""
        risk = np.exp(self.x @ beta)
        competed = np.where(self.kind == OTHER, risk / self.g_left, 0.0)
        s0, s1, s2 = (self._risk_sum(risk * v, competed * v) for v in (
            np.ones(1), self.x.T, self.outer.transpose(1, 2, 0)))
        return risk, s0, s1 / s0[:, None], s2 / s0[:, None, None]

    def _risk_sum(self, followed: np.ndarray, competed: np.ndarray) -> np.ndarray:
        """Per failure time, the sum over the followed rows (time >= t) plus G(t-) times the sum over the competed
        rows (failed from another cause before t, already divided by their G(t_i-)); rows on the last axis."""
        followed, competed = np.moveaxis(followed, -1, 0), np.moveaxis(competed, -1, 0)
        g = self.g_fail.reshape(-1, *[1] * (followed.ndim - 1))
        return _from_end(followed)[self.start] + g * _from_start(competed)[self.start]

    def likelihood(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        _, s0, mean, second = self.risk_sets(beta)
        loglik = float((self.fail_x @ beta).sum() - (self.d * np.log(s0)).sum())
        score = (self.fail_x - self.d[:, None] * mean).sum(axis=0)
        information = np.einsum("k,kij->ij", self.d, second - mean[:, :, None] * mean[:, None, :])
        return loglik, score, information

    def sandwich_middle(self, beta: np.ndarray) -> np.ndarray:
        """Sum over patients of (eta_i + psi_i)(eta_i + psi_i)': the score's variation (eta) plus what estimating
        the censoring distribution adds (psi)."""
        risk, s0, mean, _ = self.risk_sets(beta)
        a, b = self.d / s0, (self.d / s0)[:, None] * mean
        # eta: each failure's compensator over the patients in its risk set, and the failures' own terms
        upto = np.searchsorted(self.fail_times, self.times, side="right")  # failure times <= t_i
        a_before, b_before = _from_start(a)[upto], _from_start(b)[upto]
        a_after, b_after = _from_end(a * self.g_fail)[upto], _from_end(b * self.g_fail[:, None])[upto]
        eta = -risk[:, None] * (self.x * a_before[:, None] - b_before)
        competed = self.kind == OTHER
        eta[competed] -= (risk / self.g_left)[competed, None] * (self.x[competed] * a_after[competed, None]
                                                                 - b_after[competed])
        failures = self.kind == CAUSE
        eta[failures] += self.x[failures] - mean[np.searchsorted(self.fail_times, self.times[failures])]
        influence = eta + self._psi(risk, s0, mean)
        return influence.T @ influence

    def _psi(self, risk: np.ndarray, s0: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """The censoring distribution's part of each patient's influence (Fine and Gray 1999, section 3)."""
        censored = self.kind == CENSORED
        times, counts = np.unique(self.times[censored], return_counts=True)
        before = np.searchsorted(self.times, times, side="left")  # rows with time < t (sorted)
        followed = self.times.size - before
        competed = np.where(self.kind == OTHER, risk / self.g_left, 0.0)
        c0, c1 = _from_start(competed)[before], _from_start(competed[:, None] * self.x)[before]
        weight = self.d * self.g_fail / s0
        later = np.searchsorted(self.fail_times, times, side="left")  # failure times >= t
        w_after, m_after = _from_end(weight)[later], _from_end(weight[:, None] * mean)[later]
        q = c1 * w_after[:, None] - c0[:, None] * m_after
        accumulated = np.cumsum(-q * (counts / followed ** 2)[:, None], axis=0)
        at = np.searchsorted(times, self.times, side="right") - 1  # the last censoring time <= t_i
        psi = np.where((at >= 0)[:, None], accumulated[np.maximum(at, 0)], 0.0)
        psi[censored] += q[at[censored]] / followed[at[censored], None]
        return psi


def _from_end(values: np.ndarray) -> np.ndarray:
    """[k] = sum of values[k:], with a trailing 0 (k = len)."""
    return np.concatenate([np.cumsum(values[::-1], axis=0)[::-1], np.zeros((1, *values.shape[1:]))])


def _from_start(values: np.ndarray) -> np.ndarray:
    """[k] = sum of values[:k], with a leading 0 (k = 0)."""
    return np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
