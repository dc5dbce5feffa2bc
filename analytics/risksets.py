"""The Cox partial likelihood over risk sets, as R's `coxph` computes it: log-likelihood, score and information
for given coefficients, Efron or Breslow ties, strata, right-censored data.

lifelines fits the Efron model; this module is what it does not offer: Breslow ties, and the information matrix of
a model extended by time-varying terms x * g(t), which the proportional-hazards score test of R's `cox.zph`
(survival 3.x) needs. Risk-set sums are cumulated from the longest time down, so each distinct event time costs
O(p^2), not a pass over the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Ties = Literal["efron", "breslow"]


@dataclass(frozen=True)
class EventTime:
    """One distinct event time of one stratum: its tied events' rows, and the risk set's rows (time >= t)."""

    events: np.ndarray
    at_risk: np.ndarray


def event_times(times: np.ndarray, events: np.ndarray, strata: np.ndarray) -> list[EventTime]:
    """Every distinct (stratum, event time), in stratum then time order."""
    found = []
    for stratum in np.unique(strata):
        rows = np.flatnonzero(strata == stratum)
        for t in np.unique(times[rows][events[rows]]):
            found.append(EventTime(rows[(times[rows] == t) & events[rows]], rows[times[rows] >= t]))
    return found


@dataclass
class PartialLikelihood:
    """Log-likelihood, score and information of the partial likelihood at `beta` (p covariates), and, for the
    extended model x * g(t) with the extension's coefficients at 0, the score and information of all 2p terms."""

    loglik: float
    score: np.ndarray
    information: np.ndarray
    converged: bool = True  # set by `fit`: whether the iterations met the tolerance


def partial_likelihood(x: np.ndarray, beta: np.ndarray, times: np.ndarray, events: np.ndarray,
                       strata: np.ndarray | None = None, ties: Ties = "efron",
                       g: np.ndarray | None = None) -> PartialLikelihood:
    """At `beta`; with `g` (one value per row, used at each event time through its events' rows), the score and
    information are those of the covariates (x, x * g(t)) with the second block's coefficients at 0."""
    x = np.asarray(x, float)
    n, p = x.shape
    strata = np.zeros(n, int) if strata is None else np.asarray(strata)
    events = np.asarray(events, bool)
    eta = (x - x.mean(axis=0)) @ beta  # centred: the same likelihood (as R's coxph), without overflow in exp
    top = float(eta.max())
    weights = np.exp(eta - top)  # log-likelihood terms add `top` back
    extended = g is not None
    size = 2 * p if extended else p
    loglik, score, information = 0.0, np.zeros(size), np.zeros((size, size))
    for moment in event_times(np.asarray(times, float), events, strata):
        risk_w = weights[moment.at_risk]
        s0, s1 = risk_w.sum(), risk_w @ x[moment.at_risk]
        s2 = (x[moment.at_risk] * risk_w[:, None]).T @ x[moment.at_risk]
        tied_w = weights[moment.events]
        e0, e1 = tied_w.sum(), tied_w @ x[moment.events]
        e2 = (x[moment.events] * tied_w[:, None]).T @ x[moment.events]
        d = moment.events.size
        fractions = np.arange(d) / d if ties == "efron" else np.zeros(d)
        loglik += float(eta[moment.events].sum())
        block_score = x[moment.events].sum(axis=0)
        block_info = np.zeros((p, p))
        for f in fractions:
            r0, r1, r2 = s0 - f * e0, s1 - f * e1, s2 - f * e2
            mean = r1 / r0
            loglik -= top + float(np.log(r0))
            block_score -= mean
            block_info += r2 / r0 - np.outer(mean, mean)
        score[:p] += block_score
        information[:p, :p] += block_info
        if extended:
            assert g is not None
            gt = float(g[moment.events[0]])
            score[p:] += gt * block_score
            information[:p, p:] += gt * block_info
            information[p:, :p] += gt * block_info
            information[p:, p:] += gt * gt * block_info
    return PartialLikelihood(loglik, score, information)


def fit(x: np.ndarray, times: Sequence[float] | np.ndarray, events: Sequence[bool] | np.ndarray,
        strata: Sequence[object] | np.ndarray | None = None, ties: Ties = "efron", max_iter: int = 30,
        tolerance: float = 1e-9) -> tuple[np.ndarray, PartialLikelihood]:
    """Newton-Raphson from beta = 0, with step halving when the log-likelihood falls (R's `coxph.fit`)."""
    x = np.asarray(x, float)
    times, events = np.asarray(times, float), np.asarray(events, bool)
    strata_array = None if strata is None else np.asarray(strata)
    beta = np.zeros(x.shape[1])
    current = partial_likelihood(x, beta, times, events, strata_array, ties)
    converged = False
    for _ in range(max_iter):
        step = np.linalg.solve(current.information, current.score)
        candidate_beta = beta + step
        candidate = partial_likelihood(x, candidate_beta, times, events, strata_array, ties)
        halvings = 0
        while candidate.loglik < current.loglik - 1e-12 and halvings < 20:
            step /= 2
            candidate_beta = beta + step
            candidate = partial_likelihood(x, candidate_beta, times, events, strata_array, ties)
            halvings += 1
        converged = abs(candidate.loglik - current.loglik) < tolerance * max(1.0, abs(current.loglik))
        beta, current = candidate_beta, candidate
        if converged:
            break
    current.converged = converged and bool(np.all(np.isfinite(beta)))
    return beta, current
