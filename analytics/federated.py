"""Pooled survival analysis without pooled rows: each centre answers the hub's requests from its own cohort with
aggregates only, and the hub computes the Kaplan-Meier, log-rank and centre-stratified Cox model of the pooled
cohort, the same (to 1e-8) as on the pooled rows.

What leaves a centre, per request (every request and answer is JSON; `Site.answer`):

- `survival_counts` (an endpoint, optionally a prognostic factor): per distinct follow-up time and factor level,
  how many patients had the event then and how many were censored. Kaplan-Meier and log-rank depend on the data
  through these counts only, so the hub's estimates are exact. Distinct times are disclosive in themselves (they
  are the patients' times, without who they are); with `grid_months` a centre rounds every time up to the end of
  its interval before counting, at a cost in accuracy that `benchmarks/federated.py` measures.
- `levels` (an endpoint's Cox covariates): the categories each covariate takes at the centre, so that the hub fixes
  one design for all; for a numeric covariate only whether it varies (and its one value when it does not).
- `cox_terms` (the design and the hub's coefficients): the centre's partial log-likelihood, score (p numbers) and
  information (p x p) at those coefficients, over its own patients as one stratum, with n and events. Stratified by
  centre the pooled partial likelihood is the sum of the centres', so the hub's Newton iterations
  (`risksets.newton`) reach the estimate the pooled rows would give, one round of requests per iteration.

docs/federated.md says what each answer lets a recipient infer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics import descriptive
from analytics.cohort import CohortData
from analytics.cox import categories, coefficient_table
from analytics.kaplan_meier import KaplanMeier
from analytics.logrank import LogRankTest
from analytics.plan import AnalysisPlan, Factor
from analytics.policy import Refused
from analytics.protection import WITHHELD, complete_not_recorded, pool_centres, protect_centres
from analytics.risksets import PartialLikelihood, Ties, check_estimable, newton, partial_likelihood
from analytics.survival_tables import CATEGORICAL, COX_COVARIATES, endpoint_data, model_withheld, protected_rows

Transport = Callable[[dict[str, Any]], dict[str, Any]]
ALL = "all"
DESCRIPTIVE = {"table1": descriptive.table1, "table2": descriptive.table2, "outcomes": descriptive.outcomes}


def coarsen(times: np.ndarray, grid_months: float | None) -> np.ndarray:
    """Each time rounded up to the end of its interval of the grid (a time 0 stays 0); unchanged without a grid."""
    return times if not grid_months else np.ceil(np.asarray(times, float) / grid_months) * grid_months


def _numeric(values: pd.Series) -> bool:
    """Numbers and booleans (a boolean column with a missing value elsewhere is objects here: still booleans)."""
    return (pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values)
            or bool(values.map(lambda v: isinstance(v, bool | np.bool_)).all()))


class Site:
    """A centre's side: answers the hub's requests from its own cohort, with aggregates only."""

    def __init__(self, data: CohortData, plan: AnalysisPlan, grid_months: float | None = None,
                 ties: Ties = "efron") -> None:
        self.data = data
        self.plan = plan
        self.grid_months = grid_months
        self.ties = ties

    def answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "survival_counts": self._survival_counts, "levels": self._levels, "cox_terms": self._cox_terms,
            "descriptive": self._descriptive}
        kind = request.get("kind")
        if kind not in handlers:
            raise Refused(f"unknown request {kind!r}; expected one of {', '.join(handlers)}")
        self._allowed(request)
        return handlers[str(kind)](request)

    def _allowed(self, request: Mapping[str, Any]) -> None:
        """Only the plan's declared endpoints, factors and model covariates may be asked about (an allow-list,
        as DataSHIELD's server-side functions): a column outside it (a pseudonym, a date) is refused."""
        endpoint = request.get("endpoint")
        if endpoint is not None and endpoint not in {e.name for e in self.plan.endpoints}:
            raise Refused(f"endpoint {endpoint!r} is not in the analysis plan")
        factor = request.get("factor")
        if factor is not None and factor not in {f.column for f in self.plan.factors}:
            raise Refused(f"factor {factor!r} is not a prognostic factor of the analysis plan")
        outside = sorted(set(request.get("covariates", ())) - set(COX_COVARIATES)
                         | set(request.get("categorical", ())) - set(CATEGORICAL))
        if outside:
            raise Refused(f"{', '.join(outside)}: not a covariate of the plan's models")

    def _endpoint(self, request: Mapping[str, Any]) -> pd.DataFrame:
        return endpoint_data(self.data.cohort, self.plan.endpoint(str(request["endpoint"])))

    def _survival_counts(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The centre's protected risk table (per factor level): what the report's estimates are fitted on."""
        frame = self._endpoint(request)
        factor = _factor(self.plan, request.get("factor"))
        groups = frame[factor.column].map(factor.label_of) if factor else pd.Series(ALL, index=frame.index)
        rows = protected_rows(frame.assign(group=groups), "event", self.plan.policy, by="group")
        counted = rows.assign(time=coarsen(rows["time"].to_numpy(float), self.grid_months))
        table = counted.groupby(["time", "event", "group"]).size().reset_index(name="count")
        return {"counts": [[float(r.time), bool(r.event), str(r.group), int(r.count)] for r in table.itertuples()]}

    def _descriptive(self, _: Mapping[str, Any]) -> dict[str, Any]:
        """The centre's rows of Tables 1-2 and the outcomes as it releases them under the policy: counts of each
        level with their denominators, each median with its n (`protection.protect_centres`)."""
        rows = []
        for name, build in DESCRIPTIVE.items():
            table = build(self.data)
            released = protect_centres(table[table["group"] != descriptive.POOLED], self.plan.policy)
            for record in released.to_dict("records"):
                rows.append({"output": name, **{k: None if isinstance(v, float) and np.isnan(v) else v
                                                for k, v in record.items() if k != "group"}})
        return {"rows": rows}

    def _model_frame(self, request: Mapping[str, Any]) -> pd.DataFrame:
        return self._endpoint(request)[["time", "event", *request["covariates"]]].dropna()

    def _levels(self, request: Mapping[str, Any]) -> dict[str, Any]:
        frame = self._model_frame(request)
        described = {}
        for name in request["covariates"]:
            values = frame[name]
            if _numeric(values) and name not in request.get("categorical", ()):
                single = values.unique().tolist() if values.nunique() == 1 else []
                described[name] = {"numeric": True, "varies": bool(values.nunique() > 1),
                                   "values": [float(v) for v in single]}
            else:
                described[name] = {"numeric": False, "values": sorted(set(categories(values)))}
        return {"levels": described}

    def _cox_terms(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The centre's part of the partial likelihood at the hub's coefficients, refused where the policy would
        not publish a model on its own rows (a term of fewer than the threshold decodes their values)."""
        frame = self._model_frame(request)
        terms = list(request["terms"])
        beta = np.asarray(request["beta"], float)
        design = pd.DataFrame(_design(frame, terms), columns=terms, index=frame.index)
        withheld = model_withheld(pd.concat([frame[["event"]], design], axis=1), "event", terms, self.plan.policy)
        if withheld:
            raise Refused(f"centre's rows for this model: {withheld}")
        if frame.empty or not frame["event"].astype(bool).any():
            terms_at = PartialLikelihood(0.0, np.zeros(len(terms)), np.zeros((len(terms), len(terms))))
        else:
            terms_at = partial_likelihood(_design(frame, terms), beta, frame["time"].to_numpy(float),
                                          frame["event"].to_numpy(bool), None, self.ties)
        policy = self.plan.policy
        return {"loglik": terms_at.loglik, "score": terms_at.score.tolist(),
                "information": terms_at.information.tolist(), "n": policy.count(len(frame)),
                "events": policy.count(int(frame["event"].astype(bool).sum()))}


def _factor(plan: AnalysisPlan, column: object) -> Factor | None:
    if column is None:
        return None
    factor = next((f for f in plan.factors if f.column == column), None)
    if factor is None:
        raise ValueError(f"no prognostic factor {column!r} in the analysis plan")
    return factor


def _design(frame: pd.DataFrame, terms: Sequence[str]) -> np.ndarray:
    """The hub's design over a centre's rows: `name` as a number, `name=level` as 0/1 (R's treatment coding)."""
    columns = []
    for term in terms:
        name, _, level = term.partition("=")
        columns.append((categories(frame[name]) == level).to_numpy(float) if level
                       else frame[name].astype(float).to_numpy())
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def standard_requests(plan: AnalysisPlan) -> list[dict[str, Any]]:
    """What an aggregates package answers ahead of time: the descriptive tables' counts, and each endpoint's survival
    counts, overall and by each prognostic factor (the Cox model needs live rounds, so no package can carry it)."""
    return [{"kind": "descriptive"}] + [{"kind": "survival_counts", "endpoint": endpoint.name, "factor": factor}
                                        for endpoint in plan.endpoints
                                        for factor in [None, *(f.column for f in plan.factors)]]


def descriptive_tables(sites: Mapping[str, Transport]) -> dict[str, pd.DataFrame]:
    """Tables 1-2 and the outcomes from the centres' released descriptive rows: each centre as it sent them, and
    pooled as their sums (`protection.pool_centres`, as the report pools them)."""
    answers = {centre: pd.DataFrame(answer["rows"]) for centre, answer in
               _ask(sites, {"kind": "descriptive"}).items()}
    every = complete_not_recorded(pd.concat([rows.assign(group=centre) for centre, rows in answers.items()],
                                            ignore_index=True))
    both = pd.concat([pool_centres(every), every], ignore_index=True)
    return {name: both[both["output"] == name][[*descriptive.COLUMNS, WITHHELD]].reset_index(drop=True)
            for name in DESCRIPTIVE}


class StoredAnswers:
    """A centre's answers to the standard requests, as its aggregates package carries them."""

    def __init__(self, centre_id: str, answers: Sequence[Mapping[str, Any]]) -> None:
        self.centre_id = centre_id
        self.answers = {_key(a["request"]): dict(a["answer"]) for a in answers}

    def answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        found = self.answers.get(_key(request))
        if found is None:
            raise ValueError(f"centre {self.centre_id} sent aggregates only, and they do not answer "
                             f"{dict(request)}: that analysis needs its rows or a live connection to it")
        return found


def _key(request: Mapping[str, Any]) -> str:
    return json.dumps({k: request.get(k) for k in ("kind", "endpoint", "factor")}, sort_keys=True)


def json_transport(site: Site) -> Transport:
    """A site reached in this process, through JSON both ways: only what a remote centre could send crosses."""
    return lambda request: json.loads(json.dumps(site.answer(json.loads(json.dumps(request)))))


def _ask(sites: Mapping[str, Transport], request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: transport(request) for name, transport in sites.items()}


def survival_counts(sites: Mapping[str, Transport], endpoint: str, factor: str | None = None) -> pd.DataFrame:
    """Every centre's counts for an endpoint (per factor level, if one is named): centre, time, event, group, count."""
    answers = _ask(sites, {"kind": "survival_counts", "endpoint": endpoint, "factor": factor})
    rows = [(centre, *row) for centre, answer in answers.items() for row in answer["counts"]]
    return pd.DataFrame(rows, columns=["centre", "time", "event", "group", "count"])


def expanded(counts: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (time, event, group) of every patient the counts stand for: what the estimators take as data."""
    repeats = counts["count"].to_numpy(int)
    return (np.repeat(counts["time"].to_numpy(float), repeats), np.repeat(counts["event"].to_numpy(bool), repeats),
            np.repeat(counts[column].to_numpy(object), repeats))


def pooled_kaplan_meier(sites: Mapping[str, Transport], endpoint: str, plan: AnalysisPlan,
                        label: str = "pooled") -> KaplanMeier | None:
    """The pooled Kaplan-Meier estimate from the centres' counts (None when no centre has a patient)."""
    return kaplan_meier_of(survival_counts(sites, endpoint), plan, label)


def kaplan_meier_of(counts: pd.DataFrame, plan: AnalysisPlan, label: str) -> KaplanMeier | None:
    """The Kaplan-Meier estimate of the patients survival counts stand for (None when they stand for nobody)."""
    if counts.empty:
        return None
    times, events, _ = expanded(counts, "group")
    return KaplanMeier(plan.ci_method, plan.alpha).fit(times, events, label=label)


def pooled_logrank(sites: Mapping[str, Transport], endpoint: str, factor: str | None = None) -> LogRankTest:
    """The pooled log-rank test by a prognostic factor, or between centres when no factor is named."""
    return logrank_of(survival_counts(sites, endpoint, factor), "group" if factor else "centre")


def logrank_of(counts: pd.DataFrame, by: str) -> LogRankTest:
    """The log-rank test between the values of `by` (a factor's "group", or "centre") from survival counts."""
    times, events, groups = expanded(counts, by)
    return LogRankTest().fit(times, events, groups)


class FederatedCox:
    """A Cox model stratified by centre, fitted at the hub from the centres' score and information; `fit` returns
    self. After `fit`: `summary_` (term, coef, se, hazard ratio with CI, z, p), `loglik_`, `n_`, `events_`,
    `rounds_` (requests sent to each centre); a model that does not converge raises ConvergenceError."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, sites: Mapping[str, Transport], endpoint: str, covariates: Sequence[str],
            categorical: Sequence[str] = ()) -> FederatedCox:
        base = {"endpoint": endpoint, "covariates": list(covariates), "categorical": list(categorical)}
        terms = _terms(_ask(sites, {"kind": "levels", **base}), covariates)
        if not terms:
            raise ValueError("the Cox model has no covariate with more than one value")
        self.rounds_ = 1
        answers: dict[str, dict[str, Any]] = {}

        def evaluate(beta: np.ndarray) -> PartialLikelihood:
            nonlocal answers
            answers = _ask(sites, {"kind": "cox_terms", **base, "terms": terms, "beta": beta.tolist()})
            self.rounds_ += 1
            return PartialLikelihood(sum(float(a["loglik"]) for a in answers.values()),
                                     np.sum([a["score"] for a in answers.values()], axis=0),
                                     np.sum([a["information"] for a in answers.values()], axis=0))

        coef, likelihood = newton(evaluate, len(terms))
        check_estimable(likelihood, terms)  # as CoxModel: a coefficient running off to infinity is no estimate
        self.loglik_ = likelihood.loglik
        self.n_ = sum(int(a["n"]) for a in answers.values())
        self.events_ = sum(int(a["events"]) for a in answers.values())
        se = np.sqrt(np.diag(np.linalg.inv(likelihood.information)))
        self.summary_ = coefficient_table(terms, coef, se, self.alpha)
        return self


def _terms(answers: Mapping[str, Mapping[str, Any]], covariates: Sequence[str]) -> list[str]:
    """One design for every centre, as `cox.design_matrix` builds it on pooled rows: a numeric covariate when it
    varies over the pooled patients; a category's levels (sorted) as 0/1 terms against the first."""
    terms = []
    for name in covariates:
        described = [a["levels"][name] for a in answers.values()]
        if all(d["numeric"] for d in described):
            if any(d["varies"] for d in described) or len({v for d in described for v in d["values"]}) > 1:
                terms.append(name)
            continue
        levels = sorted({str(v) for d in described for v in d["values"]})
        terms += [f"{name}={level}" for level in levels[1:]]
    return terms
