"""Federated analysis: the hub, from what each centre answers in JSON (aggregates only), gets the pooled
Kaplan-Meier, log-rank tests and centre-stratified Cox model that the pooled rows give, to 1e-8 where no output
protection changes the input: on the demo consortium and on random consortia with ties, missing covariates and
centres lacking a category. Under the default policy a centre answers only what its plan declares and its policy
releases (tests/test_packages.py checks the hub then equals the report computed under the same policy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import risksets
from analytics.cohort import CohortData, read_snapshot
from analytics.cox import CoxModel, design_matrix
from analytics.federated import (
    FederatedCox,
    Site,
    Transport,
    coarsen,
    json_transport,
    pooled_kaplan_meier,
    pooled_logrank,
    survival_counts,
)
from analytics.kaplan_meier import KaplanMeier
from analytics.logrank import LogRankTest
from analytics.plan import AnalysisPlan
from analytics.policy import UNPROTECTED, Refused
from analytics.survival_tables import CATEGORICAL, COX_COVARIATES, endpoint_data, protected_rows

DemoRun = tuple[Path, str]
PLAN = AnalysisPlan(policy=UNPROTECTED)  # exactness against the pooled rows, where no protection changes them
PROTECTED = AnalysisPlan()
EXACT = 1e-8


def _sites(data: CohortData, grid_months: float | None = None) -> dict[str, Transport]:
    return {c: json_transport(Site(data.for_centre(c), PLAN, grid_months)) for c in data.centres}


def _random_consortium(seed: int) -> CohortData:
    """2-4 centres of 12-70 patients; times on a half-month grid (ties), covariate effects, censoring, a missing
    grade now and then, and a centre that may lack a grade altogether."""
    rng = np.random.default_rng(seed)
    frames = []
    for number in range(int(rng.integers(2, 5))):
        n = int(rng.integers(12, 71))
        grade = rng.choice([1, 2, 3], n).astype(float)
        if number == 0:
            grade[grade == 1] = 2  # this centre has no low-grade tumour
        grade[rng.random(n) < 0.1] = np.nan
        frame = pd.DataFrame({
            "patient_id": [f"c{number}-{i}" for i in range(n)], "centre_id": f"centre-{number}",
            "age_over_65": rng.random(n) < 0.4, "sex": rng.choice(["male", "female"], n),
            "bmi_over_30": rng.random(n) < 0.3, "site": rng.choice(["upper_limb", "lower_limb"], n, p=[0.2, 0.8]),
            "size_over_10cm": rng.random(n) < 0.5, "fnclcc_grade": grade,
            "pathological_response": rng.choice(["CR", "PR", "NR", None], n)})
        hazard = 0.02 * np.exp(0.5 * frame["age_over_65"] + 0.4 * (np.nan_to_num(grade) == 3) + 0.3 * number)
        event_time, censor_time = rng.exponential(1 / hazard), rng.uniform(6, 120, n)
        for endpoint in PLAN.endpoints:
            frame[f"{endpoint.name}_months"] = np.round(np.minimum(event_time, censor_time) * 2) / 2
            frame[f"{endpoint.name}_event"] = event_time <= censor_time
        frames.append(frame)
    cohort = pd.concat(frames, ignore_index=True)
    return CohortData(cohort, pd.DataFrame({"centre_id": pd.Series(dtype=str)}), f"random-{seed}")


def _assert_same_km(federated: KaplanMeier | None, pooled: KaplanMeier) -> None:
    assert federated is not None
    for column in ("time", "at_risk", "events", "censored", "survival", "lower", "upper"):
        np.testing.assert_allclose(federated.table_[column], pooled.table_[column], rtol=0, atol=EXACT)
    np.testing.assert_allclose([federated.median_, federated.median_lower_, federated.median_upper_],
                               [pooled.median_, pooled.median_lower_, pooled.median_upper_], atol=EXACT)


def _assert_same_logrank(federated: LogRankTest, pooled: LogRankTest) -> None:
    assert federated.degrees_of_freedom_ == pooled.degrees_of_freedom_
    np.testing.assert_allclose([federated.statistic_, federated.p_value_], [pooled.statistic_, pooled.p_value_],
                               rtol=0, atol=EXACT)
    np.testing.assert_allclose(federated.groups_[["n", "observed", "expected"]].to_numpy(float),
                               pooled.groups_[["n", "observed", "expected"]].to_numpy(float), atol=EXACT)


def _check_consortium(data: CohortData, endpoints: list[str]) -> dict[str, int]:
    """Every endpoint's KM, log-rank by each factor and between centres, and stratified Cox, federated vs pooled."""
    sites = _sites(data)
    checked = {"km": 0, "logrank": 0, "cox": 0}
    for name in endpoints:
        frame = endpoint_data(data.cohort, PLAN.endpoint(name))
        pooled = KaplanMeier(PLAN.ci_method, PLAN.alpha).fit(frame["time"], frame["event"])
        _assert_same_km(pooled_kaplan_meier(sites, name, PLAN), pooled)
        checked["km"] += 1
        for factor in [*PLAN.factors, None]:
            labels = frame["centre_id"] if factor is None else frame[factor.column].map(factor.label_of)
            present = labels.notna()
            if labels[present].nunique() < 2:
                continue
            rows = LogRankTest().fit(frame.loc[present, "time"], frame.loc[present, "event"], labels[present])
            _assert_same_logrank(pooled_logrank(sites, name, factor.column if factor else None), rows)
            checked["logrank"] += 1
        covariates = [c for c in COX_COVARIATES if c in frame.columns]
        federated = FederatedCox(PLAN.alpha).fit(sites, name, covariates, CATEGORICAL)
        model_rows = frame[["time", "event", "centre_id", *covariates]].dropna()
        x = design_matrix(model_rows, covariates, CATEGORICAL)
        coef, likelihood = risksets.fit(x.to_numpy(float), model_rows["time"], model_rows["event"],
                                        model_rows["centre_id"])
        se = np.sqrt(np.diag(np.linalg.inv(likelihood.information)))
        np.testing.assert_allclose(federated.summary_["coef"], coef, rtol=0, atol=EXACT)
        np.testing.assert_allclose(federated.summary_["se"], se, rtol=0, atol=EXACT)
        assert abs(federated.loglik_ - likelihood.loglik) < EXACT
        assert (federated.n_, federated.events_) == (len(model_rows), int(model_rows["event"].sum()))
        # and the model the report publishes, to the same precision
        report = CoxModel(PLAN.alpha).fit(frame, "time", "event", covariates, ["centre_id"], CATEGORICAL)
        np.testing.assert_allclose(federated.summary_["coef"], report.summary_["coef"], rtol=0, atol=EXACT)
        np.testing.assert_allclose(federated.summary_["p"], report.summary_["p"], rtol=0, atol=EXACT)
        checked["cox"] += 1
    return checked


def test_the_hub_reproduces_the_pooled_analysis_of_the_demo_consortium(demo_run: DemoRun) -> None:
    snapshot = sorted((demo_run[0] / "zones" / "cohort" / "snapshots").glob("run=*"))[-1]
    data = read_snapshot(snapshot)
    checked = _check_consortium(data, [e.name for e in PLAN.endpoints])
    assert checked["km"] == len(PLAN.endpoints) and checked["logrank"] >= 20 and checked["cox"] == len(PLAN.endpoints)


@pytest.mark.parametrize("seed", range(12))
def test_the_hub_reproduces_the_pooled_analysis_of_random_consortia(seed: int) -> None:
    checked = _check_consortium(_random_consortium(seed), ["os"])
    assert checked["cox"] == 1 and checked["logrank"] >= 3


def test_a_centre_answers_with_aggregates_only(demo_run: DemoRun) -> None:
    snapshot = sorted((demo_run[0] / "zones" / "cohort" / "snapshots").glob("run=*"))[-1]
    data = read_snapshot(snapshot)
    centre = data.centres[0]
    site = Site(data.for_centre(centre), PROTECTED)
    answers: list[dict[str, Any]] = [
        site.answer({"kind": "survival_counts", "endpoint": "os", "factor": "sex"}),
        site.answer({"kind": "levels", "endpoint": "os", "covariates": list(COX_COVARIATES),
                     "categorical": list(CATEGORICAL)}),
        site.answer({"kind": "cox_terms", "endpoint": "os", "covariates": ["sex", "size_over_10cm"],
                     "terms": ["sex=male", "size_over_10cm"], "beta": [0.1, -0.2]})]
    text = repr(answers)
    identifiers = data.for_centre(centre).cohort["patient_id"].astype(str)
    assert not any(patient in text for patient in identifiers), "a patient identifier left the centre"
    counts = pd.DataFrame(answers[0]["counts"], columns=["time", "event", "group", "count"])
    frame = endpoint_data(data.for_centre(centre).cohort, PROTECTED.endpoint("os"))
    released = protected_rows(frame.assign(group=frame["sex"]), "event", PROTECTED.policy, by="group")
    assert counts["count"].sum() == len(released) and np.allclose(counts["time"] % 1.0, 0.0)  # the protected table
    assert set(answers[2]) == {"loglik", "score", "information", "n", "events"}
    assert answers[2]["n"] % 5 == 3  # a count, as the policy releases it


@pytest.mark.parametrize(("request_", "says"), [
    ({"kind": "rows"}, "unknown request"),
    ({"kind": "levels", "endpoint": "os", "covariates": ["patient_id"]}, "not a covariate of the plan's models"),
    ({"kind": "levels", "endpoint": "os", "covariates": ["sex"], "categorical": ["first_ilp_date"]},
     "not a covariate"),
    ({"kind": "survival_counts", "endpoint": "os", "factor": "death_date"}, "not a prognostic factor"),
    ({"kind": "survival_counts", "endpoint": "anything"}, "not in the analysis plan"),
    ({"kind": "cox_terms", "endpoint": "os", "covariates": ["bmi_over_30"], "terms": ["bmi_over_30"], "beta": [0.3]},
     "term bmi_over_30: fewer than 5 patients on one side"),
])
def test_a_centre_refuses_what_its_plan_does_not_declare_or_its_policy_does_not_release(
        demo_run: DemoRun, request_: dict[str, Any], says: str) -> None:
    """An allow-list of declared endpoints, factors and covariates, and DataSHIELD's filters on a model's terms:
    aurora has 4 patients with a BMI over 30, so a term of theirs would decode their values from its score."""
    data = read_snapshot(sorted((demo_run[0] / "zones" / "cohort" / "snapshots").glob("run=*"))[-1])
    with pytest.raises(Refused, match=says):
        Site(data.for_centre("aurora"), PROTECTED).answer(request_)


def test_a_coarser_time_grid_is_what_the_hub_estimates_from() -> None:
    data = _random_consortium(3)
    coarse = pooled_kaplan_meier(_sites(data, grid_months=3.0), "os", PLAN)
    frame = endpoint_data(data.cohort, PLAN.endpoint("os"))
    rounded = KaplanMeier(PLAN.ci_method, PLAN.alpha).fit(coarsen(frame["time"].to_numpy(float), 3.0), frame["event"])
    _assert_same_km(coarse, rounded)
    times = survival_counts(_sites(data, grid_months=3.0), "os")["time"]
    assert np.allclose(times % 3.0, 0.0), "a time off the grid left a centre"
