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

CENSORED, CAUSE, OTHER = 0, 1, 2


class FineGray:
    """`fit` returns self; after it: `params_`, `standard_errors_`, `summary_` (term, coef, se, hazard_ratio with
    CI, z, p), `loglik_`, `converged_`, `n_`, `events_`."""

    def __init__(self, alpha: float = 0.05, max_iter: int = 30, tolerance: float = 1e-9) -> None:
        self.alpha, self.max_iter, self.tolerance = alpha, max_iter, tolerance

    def fit(self, durations: Sequence[float] | pd.Series, causes: Sequence[object] | pd.Series,
            covariates: pd.DataFrame, cause: object, censored: object = CENSORED) -> FineGray:
        order = np.argsort(np.asarray(durations, float), kind="stable")
        times = np.asarray(durations, float)[order]
        labels = np.asarray(causes, object)[order]
        kind = np.where(labels == cause, CAUSE, np.where(labels == censored, CENSORED, OTHER))
        x = covariates.to_numpy(float)[order]
        self._data = _Data(times, kind, x - x.mean(axis=0), _censoring_left(times, kind))
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


def _censoring_left(times: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """G(t_i-): the Kaplan-Meier of the censoring times, just before each (sorted) time."""
    censor_times, counts = np.unique(times[kind == CENSORED], return_counts=True)
    at_risk = times.size - np.searchsorted(times, censor_times, side="left")
    survival = np.cumprod(1.0 - counts / at_risk)
    before = np.searchsorted(censor_times, times, side="left")
    return np.concatenate([[1.0], survival])[before]


class _Data:
    """Sorted data and the weighted risk sets of each failure from the cause."""

    def __init__(self, times: np.ndarray, kind: np.ndarray, x: np.ndarray, g_left: np.ndarray) -> None:
        self.times, self.kind, self.x, self.g_left = times, kind, x, g_left
        self.failures = np.flatnonzero(kind == CAUSE)

    def weights(self, beta: np.ndarray, at: float, g_at: float) -> np.ndarray:
        """Each patient's weight in the risk set at time `at`: exp(x b) while followed, times G(at-)/G(t_i-) after
        a competing failure, 0 after censoring."""
        risk = np.exp(self.x @ beta)
        followed = self.times >= at
        competed = ~followed & (self.kind == OTHER)
        return np.where(followed, risk, np.where(competed, risk * g_at / self.g_left, 0.0))

    def likelihood(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p = self.x.shape[1]
        loglik, score, information = 0.0, np.zeros(p), np.zeros((p, p))
        for t in np.unique(self.times[self.failures]):
            tied = self.failures[self.times[self.failures] == t]
            w = self.weights(beta, t, self.g_left[tied[0]])
            s0, s1 = w.sum(), w @ self.x
            mean = s1 / s0
            loglik += float((self.x[tied] @ beta).sum() - tied.size * np.log(s0))
            score += self.x[tied].sum(axis=0) - tied.size * mean
            information += tied.size * ((self.x * w[:, None]).T @ self.x / s0 - np.outer(mean, mean))
        return loglik, score, information

    def sandwich_middle(self, beta: np.ndarray) -> np.ndarray:
        """Sum over patients of (eta_i + psi_i)(eta_i + psi_i)': the score's variation (eta) plus what estimating
        the censoring distribution adds (psi)."""
        n, p = self.x.shape
        risk = np.exp(self.x @ beta)
        # per failure j: the risk set's sum and mean at its time
        sets = [self.weights(beta, self.times[j], self.g_left[j]) for j in self.failures]
        s0 = np.array([w.sum() for w in sets])
        means = np.array([w @ self.x / w.sum() for w in sets]) if sets else np.zeros((0, p))
        eta = np.zeros((n, p))
        fail_times = self.times[self.failures]
        for i in range(n):  # the compensator's part: i in each failure's risk set, with its weight there
            scale = np.where(fail_times <= self.times[i], risk[i], 0.0)
            if self.kind[i] == OTHER:
                scale = np.where(fail_times > self.times[i], risk[i] * self.g_left[self.failures] / self.g_left[i],
                                 scale)
            eta[i] = -((self.x[i] - means) * (scale / s0)[:, None]).sum(axis=0)
        eta[self.failures] += self.x[self.failures] - means  # the failures' own part
        psi = self._psi(beta, risk, s0, means)
        total = eta + psi
        return total.T @ total

    def _psi(self, beta: np.ndarray, risk: np.ndarray, s0: np.ndarray, means: np.ndarray) -> np.ndarray:
        """The censoring distribution's part of each patient's influence (Fine and Gray 1999, section 3)."""
        n, p = self.x.shape
        psi = np.zeros((n, p))
        accumulated = np.zeros(p)
        fail_times = self.times[self.failures]
        for t in np.unique(self.times):
            here = np.flatnonzero(self.times == t)
            censored_here = here[self.kind[here] == CENSORED]
            q = np.zeros(p)
            if censored_here.size:
                at_risk = np.count_nonzero(self.times >= t)
                competed = np.flatnonzero((self.times < t) & (self.kind == OTHER))
                for k in np.flatnonzero(fail_times >= t):
                    j = self.failures[k]
                    w = risk[competed] * self.g_left[j] / self.g_left[competed]
                    q += (w @ self.x[competed] - means[k] * w.sum()) / s0[k]
                accumulated = accumulated - q * censored_here.size / at_risk ** 2
                psi[here] = accumulated
                psi[censored_here] += q / at_risk
            else:
                psi[here] = accumulated
        return psi
