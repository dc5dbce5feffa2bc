"""The estimators against published R values (R `survival` and `stats` on the datasets lifelines ships).

References: R 4.x, survival 3.x. `survfit(Surv(time, status) ~ 1, data = lung)`: median 310, 95% CI 285-363
(conf.type "log"); `summary(..., times = 365.25)`: 0.409 (0.345-0.486), 65 at risk; by sex: 270 (212-310) and
426 (348-550). `survdiff(Surv(time, status) ~ sex, data = lung)`: chi-square 10.3 (10.3267), observed 112/53,
expected 91.6/73.4. `coxph(Surv(time, status) ~ sex, data = lung)`: coef -0.5310, se 0.1672, HR 0.588
(0.4237-0.8160), p 0.00149. Rossi `coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio)`
coefficients as in Fox & Weisberg's appendix; `cox.zph` flags age and wexp. `binom.test(682, 925)`: 0.7077-0.7654.
`fisher.test(TeaTasting)`: p 0.4857; `fisher.test(Job)`: p 0.7827; `chisq.test(M)`: X-squared 30.07, df 2,
p 2.954e-07 (the examples in R's help pages).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung, load_rossi
from lifelines.statistics import multivariate_logrank_test

from analytics import CoxModel, KaplanMeier, LogRankTest, compare_groups, descriptive, display, exact_rate
from analytics.policy import UNPROTECTED, OutputPolicy, protected_outcomes


def sig3(value: float, expected: float) -> bool:
    """Equal to 3 significant figures."""
    return math.isclose(float(f"{value:.3g}"), float(f"{expected:.3g}"))


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    return load_lung()


def test_kaplan_meier_median_and_interval_match_r_survfit(lung: pd.DataFrame) -> None:
    km = KaplanMeier().fit(lung["time"], lung["status"])
    assert (km.median_, km.median_lower_, km.median_upper_) == (310, 285, 363)
    (one_year,) = km.at([365.25])
    assert sig3(one_year.survival, 0.409) and sig3(one_year.lower, 0.345) and sig3(one_year.upper, 0.486)
    assert one_year.at_risk == 65


@pytest.mark.parametrize(("sex", "expected"), [(1, (270, 212, 310)), (2, (426, 348, 550))])
def test_kaplan_meier_by_sex_matches_r(lung: pd.DataFrame, sex: int, expected: tuple[int, int, int]) -> None:
    group = lung[lung["sex"] == sex]
    km = KaplanMeier().fit(group["time"], group["status"])
    assert (km.median_, km.median_lower_, km.median_upper_) == expected


def test_the_ci_method_is_selectable_and_named(lung: pd.DataFrame) -> None:
    log = KaplanMeier("log").fit(lung["time"], lung["status"]).at([365.25])[0]
    loglog = KaplanMeier("log-log").fit(lung["time"], lung["status"]).at([365.25])[0]
    assert log.survival == loglog.survival and log.lower != loglog.lower
    with pytest.raises(ValueError, match="unknown CI method"):
        KaplanMeier("logit")  # type: ignore[arg-type]


def test_a_median_on_a_flat_stretch_at_exactly_half_is_the_midpoint() -> None:
    # S is 3/4 after t=2, exactly 1/2 from t=4 (a censoring at 5 does not move it) until the drop at 6.
    km = KaplanMeier().fit([2, 4, 5, 6], [True, True, False, True])
    assert km.table_["survival"].tolist() == pytest.approx([1.0, 0.75, 0.5, 0.5, 0.0])
    assert km.median_ == 5.0


def test_logrank_matches_r_survdiff(lung: pd.DataFrame) -> None:
    test = LogRankTest().fit(lung["time"], lung["status"], lung["sex"])
    assert round(test.statistic_, 4) == 10.3267 and test.degrees_of_freedom_ == 1
    assert test.groups_["observed"].tolist() == [112, 53]
    assert [round(e, 2) for e in test.groups_["expected"]] == [91.58, 73.42]
    assert sig3(test.p_value_, 0.00131)


def test_logrank_with_three_groups_agrees_with_lifelines(lung: pd.DataFrame) -> None:
    # R's value is checked above for two groups; for k groups the statistic must equal lifelines' own.
    groups = np.where(lung["age"] < 60, "<60", np.where(lung["age"] < 70, "60-69", ">=70"))
    ours = LogRankTest().fit(lung["time"], lung["status"], groups)
    theirs = multivariate_logrank_test(lung["time"], groups, lung["status"])
    assert ours.degrees_of_freedom_ == 2
    assert ours.statistic_ == pytest.approx(theirs.test_statistic, rel=1e-9)
    assert ours.groups_["expected"].sum() == pytest.approx(ours.groups_["observed"].sum())


def test_cox_matches_r_coxph_on_lung(lung: pd.DataFrame) -> None:
    (row,) = CoxModel().fit(lung, "time", "status", ["sex"]).summary_.to_dict("records")
    assert sig3(row["coef"], -0.5310) and sig3(row["se"], 0.1672) and sig3(row["hazard_ratio"], 0.588)
    assert sig3(row["hr_lower"], 0.4237) and sig3(row["hr_upper"], 0.8160) and sig3(row["p"], 0.00149)


def test_cox_matches_r_coxph_on_rossi() -> None:
    expected = {"fin": -0.3794, "age": -0.0574, "race": 0.3139, "wexp": -0.1498, "mar": -0.4337, "paro": -0.0849,
                "prio": 0.0915}
    model = CoxModel().fit(load_rossi(), "week", "arrest", list(expected))
    got = dict(zip(model.summary_["term"], model.summary_["coef"], strict=True))
    assert all(sig3(got[term], coef) for term, coef in expected.items()), got
    # R survival 3.5: cox.zph(fit)$table
    zph = {"fin": 0.8026960, "age": 0.0145185, "race": 0.1503925, "wexp": 0.0398421, "mar": 0.3146582,
           "paro": 0.8921493, "prio": 0.4705926, "GLOBAL": 0.0134275}
    assert dict(zip(model.ph_test_["term"], model.ph_test_["p"].round(7), strict=True)) == zph
    assert model.ph_test_.set_index("term").loc["GLOBAL", "chisq"] == pytest.approx(17.6944153, abs=1e-6)


def test_cox_strata_and_categorical_covariates(lung: pd.DataFrame) -> None:
    data = lung.assign(centre=np.where(lung["inst"].fillna(0) < 10, "a", "b"), sex=lung["sex"].map({1: "m", 2: "f"}))
    model = CoxModel().fit(data, "time", "status", ["sex"], strata=["centre"], categorical=["sex"])
    (row,) = model.summary_.to_dict("records")
    assert row["term"] == "sex=m" and row["hazard_ratio"] > 1  # reference level f: men fare worse
    assert model.n_ == len(lung)


def test_clopper_pearson_matches_r_binom_test() -> None:
    rate = exact_rate(682, 925)
    assert round(rate.lower, 7) == 0.7076683 and round(rate.upper, 7) == 0.7654066
    assert exact_rate(0, 0).total == 0 and math.isnan(exact_rate(0, 0).lower)


def test_group_comparisons_match_r() -> None:
    tea = compare_groups(np.array([[3, 1], [1, 3]]))
    assert tea.test.startswith("Fisher's exact") and round(tea.p_value, 4) == 0.4857
    assert tea.statistic == pytest.approx(6.4083089, rel=1e-5)  # conditional MLE odds ratio, as fisher.test
    survey = compare_groups(np.array([[762, 327, 468], [484, 239, 477]]))
    assert survey.test == "chi-square" and round(survey.statistic, 2) == 30.07 and sig3(survey.p_value, 2.954e-07)
    job = np.array([[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]).T
    simulated = compare_groups(job)
    assert simulated.test.startswith("Fisher's exact (Monte Carlo") and abs(simulated.p_value - 0.7827) < 0.015


def test_counts_leave_as_the_midpoints_of_their_bands() -> None:
    policy = OutputPolicy()
    assert [policy.count(x) for x in (0, 1, 4, 5, 6, 10, 11, 41)] == [0, 3, 3, 3, 8, 8, 13, 43]
    assert policy.counts([0, 2, 7]).tolist() == [0, 3, 8] and UNPROTECTED.count(4) == 4
    assert OutputPolicy(rounding=6).count(7) == 9  # OpenSAFELY's midpoint 6: 1-6 -> 3, 7-12 -> 9
    assert policy.estimate(0.123456) == 0.123 and policy.p_value(0.0123456) == 0.012
    assert policy.times(np.array([0.0, 0.2, 1.0, 7.01])).tolist() == [0.0, 1.0, 1.0, 8.0]


def test_a_protected_risk_table_steps_only_on_bands_of_patients() -> None:
    """Each outcome's cumulative count is rounded: the rows it stands for grow by 3 at the first patient and by 5
    at each fifth after, at times on the grid; nothing of a single patient's time is left."""
    rng = np.random.default_rng(7)
    times = rng.uniform(0, 60, 37)
    events = rng.random(37) < 0.6
    rows = protected_outcomes(times, events, OutputPolicy())
    assert np.allclose(rows["time"] % 1.0, 0.0)
    for outcome in (True, False):
        cumulative = rows[rows["outcome"] == outcome].groupby("time").size().cumsum().to_numpy()
        true_total = int((events == outcome).sum())
        assert cumulative[-1] == OutputPolicy().count(true_total)
        assert set(np.diff(np.concatenate([[0], cumulative]))) <= {3, 5, 10, 15}
    exact = protected_outcomes(times, events, UNPROTECTED)
    assert len(exact) == 37 and np.allclose(np.sort(exact["time"]), np.sort(times))


def test_median_limits_are_missing_where_r_reports_na() -> None:
    two = KaplanMeier().fit([3, 5], [True, True])
    assert (two.median_, two.median_lower_) == (4.0, 3.0) and math.isnan(two.median_upper_)  # R: 4, 3, NA
    one = KaplanMeier().fit([5], [True])
    assert one.median_ == 5.0 and math.isnan(one.median_lower_) and math.isnan(one.median_upper_)  # R: 5, NA, NA


def test_event_indicators_are_read_as_r_surv_reads_them() -> None:
    assert KaplanMeier().fit([1, 2, 3], [1, 2, 1]).events_ == 1  # 1/2 coding: 2 is the event
    assert KaplanMeier().fit([1, 2, 3], [0, 1, 1]).events_ == 2
    with pytest.raises(ValueError, match="0/1"):
        KaplanMeier().fit([1, 2, 3], [0, 1, 3])
    with pytest.raises(ValueError, match="missing"):
        LogRankTest().fit([1, 2], [1.0, float("nan")], ["a", "b"])


def test_no_events_give_no_p_value_and_undefined_limits_print_na() -> None:
    test = LogRankTest().fit([1, 2, 3, 4], [0, 0, 0, 0], ["a", "a", "b", "b"])
    assert test.statistic_ == 0 and math.isnan(test.p_value_)  # R: chi-square 0, p NA
    row = pd.DataFrame([{"label": "OS", "group": "pooled", "events": 3, "n": 3, "median_years": 1.0,
                         "median_lower_years": 1.0, "median_upper_years": float("nan"), "survival_5y": 0.0,
                         "survival_5y_lower": float("nan"), "survival_5y_upper": float("nan")}])
    shown = display.survival_summary(row, (5,)).iloc[0]
    assert shown["5-year, % (95% CI)"] == "0 (NA-NA)" and shown["Median, years (95% CI)"] == "1 (1-NR)"


def test_grades_are_labelled_as_their_scales_write_them() -> None:
    levels = {variable: dict(labels) for _, variable, _, labels in descriptive.OUTCOME_CATEGORIES}
    clavien = levels["Clavien-Dindo complication (worst)"]
    assert list(clavien.values()) == ["Grade I", "Grade II", "Grade IIIa", "Grade IIIb", "Grade IVa", "Grade IVb",
                                      "Grade V"]
    assert levels["Wieberdink regional toxicity (worst)"]["IV"] == "Grade IV"
