"""Table 3 (median and 1/5/10-year survival per endpoint), log-rank tests by factor and between centres, Cox models.

Times in the cohort are months (days / 30.4375); horizons and medians are reported in years as the study did.
An endpoint's patients are those with a time and an event flag (the declaration's exclusions leave them null).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd
from lifelines.exceptions import ConvergenceError

from analytics.cohort import CohortData
from analytics.competing_risks import CumulativeIncidence, GrayTest
from analytics.cox import CoxModel, design_matrix
from analytics.descriptive import POOLED, groups
from analytics.fine_gray import FineGray
from analytics.kaplan_meier import CI_LABEL, KaplanMeier
from analytics.logrank import LogRankTest
from analytics.plan import AnalysisPlan
from foundation.model import Endpoint

MONTHS_PER_YEAR = 12.0
COX_COVARIATES = ("age_over_65", "sex", "bmi_over_30", "site", "size_over_10cm", "fnclcc_grade")
CATEGORICAL = ("sex", "site", "fnclcc_grade", "centre_id")


def endpoint_data(cohort: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    """The endpoint's patients with `time` (months) and `event` columns added."""
    time, event = f"{endpoint.name}_months", f"{endpoint.name}_event"
    frame = cohort[cohort[time].notna() & cohort[event].notna()].copy()
    frame["time"] = frame[time].astype(float)
    frame["event"] = frame[event].astype(bool)
    return frame


def fit_km(cohort: pd.DataFrame, endpoint: Endpoint, plan: AnalysisPlan, label: str) -> KaplanMeier | None:
    frame = endpoint_data(cohort, endpoint)
    if frame.empty:
        return None
    return KaplanMeier(plan.ci_method, plan.alpha).fit(frame["time"], frame["event"], label=label)


def table3(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """One row per (group, endpoint): n, events, median in years with CI, survival at each horizon with CI."""
    return table3_rows(((group, endpoint, fit_km(subset.cohort, endpoint, plan, group))
                        for group, subset in groups(data) for endpoint in plan.endpoints), plan)


def table3_rows(fits: Iterable[tuple[str, Endpoint, KaplanMeier | None]], plan: AnalysisPlan) -> pd.DataFrame:
    """Table 3 from Kaplan-Meier fits, however they were made (from rows, or from centres' counts at a hub)."""
    rows = []
    horizons = [h * MONTHS_PER_YEAR for h in plan.horizons_years]
    for group, endpoint, km in fits:
        row: dict[str, Any] = {"group": group, "endpoint": endpoint.name, "label": endpoint.label,
                               "ci_method": CI_LABEL[plan.ci_method]}
        row.update({"n": km.n_ if km else 0, "events": km.events_ if km else 0})
        if km is not None:
            row.update({"median_years": km.median_ / MONTHS_PER_YEAR,
                        "median_lower_years": km.median_lower_ / MONTHS_PER_YEAR,
                        "median_upper_years": km.median_upper_ / MONTHS_PER_YEAR})
            for years, estimate in zip(plan.horizons_years, km.at(horizons), strict=True):
                row.update({f"survival_{years}y": estimate.survival, f"survival_{years}y_lower": estimate.lower,
                            f"survival_{years}y_upper": estimate.upper, f"at_risk_{years}y": estimate.at_risk})
        rows.append(row)
    return pd.DataFrame(rows)


def logrank_tests(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Log-rank by each prognostic factor (pooled and per centre) and between centres (pooled)."""
    rows = []
    for group, subset in groups(data):
        for endpoint in plan.endpoints:
            frame = endpoint_data(subset.cohort, endpoint)
            comparisons = [(f.label, frame[f.column].map(lambda x, f=f: f.label_of(x))) for f in plan.factors]
            if group == POOLED and len(data.centres) > 1:
                comparisons.append(("Centre", frame["centre_id"]))
            for factor, labels in comparisons:
                present = labels.notna()
                test = None if labels[present].nunique() < 2 else LogRankTest().fit(
                    frame.loc[present, "time"], frame.loc[present, "event"], labels[present])
                rows.append({"group": group, "endpoint": endpoint.name, "factor": factor,
                             **logrank_row(test, labels[present])})
    return pd.DataFrame(rows)


def logrank_row(test: LogRankTest | None, labels: pd.Series) -> dict[str, Any]:
    """A log-rank test as a row of the table; None for a comparison with fewer than two groups (`labels`: the
    groups of the patients compared)."""
    if test is None:
        return {"levels": "; ".join(sorted(labels.unique().astype(str))), "smallest_group": len(labels),
                "fewest_events": np.nan, "chi_square": np.nan, "df": np.nan, "p_value": np.nan,
                "note": "fewer than two groups"}
    levels = "; ".join(f"{r.group}: n={r.n}, O={r.observed}, E={r.expected:.1f}" for r in test.groups_.itertuples())
    return {"levels": levels, "smallest_group": int(test.groups_["n"].min()),
            "fewest_events": int(test.groups_["observed"].min()), "chi_square": test.statistic_,
            "df": test.degrees_of_freedom_, "p_value": test.p_value_, "note": ""}


def cox_models(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Per endpoint, the study's factors in one model: on the pooled cohort stratified by centre and with centre as a
    covariate, then in each centre alone where its data let the model converge (a note says why where not)."""
    rows = []
    several = len(data.centres) > 1
    models: list[tuple[str, pd.DataFrame | None, tuple[str, ...], tuple[str, ...]]] = [
        ("stratified by centre", None, (), ("centre_id",)), ("centre as covariate", None, ("centre_id",), ())] \
        if several else [("single centre", None, (), ())]
    if several:
        models += [(f"centre {c}", data.for_centre(c).cohort, (), ()) for c in data.centres]
    for endpoint in plan.endpoints:
        pooled = endpoint_data(data.cohort, endpoint)
        for name, cohort, extra, strata in models:
            frame = pooled if cohort is None else endpoint_data(cohort, endpoint)
            rows += model_rows({"endpoint": endpoint.name, "model": name}, partial(
                CoxModel(plan.alpha).fit, frame, "time", "event", [*COX_COVARIATES, *extra], strata,
                categorical=CATEGORICAL))
    return pd.DataFrame(rows)


class FittedModel(Protocol):
    """What a table of model terms needs of a fitted model (Cox, Fine-Gray, federated Cox)."""

    summary_: pd.DataFrame
    n_: int
    events_: int


def model_rows(base: dict[str, Any], fit: Callable[[], FittedModel]) -> list[dict[str, Any]]:
    """A fitted model's terms as rows, or one row saying why the model could not be estimated."""
    try:
        model = fit()
    except (ConvergenceError, ValueError, np.linalg.LinAlgError) as error:
        return [{**base, "term": "", "note": f"not estimable: {str(error).splitlines()[0]}"}]
    return [{**base, **term, "n": model.n_, "events": model.events_, "note": ""}
            for term in model.summary_.to_dict("records")]


# The endpoints whose event competes with death, and what their event is called.
COMPETING_ENDPOINTS = {"lrfs": "Local relapse", "mfs": "Distant metastasis"}
CAUSE, DEATH = 1, 2


def competing_data(cohort: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    """The endpoint's patients with `time` (months) and `cause`: 1 its event, 2 death without it (the patient left
    follow-up by dying), 0 censored alive."""
    frame = endpoint_data(cohort, endpoint)
    died = frame["death_date"].notna() & ~frame["event"]
    frame["cause"] = np.where(frame["event"], CAUSE, np.where(died, DEATH, 0))
    return frame


def competing_endpoints(plan: AnalysisPlan) -> list[Endpoint]:
    """The plan's endpoints whose event competes with death."""
    return [e for e in plan.endpoints if e.name in COMPETING_ENDPOINTS]


def fit_cif(frame: pd.DataFrame, plan: AnalysisPlan, cause: int = CAUSE) -> CumulativeIncidence | None:
    """The cumulative incidence of `cause` in a `competing_data` frame; None when it has no patient."""
    if frame.empty:
        return None
    return CumulativeIncidence(plan.alpha).fit(frame["time"], frame["cause"], cause)


def competing_risks(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Cumulative incidence of local relapse and of distant metastasis, death competing (Aalen-Johansen, cmprsk's
    variance, log(-log) CI): per group and endpoint, n, events, competing deaths, incidence at each horizon; on the
    pooled rows, Gray's test between centres."""
    rows = []
    horizons = [h * MONTHS_PER_YEAR for h in plan.horizons_years]
    for group, subset in groups(data):
        for endpoint in competing_endpoints(plan):
            frame = competing_data(subset.cohort, endpoint)
            row: dict[str, Any] = {"group": group, "endpoint": endpoint.name,
                                   "label": COMPETING_ENDPOINTS[endpoint.name],
                                   "n": len(frame), "events": int((frame["cause"] == CAUSE).sum()),
                                   "competing_deaths": int((frame["cause"] == DEATH).sum())}
            cif = fit_cif(frame, plan)
            if group == POOLED and frame["centre_id"].nunique() > 1 and (frame["cause"] == CAUSE).any():
                gray = GrayTest().fit(frame["time"], frame["cause"], frame["centre_id"], CAUSE)
                row.update({"between_centres_chi_square": gray.statistic_, "between_centres_df":
                            gray.degrees_of_freedom_, "between_centres_p": gray.p_value_})
            if cif is not None:
                for years, at in zip(plan.horizons_years, cif.at(horizons).to_dict("records"), strict=True):
                    row.update({f"incidence_{years}y": at["incidence"], f"incidence_{years}y_lower": at["lower"],
                                f"incidence_{years}y_upper": at["upper"]})
            rows.append(row)
    return pd.DataFrame(rows)


def fine_gray_models(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Per competing endpoint, the study's factors (and centre, in a consortium) in a Fine-Gray model of the
    subdistribution hazard of its event, death competing; a note where the model cannot be estimated."""
    rows = []
    extra = ("centre_id",) if len(data.centres) > 1 else ()
    for endpoint in competing_endpoints(plan):
        frame = competing_data(data.cohort, endpoint)[["time", "cause", *COX_COVARIATES, *extra]].dropna()
        rows += model_rows({"endpoint": endpoint.name, "model": f"Fine-Gray: {COMPETING_ENDPOINTS[endpoint.name]}"},
                            partial(_fine_gray, frame, [*COX_COVARIATES, *extra], plan))
    return pd.DataFrame(rows)


def _fine_gray(frame: pd.DataFrame, covariates: list[str], plan: AnalysisPlan) -> FineGray:
    design = design_matrix(frame, covariates, CATEGORICAL)
    if design.shape[1] == 0 or not (frame["cause"] == CAUSE).any():
        raise ValueError("no covariate varies, or no event")
    model = FineGray(plan.alpha).fit(frame["time"], frame["cause"], design, CAUSE)
    if not model.converged_:
        raise ConvergenceError("the model did not converge")
    return model
