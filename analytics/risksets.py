"""The Cox partial likelihood over risk sets, as R's `coxph` computes it: log-likelihood, score and information for
given coefficients, Efron or Breslow ties, strata, right-censored data.

Every Cox model of the project is fitted here (pooled, per centre, federated), by R's Newton iterations and R's
convergence and separation checks, so that they agree with `coxph` to its own precision and with each other; the
information matrix of a model extended by time-varying terms x * g(t) is what the proportional-hazards score test of
R's `cox.zph` (survival 3.x) needs. Risk-set sums are cumulated from the longest time down, so each distinct event
time costs O(p^2), not a pass over the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from lifelines.exceptions import ConvergenceError

from analytics.counting import per_time

Ties = Literal["efron", "breslow"]


@dataclass
class PartialLikelihood:
    """Log-likelihood, score and information of the partial likelihood at `beta` (p covariates), and, for the
    extended model x * g(t) with the extension's coefficients at 0, the score and information of all 2p terms."""

    loglik: float
    score: np.ndarray
    information: np.ndarray
    converged: bool = True  # set by `newton`: whether the iterations met the tolerance
    # set by `newton`: terms whose next step is still large when the log-likelihood has converged (R: "Loglik
    # converged before variable k; coefficient may be infinite"), i.e. separation
    infinite: tuple[int, ...] = ()


def partial_likelihood(x: np.ndarray, beta: np.ndarray, times: np.ndarray, events: np.ndarray,
                       strata: np.ndarray | None = None, ties: Ties = "efron",
                       g: np.ndarray | None = None) -> PartialLikelihood:
    """At `beta`; with `g` (one value per row, used at each event time through its events' rows), the score and
    information are those of the covariates (x, x * g(t)) with the second block's coefficients at 0."""
    x = np.asarray(x, float)
    n, p = x.shape
    times, events = np.asarray(times, float), np.asarray(events, bool)
    layers = np.zeros(n, int) if strata is None else np.unique(np.asarray(strata).astype(str), return_inverse=True)[1]
    eta = (x - x.mean(axis=0)) @ beta  # centred: the same likelihood (as R's coxph), without overflow in exp
    top = float(eta.max())
    weights = np.exp(eta - top)  # log-likelihood terms add `top` back
    loglik, score, blocks, g_at = 0.0, np.zeros(p), [], []
    for layer in np.unique(layers):
        rows = np.flatnonzero(layers == layer)
        moments = _moments(x[rows], weights[rows], times[rows], events[rows], ties)
        if moments is None:
            continue
        tied_x, means, covariances, first_rows, log_r0 = moments
        loglik += float(eta[rows][events[rows]].sum()) - float(log_r0.sum()) - top * log_r0.size
        block_scores = tied_x - means  # per event time: its events' covariates minus the risk-set means
        score += block_scores.sum(axis=0)
        blocks.append((block_scores, covariances))
        if g is not None:
            g_at.append(np.asarray(g, float)[rows][first_rows])
    information = sum((c.sum(axis=0) for _, c in blocks), np.zeros((p, p)))
    if g is None:
        return PartialLikelihood(loglik, score, information)
    gs = np.concatenate(g_at) if g_at else np.zeros(0)
    scores = np.concatenate([b for b, _ in blocks]) if blocks else np.zeros((0, p))
    covs = np.concatenate([c for _, c in blocks]) if blocks else np.zeros((0, p, p))
    extended_info = np.block([[information, np.einsum("t,tij->ij", gs, covs)],
                              [np.einsum("t,tij->ij", gs, covs), np.einsum("t,tij->ij", gs * gs, covs)]])
    return PartialLikelihood(loglik, np.concatenate([score, gs @ scores]), extended_info)


def _moments(x: np.ndarray, w: np.ndarray, times: np.ndarray, events: np.ndarray, ties: Ties
             ) -> tuple[np.ndarray, ...] | None:
    """Per distinct event time of one stratum (ascending): its events' covariate sum, the risk-set means and
    covariances summed over the Efron (or Breslow) steps, a row of its events, and every step's log risk-set sum.
    Risk sets (time >= t) are cumulative sums from the longest time down: linear in the number of rows."""
    if not events.any():
        return None
    order = np.argsort(-times, kind="stable")
    x, w, times, events = x[order], w[order], times[order], events[order]
    outer = x[:, :, None] * x[:, None, :]
    event_times = np.unique(times[events])
    rows = np.flatnonzero(events)
    last = np.searchsorted(-times, -event_times, side="right") - 1  # the last row (shortest time) still at risk
    s0, s1, s2 = (np.cumsum(v, axis=0)[last] for v in (w, w[:, None] * x, w[:, None, None] * outer))
    tied = times[rows]
    d, e0 = per_time(event_times, tied), per_time(event_times, tied, w[rows])
    e1, e2 = per_time(event_times, tied, w[rows, None] * x[rows]), per_time(event_times, tied, w[rows, None, None]
                                                                             * outer[rows])
    tied_x = per_time(event_times, tied, x[rows])
    means, covariances = np.zeros_like(s1), np.zeros_like(s2)
    log_r0 = []
    for step in range(int(d.max())):  # Efron: the k-th of d tied events sees the risk set less k/d of them
        active = d > step
        f = np.where(active, step / d if ties == "efron" else 0.0, 0.0)
        r0 = s0 - f * e0
        r1 = s1 - f[:, None] * e1
        r2 = s2 - f[:, None, None] * e2
        mean = r1 / r0[:, None]
        means += np.where(active[:, None], mean, 0.0)
        covariances += np.where(active[:, None, None], r2 / r0[:, None, None] - mean[:, :, None] * mean[:, None, :],
                                0.0)
        log_r0.append(np.log(r0[active]))
    first_rows = order[rows[np.unique(np.searchsorted(event_times, tied), return_index=True)[1]]]
    return tied_x, means, covariances, first_rows, np.concatenate(log_r0)


def fit(x: np.ndarray, times: Sequence[float] | np.ndarray, events: Sequence[bool] | np.ndarray,
        strata: Sequence[object] | np.ndarray | None = None, ties: Ties = "efron", max_iter: int = 30,
        tolerance: float = 1e-9) -> tuple[np.ndarray, PartialLikelihood]:
    """Newton-Raphson from beta = 0 over the rows given."""
    x = np.asarray(x, float)
    times, events = np.asarray(times, float), np.asarray(events, bool)
    strata_array = None if strata is None else np.asarray(strata)
    return newton(lambda beta: partial_likelihood(x, beta, times, events, strata_array, ties), x.shape[1],
                  max_iter, tolerance)


def newton(evaluate: Callable[[np.ndarray], PartialLikelihood], p: int, max_iter: int = 30,
           tolerance: float = 1e-9) -> tuple[np.ndarray, PartialLikelihood]:
    """Newton-Raphson from beta = 0, with step halving when the log-likelihood falls (R's `coxph.fit`).

    `evaluate` gives the partial likelihood at a beta: of rows here, or summed over centres that each evaluate
    their own stratum (`analytics.federated`), the same iterations either way."""
    beta = np.zeros(p)
    current = evaluate(beta)
    converged = False
    for _ in range(max_iter):
        step = np.linalg.solve(current.information, current.score)
        candidate_beta = beta + step
        candidate = evaluate(candidate_beta)
        halvings = 0
        while candidate.loglik < current.loglik - 1e-12 and halvings < 20:
            step /= 2
            candidate_beta = beta + step
            candidate = evaluate(candidate_beta)
            halvings += 1
        converged = abs(candidate.loglik - current.loglik) < tolerance * max(1.0, abs(current.loglik))
        beta, current = candidate_beta, candidate
        if converged:
            break
    current.converged = converged and bool(np.all(np.isfinite(beta)))
    if current.converged:
        current.infinite = runaway(beta, current.score, current.information, tolerance)
    return beta, current


def runaway(beta: np.ndarray, score: np.ndarray, information: np.ndarray, tolerance: float) -> tuple[int, ...]:
    """The terms whose next Newton step is still large once the log-likelihood has converged (R's coxph: abs(u %*%
    var) > eps and > sqrt(eps) * abs(beta)): a monotone likelihood, the coefficient heading for infinity."""
    following = np.abs(np.linalg.solve(information, score))
    flagged = (following > tolerance) & (following > np.sqrt(tolerance) * np.abs(beta))
    return tuple(int(i) for i in np.flatnonzero(flagged))


def check_estimable(likelihood: PartialLikelihood, names: Sequence[str]) -> None:
    """Raise what R warns about instead of passing a runaway coefficient off as an estimate: iterations that did
    not converge, or a coefficient that may be infinite (a covariate separating the events)."""
    if not likelihood.converged:
        raise ConvergenceError("the model did not converge (a covariate may separate events perfectly)")
    if likelihood.infinite:
        raise may_be_infinite([names[i] for i in likelihood.infinite])


def may_be_infinite(terms: Sequence[str]) -> ConvergenceError:
    """What a table says of a model with runaway terms, in R's words."""
    return ConvergenceError(f"the log-likelihood converged before {', '.join(terms)}: its coefficient may be "
                            "infinite (a covariate separates the events)")
