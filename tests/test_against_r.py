"""Differential tests: the estimators against R's survival package itself, on many random datasets.

Each dataset is drawn to reach the corners real centres reach: heavy ties (times in whole months over a short
range), heavy censoring, groups without a single event, datasets with no event at all, a stratum of one patient,
one-patient datasets. R computes survfit (log CI, R's default), quantile (median and its CI), survdiff, coxph
(Efron and Breslow) and cox.zph (survival 3.x), and cmprsk's cuminc (cumulative incidence, its variance and
Gray's test, with and without strata) and crr (Fine-Gray coefficients and their sandwich standard errors);
every number must agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from lifelines.exceptions import ConvergenceError

from analytics import CoxModel, KaplanMeier, LogRankTest
from analytics.competing_risks import CumulativeIncidence, GrayTest
from analytics.fine_gray import FineGray
from tests.r_reference import require_r, run_r

DATASETS = 80
Reference = tuple[dict[int, pd.DataFrame], dict[tuple[int, str], np.ndarray]]  # the datasets, and R's results
SURVIVAL_R = """
for (id in unique(d$dataset)) {
  s <- d[d$dataset == id, ]
  fit <- survfit(Surv(time, status) ~ 1, data = s, conf.type = "log")
  emit(id, "km_time", fit$time); emit(id, "km_surv", fit$surv)
  emit(id, "km_lower", fit$lower); emit(id, "km_upper", fit$upper)
  loglog <- survfit(Surv(time, status) ~ 1, data = s, conf.type = "log-log")
  emit(id, "km_loglog_lower", loglog$lower); emit(id, "km_loglog_upper", loglog$upper)
  q <- quantile(fit, 0.5)
  emit(id, "median", c(q$quantile, q$lower, q$upper))
  if (length(unique(s$group)) > 1) {
    sd <- survdiff(Surv(time, status) ~ group, data = s)
    emit(id, "chisq", sd$chisq); emit(id, "observed", sd$obs); emit(id, "expected", sd$exp)
  }
  if (s$kind[1] == "cox") for (ties in c("efron", "breslow")) {
    f <- coxph(Surv(time, status) ~ x1 + x2 + strata(stratum), data = s, ties = ties)
    emit(id, paste0(ties, "_coef"), coef(f)); emit(id, paste0(ties, "_se"), sqrt(diag(vcov(f))))
    emit(id, paste0(ties, "_loglik"), f$loglik[2])
    emit(id, paste0(ties, "_zph"), cox.zph(f, terms = FALSE)$table[, "chisq"])
  }
}
"""


def _datasets(count: int = DATASETS, seed: int = 20261203) -> Iterator[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    for dataset in range(count):
        cox = dataset % 2 == 0
        n = int(rng.integers(40, 160)) if cox else int(rng.integers(1, 45))
        x1, x2 = rng.normal(size=n), rng.integers(0, 2, size=n)
        hazard = np.exp(0.6 * x1 - 0.8 * x2) if cox else np.ones(n)
        spread = float(rng.choice([6.0, 24.0, 120.0]))  # short ranges in whole months: many ties
        time = np.ceil(rng.exponential(spread / 4, size=n) / hazard).clip(1, spread)
        status = (rng.random(n) > rng.choice([0.1, 0.5, 0.85 if not cox else 0.6])).astype(int)
        group = rng.choice(np.array(["a", "b", "c"])[: int(rng.integers(2, 4))], size=n)
        if dataset % 7 == 3:
            status[group == "a"] = 0  # a group without events
        if not cox and dataset % 10 == 5:
            status[:] = 0  # no event at all
        stratum = rng.choice(np.array(["s1", "s2"]), size=n)
        stratum[0] = "alone"  # a stratum of one patient
        yield pd.DataFrame({"dataset": dataset, "kind": "cox" if cox else "km", "time": time, "status": status,
                            "group": group, "x1": x1.round(6), "x2": x2, "stratum": stratum})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    require_r("survival")
    data = pd.concat(list(_datasets()), ignore_index=True)
    return dict(tuple(data.groupby("dataset"))), run_r(SURVIVAL_R, data, tmp_path_factory.mktemp("r"))


def _close(ours: np.ndarray, theirs: np.ndarray, tolerance: float) -> bool:
    return bool(np.allclose(np.asarray(ours, float), theirs, rtol=tolerance, atol=tolerance, equal_nan=True))


def _computed_by_r(reference: Reference, what: str, share: float) -> list[tuple[int, pd.DataFrame]]:
    """The datasets R computed `what` for, at least `share` of them all (so an R side that silently skipped them
    cannot make a comparison pass by comparing nothing)."""
    datasets, r = reference
    chosen = [(dataset, frame) for dataset, frame in datasets.items() if (dataset, what) in r]
    assert len(chosen) > DATASETS * share, (what, len(chosen))
    return chosen


def test_kaplan_meier_and_its_median_match_r_survfit(reference: Reference) -> None:
    r = reference[1]
    for dataset, frame in _computed_by_r(reference, "km_time", 0.99):
        km = KaplanMeier("log").fit(frame["time"], frame["status"])
        table = km.table_.set_index("time").reindex(r[(dataset, "km_time")])
        for ours, theirs in (("survival", "km_surv"), ("lower", "km_lower"), ("upper", "km_upper")):
            assert _close(table[ours].to_numpy(), r[(dataset, theirs)], 1e-10), (dataset, ours)
        loglog = KaplanMeier("log-log").fit(frame["time"], frame["status"]).table_.set_index("time").reindex(
            r[(dataset, "km_time")])  # NA where S is 1, as R
        for ours, theirs in (("lower", "km_loglog_lower"), ("upper", "km_loglog_upper")):
            assert _close(loglog[ours].to_numpy(), r[(dataset, theirs)], 1e-10), (dataset, ours)
        median = np.array([km.median_, km.median_lower_, km.median_upper_])
        assert _close(median, r[(dataset, "median")], 1e-10), (dataset, median, r[(dataset, "median")])


def test_log_rank_matches_r_survdiff(reference: Reference) -> None:
    r = reference[1]
    for dataset, frame in _computed_by_r(reference, "chisq", 0.9):
        test = LogRankTest().fit(frame["time"], frame["status"], frame["group"])
        assert _close(np.array([test.statistic_]), r[(dataset, "chisq")], 1e-9), dataset
        assert _close(test.groups_["observed"].to_numpy(), r[(dataset, "observed")], 1e-12), dataset
        assert _close(test.groups_["expected"].to_numpy(), r[(dataset, "expected")], 1e-9), dataset
        if test.groups_["observed"].sum() == 0:
            assert np.isnan(test.p_value_)  # R: chi-square 0, p NA


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_and_its_proportional_hazards_test_match_r(reference: Reference, ties: str) -> None:
    r = reference[1]
    for dataset, frame in _computed_by_r(reference, f"{ties}_coef", 0.45):
        model = CoxModel(ties=ties).fit(frame, "time", "status", ["x1", "x2"], strata=["stratum"])  # type: ignore[arg-type]
        assert _close(model.summary_["coef"].to_numpy(), r[(dataset, f"{ties}_coef")], 1e-9), (dataset, ties)
        assert _close(model.summary_["se"].to_numpy(), r[(dataset, f"{ties}_se")], 1e-9), (dataset, ties)
        assert _close(np.array([model.loglik_]), r[(dataset, f"{ties}_loglik")], 1e-10), (dataset, ties)
        assert _close(model.ph_test_["chisq"].to_numpy(), r[(dataset, f"{ties}_zph")], 1e-4), (dataset, ties)


CORNERS_R = """
suppressPackageStartupMessages(library(cmprsk))
for (id in unique(d$dataset)) {
  s <- d[d$dataset == id, ]
  for (ties in c("efron", "breslow")) {
    warned <- 0
    f <- withCallingHandlers(coxph(Surv(time, status) ~ x1 + x2 + strata(stratum), data = s, ties = ties),
                             warning = function(w) { warned <<- 1; invokeRestart("muffleWarning") })
    emit(id, paste0(ties, "_warned"), warned)
    emit(id, paste0(ties, "_coef"), coef(f)); emit(id, paste0(ties, "_se"), sqrt(diag(vcov(f))))
  }
  g <- crr(s$time, s$cause, cbind(s$x1, s$x2), failcode = 1, cencode = 0, gtol = 1e-10)
  emit(id, "crr_converged", as.numeric(g$converged)); emit(id, "crr_coef", g$coef)
}
"""


def _corners(seed: int = 7) -> pd.DataFrame:
    """0: many ties (R's precision is the bar); 1: a covariate of variance 1e-5 (a rare centre's dummy scaled
    down), which R estimates; 2: a binary covariate that separates the events (every x2 = 1 patient has the event,
    no x2 = 0 patient has), for which R warns that the coefficient may be infinite; 3: x2 constant within every
    stratum, which R reports as NA while it estimates x1."""
    rng = np.random.default_rng(seed)
    frames = []
    for dataset in range(4):
        n = 150
        x1, x2 = rng.normal(size=n), rng.integers(0, 2, size=n)
        time = np.ceil(rng.exponential(12, size=n) / np.exp(0.5 * x1 - 0.7 * x2))
        status = (rng.random(n) > 0.3).astype(int)
        if dataset == 1:
            x1 = x1 * np.sqrt(1e-5)
        if dataset == 2:
            status = x2.copy()
        cause = np.where(status == 1, 1, np.where(rng.random(n) < 0.3, 2, 0))  # death competes with the event
        stratum = x2 if dataset == 3 else np.zeros(n, int)  # 3: x2 constant within every stratum
        frames.append(pd.DataFrame({"dataset": dataset, "time": time, "status": status, "cause": cause,
                                    "x1": x1.round(12), "x2": x2, "stratum": stratum}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_meets_r_at_its_precision_small_variance_and_separation(tmp_path_factory: pytest.TempPathFactory,
                                                                    ties: str) -> None:
    require_r("survival", "cmprsk")
    data = _corners()
    r = run_r(CORNERS_R, data, tmp_path_factory.mktemp("corners"))
    for dataset, frame in data.groupby("dataset"):
        if r[(dataset, f"{ties}_warned")][0]:
            with pytest.raises(ConvergenceError, match="may be infinite"):
                CoxModel(ties=ties).fit(frame, "time", "status", ["x1", "x2"], ["stratum"])  # type: ignore[arg-type]
            continue
        model = CoxModel(ties=ties).fit(frame, "time", "status", ["x1", "x2"], ["stratum"])  # type: ignore[arg-type]
        assert _close(model.summary_["coef"].to_numpy(), r[(dataset, f"{ties}_coef")], 1e-9), (dataset, ties)
        # R's vcov holds 0 for a term it reports as NA (print.coxph shows NA); ours is NaN
        theirs_se = np.where(np.isnan(r[(dataset, f"{ties}_coef")]), np.nan, r[(dataset, f"{ties}_se")])
        assert _close(model.summary_["se"].to_numpy(), theirs_se, 1e-9), (dataset, ties)
    assert [r[(d, f"{ties}_warned")][0] for d in range(4)] == [0, 0, 1, 0]  # the corners are the ones named
    assert np.isnan(r[(3, f"{ties}_coef")][1])  # R: NA for the term constant within strata
    for dataset, frame in data[data["dataset"] < 3].groupby("dataset"):  # Fine-Gray: crr fails on the third only
        fine_gray = FineGray().fit(frame["time"], frame["cause"], frame[["x1", "x2"]], 1)
        assert fine_gray.converged_ == bool(r[(dataset, "crr_converged")][0]) == (dataset != 2), dataset
        if fine_gray.converged_:
            assert _close(fine_gray.params_, r[(dataset, "crr_coef")], 1e-6), dataset
        else:
            assert fine_gray.infinite_ == ("x2",), dataset


INCIDENCE_R = """
suppressPackageStartupMessages(library(cmprsk))
for (id in unique(d$dataset)) {
  s <- d[d$dataset == id, ]
  if (!any(s$cause == 1)) next
  f <- cuminc(s$time, s$cause, cencode = 0)
  times <- sort(unique(s$time[s$cause != 0]))
  at <- timepoints(f, times)
  emit(id, "cif_time", times); emit(id, "cif_est", at$est["1 1", ]); emit(id, "cif_var", at$var["1 1", ])
  last <- max(s$time)
  emit(id, "cif_edge", c(last, last + 0.5)); emit(id, "cif_edge_est", timepoints(f, c(last, last + 0.5))$est["1 1", ])
  if (s$kind[1] == "cox") {
    f <- crr(s$time, s$cause, cbind(s$x1, s$x2), failcode = 1, cencode = 0, gtol = 1e-10)
    if (f$converged) { emit(id, "crr_coef", f$coef); emit(id, "crr_se", sqrt(diag(f$var))) }
  }
  if (length(unique(s$group)) > 1) {
    emit(id, "gray", cuminc(s$time, s$cause, s$group, cencode = 0)$Tests["1", "stat"])
    emit(id, "gray_strata", cuminc(s$time, s$cause, s$group, s$stratum, cencode = 0)$Tests["1", "stat"])
  }
}
"""


@pytest.fixture(scope="module")
def incidence_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    require_r("survival", "cmprsk")
    rng = np.random.default_rng(7)
    frames = []
    for frame in _datasets():
        cause = np.where(frame["status"] == 1, rng.choice([1, 2], size=len(frame), p=[0.6, 0.4]), 0)
        frames.append(frame.assign(cause=cause))
    data = pd.concat(frames, ignore_index=True)
    return dict(tuple(data.groupby("dataset"))), run_r(INCIDENCE_R, data, tmp_path_factory.mktemp("r"))


def test_cumulative_incidence_matches_r_cmprsk(incidence_reference: Reference) -> None:
    r = incidence_reference[1]
    for dataset, frame in _computed_by_r(incidence_reference, "cif_time", 0.8):
        table = CumulativeIncidence().fit(frame["time"], frame["cause"], 1).table_.set_index("time")
        assert np.array_equal(table.index.to_numpy(), r[(dataset, "cif_time")]), dataset
        assert _close(table["incidence"].to_numpy(), r[(dataset, "cif_est")], 1e-10), dataset
        assert _close(table["variance"].to_numpy(), r[(dataset, "cif_var")], 1e-10), dataset
        # at the last follow-up the estimate, past it nothing (R: NA): incidence is not carried beyond the data
        edge = CumulativeIncidence().fit(frame["time"], frame["cause"], 1).at(r[(dataset, "cif_edge")])
        assert _close(edge["incidence"].to_numpy(), r[(dataset, "cif_edge_est")], 1e-10), dataset
        assert np.isnan(r[(dataset, "cif_edge_est")][1]) and np.isnan(edge["lower"].iloc[1]), dataset


def test_fine_gray_matches_r_crr(incidence_reference: Reference) -> None:
    r = incidence_reference[1]
    for dataset, frame in _computed_by_r(incidence_reference, "crr_coef", 0.4):
        model = FineGray().fit(frame["time"], frame["cause"], frame[["x1", "x2"]], 1)
        assert _close(model.params_, r[(dataset, "crr_coef")], 1e-6), dataset
        assert _close(model.standard_errors_, r[(dataset, "crr_se")], 1e-6), dataset


def test_grays_test_matches_r_cmprsk(incidence_reference: Reference) -> None:
    r = incidence_reference[1]
    for dataset, frame in _computed_by_r(incidence_reference, "gray", 0.7):
        plain = GrayTest().fit(frame["time"], frame["cause"], frame["group"], 1)
        stratified = GrayTest().fit(frame["time"], frame["cause"], frame["group"], 1, strata=frame["stratum"])
        for ours, theirs in ((plain, "gray"), (stratified, "gray_strata")):  # R: -1 where it cannot test
            expected = np.where(r[(dataset, theirs)] == -1, np.nan, r[(dataset, theirs)])
            assert _close(np.array([ours.statistic_]), expected, 1e-8), (dataset, theirs)
