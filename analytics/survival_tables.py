"""Table 3 (median and 1/5/10-year survival per endpoint), log-rank tests by factor and between centres, Cox models.

Times in the cohort are months (days / 30.4375); horizons and medians are reported in years as the study did.
An endpoint's patients are those with a time and an event flag (the declaration's exclusions leave them null).
Under the plan's output policy (`analytics.policy`), every estimate from follow-up times (Kaplan-Meier, log-rank,
cumulative incidence) is fitted on each centre's protected risk table (`protected_rows`), a pooled one on their
concatenation, and models on fewer patients or events than the policy allows are not published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
from analytics.policy import OutputPolicy, Refused, protected_outcomes
from analytics.risksets import may_be_infinite
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


def protected_rows(frame: pd.DataFrame, outcome: str, policy: OutputPolicy, by: str | None = None) -> pd.DataFrame:
    """An endpoint frame's `time` and `outcome` (and `centre_id`, `by`) as they may leave: per centre (and value of
    `by`; rows without one are left out) the rows of its protected risk table (`policy.protected_outcomes`). A
    centre's group of `by` smaller than the policy's threshold is left out (DataSHIELD's subset filter): its
    table would be a few patients' own, so it takes no part in a comparison by `by`."""
    keys = ["centre_id", *([by] if by else [])]
    grouped = [(key, rows) for key, rows in frame.groupby(keys, sort=True)
               if not (by and policy.too_small(len(rows)))]
    parts = [protected_outcomes(rows["time"], rows[outcome], policy).rename(columns={"outcome": outcome}).assign(
        **dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))) for key, rows in grouped]
    if not parts:
        return pd.DataFrame({"time": pd.Series(dtype=float), outcome: frame[outcome].iloc[:0],
                             **{k: frame[k].iloc[:0] for k in keys}})
    return pd.concat(parts, ignore_index=True)


def fit_km(cohort: pd.DataFrame, endpoint: Endpoint, plan: AnalysisPlan, label: str) -> KaplanMeier | None:
    """The endpoint's Kaplan-Meier estimate, from the centres' protected risk tables (None without patients)."""
    frame = protected_rows(endpoint_data(cohort, endpoint), "event", plan.policy)
    if frame.empty:
        return None
    return KaplanMeier(plan.ci_method, plan.alpha).fit(frame["time"], frame["event"], label=label)


def table3(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """One row per (group, endpoint): n, events, median in years with CI, survival at each horizon with CI."""
    return table3_rows(((group, endpoint, fit_km(subset.cohort, endpoint, plan, group))
                        for group, subset in groups(data) for endpoint in plan.endpoints), plan)


def table3_rows(fits: Iterable[tuple[str, Endpoint, KaplanMeier | None]], plan: AnalysisPlan) -> pd.DataFrame:
    """Table 3 from Kaplan-Meier fits, however they were made (from rows, or from centres' counts at a hub). Under
    the policy each estimate is shown where its own risk set allows: a median where the events reach the
    threshold, a rate where as many are still at risk at its horizon; `withheld_because` says what is not."""
    rows = []
    policy = plan.policy
    horizons = [h * MONTHS_PER_YEAR for h in plan.horizons_years]
    for group, endpoint, km in fits:
        row: dict[str, Any] = {"group": group, "endpoint": endpoint.name, "label": endpoint.label,
                               "ci_method": CI_LABEL[plan.ci_method]}
        row.update({"n": km.n_ if km else 0, "events": km.events_ if km else 0})
        withheld = []
        if km is not None:
            if policy.too_small(km.events_):
                withheld.append(f"median: fewer than {policy.threshold} events")
            else:
                row.update({"median_years": km.median_ / MONTHS_PER_YEAR,
                            "median_lower_years": km.median_lower_ / MONTHS_PER_YEAR,
                            "median_upper_years": km.median_upper_ / MONTHS_PER_YEAR})
            for years, estimate in zip(plan.horizons_years, km.at(horizons), strict=True):
                row[f"at_risk_{years}y"] = estimate.at_risk
                if policy.too_small(estimate.at_risk) and not np.isnan(estimate.survival):
                    withheld.append(f"{years}-year: fewer than {policy.threshold} at risk")
                    continue
                row.update({f"survival_{years}y": estimate.survival, f"survival_{years}y_lower": estimate.lower,
                            f"survival_{years}y_upper": estimate.upper})
        rows.append({**row, "withheld_because": "; ".join(withheld) or None})
    columns = ["group", "endpoint", "label", "ci_method", "n", "events", "median_years", "median_lower_years",
               "median_upper_years", *(f"{k}_{y}y{s}" for y in plan.horizons_years
                                       for k, s in (("survival", ""), ("survival", "_lower"), ("survival", "_upper"),
                                                    ("at_risk", ""))), "withheld_because"]
    return pd.DataFrame(rows, columns=columns)


def logrank_tests(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Log-rank by each prognostic factor (pooled and per centre) and between centres (pooled), on the centres'
    protected risk tables per factor level; a centre's level of fewer patients than the policy's threshold takes
    no part (`protected_rows`), and the row says which."""
    rows = []
    for group, subset in groups(data):
        for endpoint in plan.endpoints:
            frame = endpoint_data(subset.cohort, endpoint)
            comparisons = [(f.label, frame[f.column].map(lambda x, f=f: f.label_of(x))) for f in plan.factors]
            if group == POOLED and len(data.centres) > 1:
                comparisons.append(("Centre", frame["centre_id"]))
            for factor, labels in comparisons:
                compared = protected_rows(frame.assign(compared=labels), "event", plan.policy, by="compared")
                test = None if compared["compared"].nunique() < 2 else LogRankTest().fit(
                    compared["time"], compared["event"], compared["compared"])
                sizes = frame.assign(compared=labels).groupby(["centre_id", "compared"]).size()
                small = [f"{centre} ({level})" for (centre, level), n in sizes.items() if plan.policy.too_small(n)]
                rows.append({"group": group, "endpoint": endpoint.name, "factor": factor,
                             **logrank_row(test, compared["compared"], plan.policy),
                             "withheld_because": f"groups of fewer than {plan.policy.threshold} left out: "
                                                 f"{', '.join(small)}" if small else None})
    return pd.DataFrame(rows)


def logrank_row(test: LogRankTest | None, labels: pd.Series, policy: OutputPolicy) -> dict[str, Any]:
    """A log-rank test as a row of the table, with the policy's precision; None for a comparison with fewer than
    two groups (`labels`: the groups of the patients compared)."""
    if test is None:
        return {"levels": "; ".join(sorted(labels.unique().astype(str))), "smallest_group": len(labels),
                "fewest_events": np.nan, "chi_square": np.nan, "df": np.nan, "p_value": np.nan,
                "note": "fewer than two groups"}
    levels = "; ".join(f"{r.group}: n={r.n}, O={r.observed}, E={r.expected:.1f}" for r in test.groups_.itertuples())
    return {"levels": levels, "smallest_group": int(test.groups_["n"].min()),
            "fewest_events": int(test.groups_["observed"].min()), "chi_square": policy.estimate(test.statistic_),
            "df": test.degrees_of_freedom_, "p_value": policy.p_value(test.p_value_), "note": ""}


def cox_models(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Per endpoint, the study's factors in one model: on the pooled cohort stratified by centre and with centre as a
    covariate, then in each centre alone where its data let the model converge (a note says why where not), each
    published only where the policy allows (`model_withheld`)."""
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
            covariates = [*COX_COVARIATES, *extra]
            used = frame.dropna(subset=[*covariates, *strata])
            rows += model_rows({"endpoint": endpoint.name, "model": name}, partial(
                CoxModel(plan.alpha).fit, frame, "time", "event", covariates, strata, categorical=CATEGORICAL),
                plan.policy, model_withheld(used, "event", covariates, plan.policy), centre_counts(
                    used, used["event"].astype(bool), plan.policy))
    return model_table(rows, ph_test=True)


def centre_counts(frame: pd.DataFrame, events: pd.Series, policy: OutputPolicy) -> tuple[int, int]:
    """(patients, events) of a model's rows as the policy publishes them: each centre's protected counts, summed."""
    per_centre = pd.DataFrame({"centre_id": frame["centre_id"], "event": events}).groupby("centre_id")["event"]
    return (sum(policy.count(n) or 0 for n in per_centre.size()),
            sum(policy.count(int(e)) or 0 for e in per_centre.sum()))


def model_withheld(frame: pd.DataFrame, event: str, covariates: Sequence[str], policy: OutputPolicy) -> str | None:
    """Why a model on `frame` (its complete rows) may not be published under the policy, or None: fewer patients
    or events than the threshold, more terms than `model_density` x patients (DataSHIELD's nfilter.glm), or a 0/1
    term with fewer than the threshold on either side (a one-patient term's coefficient is that patient's)."""
    if not policy.protect:
        return None
    events = int(frame[event].astype(bool).sum()) if len(frame) else 0
    if policy.too_small(len(frame), events):
        return f"fewer than {policy.threshold} patients or events"
    design = design_matrix(frame, covariates, CATEGORICAL)
    if design.shape[1] > policy.model_density * len(frame):
        return f"{design.shape[1]} terms for {policy.count(len(frame))} patients (more than {policy.model_density:g} x)"
    for name in design.columns:
        values = design[name].astype(float)
        if values.isin((0.0, 1.0)).all():
            ones = int(values.sum())
            if policy.too_small(ones, len(values) - ones):
                return f"term {name}: fewer than {policy.threshold} patients on one side"
    return None


class FittedModel(Protocol):
    """What a table of model terms needs of a fitted model (Cox, Fine-Gray, federated Cox)."""

    summary_: pd.DataFrame
    n_: int
    events_: int


def model_table(rows: list[dict[str, Any]], ph_test: bool = False) -> pd.DataFrame:
    """Model rows as a table with every column, whether or not any model was published (`ph_test`: the
    proportional-hazards check's p, which Cox models have)."""
    estimates = ["coef", "se", "hazard_ratio", "hr_lower", "hr_upper", "z", "p", *(["ph_test_p"] if ph_test else [])]
    return pd.DataFrame(rows, columns=["endpoint", "model", "term", *estimates, "n", "events", "note"])


def model_rows(base: dict[str, Any], fit: Callable[[], FittedModel], policy: OutputPolicy,
               withheld: str | None = None, counts: tuple[int, int] | None = None,
               released: bool = False) -> list[dict[str, Any]]:
    """A fitted model's terms as rows, or one row saying why the model could not be estimated or is not published;
    `counts`: its (patients, events) as published (default: the model's under the policy, or as they are when
    they were `released` so: a federated model's are the sums of what the centres released)."""
    if withheld:
        return [{**base, "term": "", "note": f"not published: {withheld}"}]
    try:
        model = fit()
    except Refused as refused:
        return [{**base, "term": "", "note": f"not published: {str(refused).splitlines()[0]}"}]
    except (ConvergenceError, ValueError, np.linalg.LinAlgError) as error:
        return [{**base, "term": "", "note": f"not estimable: {str(error).splitlines()[0]}"}]
    n, events = counts or ((model.n_, model.events_) if released else
                           (policy.count(model.n_), policy.count(model.events_)))
    return [{**base, **term, "n": n, "events": events, "note": ""} for term in model.summary_.to_dict("records")]


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
    """The cumulative incidence of `cause` in a `competing_data` frame, from the centres' protected risk tables;
    None when it has no patient."""
    rows = protected_rows(frame, "cause", plan.policy)
    if rows.empty:
        return None
    return CumulativeIncidence(plan.alpha).fit(rows["time"], rows["cause"], cause)


def competing_risks(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Cumulative incidence of local relapse and of distant metastasis, death competing (Aalen-Johansen, cmprsk's
    variance, log(-log) CI): per group and endpoint, n, events, competing deaths, incidence at each horizon (where
    the policy's threshold are still at risk); on the pooled rows, Gray's test between centres. All from the
    centres' protected risk tables."""
    rows = []
    policy = plan.policy
    horizons = [h * MONTHS_PER_YEAR for h in plan.horizons_years]
    for group, subset in groups(data):
        for endpoint in competing_endpoints(plan):
            frame = protected_rows(competing_data(subset.cohort, endpoint), "cause", policy)
            row: dict[str, Any] = {"group": group, "endpoint": endpoint.name,
                                   "label": COMPETING_ENDPOINTS[endpoint.name],
                                   "n": len(frame), "events": int((frame["cause"] == CAUSE).sum()),
                                   "competing_deaths": int((frame["cause"] == DEATH).sum())}
            if group == POOLED and frame["centre_id"].nunique() > 1 and (frame["cause"] == CAUSE).any():
                gray = GrayTest().fit(frame["time"], frame["cause"], frame["centre_id"], CAUSE)
                row.update({"between_centres_chi_square": policy.estimate(gray.statistic_), "between_centres_df":
                            gray.degrees_of_freedom_, "between_centres_p": policy.p_value(gray.p_value_)})
            withheld = []
            if not frame.empty:
                cif = CumulativeIncidence(plan.alpha).fit(frame["time"], frame["cause"], CAUSE)
                for years, at in zip(plan.horizons_years, cif.at(horizons).to_dict("records"), strict=True):
                    if policy.too_small(int((frame["time"] >= at["time"]).sum())):
                        withheld.append(f"{years}-year: fewer than {policy.threshold} at risk")
                        continue
                    row.update({f"incidence_{years}y": at["incidence"], f"incidence_{years}y_lower": at["lower"],
                                f"incidence_{years}y_upper": at["upper"]})
            rows.append({**row, "withheld_because": "; ".join(withheld) or None})
    return pd.DataFrame(rows)


def fine_gray_models(data: CohortData, plan: AnalysisPlan) -> pd.DataFrame:
    """Per competing endpoint, the study's factors (and centre, in a consortium) in a Fine-Gray model of the
    subdistribution hazard of its event, death competing; a note where the model cannot be estimated or the policy
    does not publish it."""
    rows = []
    extra = ("centre_id",) if len(data.centres) > 1 else ()
    covariates = [*COX_COVARIATES, *extra]
    for endpoint in competing_endpoints(plan):
        frame = competing_data(data.cohort, endpoint)[list(dict.fromkeys(["time", "cause", "centre_id",
                                                                          *covariates]))].dropna()
        event = frame["cause"] == CAUSE
        rows += model_rows({"endpoint": endpoint.name, "model": f"Fine-Gray: {COMPETING_ENDPOINTS[endpoint.name]}"},
                           partial(_fine_gray, frame, covariates, plan), plan.policy,
                           model_withheld(frame.assign(event=event), "event", covariates, plan.policy),
                           centre_counts(frame, event, plan.policy))
    return model_table(rows)


def _fine_gray(frame: pd.DataFrame, covariates: list[str], plan: AnalysisPlan) -> FineGray:
    design = design_matrix(frame, covariates, CATEGORICAL)
    if design.shape[1] == 0 or not (frame["cause"] == CAUSE).any():
        raise ValueError("no covariate varies, or no event")
    model = FineGray(plan.alpha).fit(frame["time"], frame["cause"], design, CAUSE)
    if model.infinite_:
        raise may_be_infinite(model.infinite_)
    if not model.converged_:
        raise ConvergenceError("the model did not converge")
    return model
