"""Cox proportional-hazards models as R's `coxph` fits them, with R 3.x's `cox.zph` proportional-hazards test.

Efron ties (R's default) and Breslow ties are both fitted by R's Newton iterations over the risk sets
(`analytics.risksets`), with R's checks for non-convergence and for coefficients that may be infinite. Covariates
may be booleans, numbers or categories; categories are dummy-coded against their first level so the table reads like
R's. Centre effects enter either as strata (a baseline hazard per centre, the default for pooled consortium data) or
as a covariate. The proportional-hazards test is `cox.zph`'s (survival 3.x, Kaplan-Meier transform, `terms=FALSE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics import risksets
from analytics.events import event_indicator
from analytics.proportional_hazards import zph_test
from analytics.risksets import Ties


class CoxModel:
    """`fit` returns self; `summary_` has one row per model term (coef, se, HR with CI, z, p, PH-test p),
    `loglik_` the partial log-likelihood at the estimate, `ph_test_` R's `cox.zph` table (with GLOBAL)."""

    def __init__(self, alpha: float = 0.05, ties: Ties = "efron") -> None:
        self.alpha = alpha
        self.ties = ties

    def fit(self, data: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
            strata: Sequence[str] = (), categorical: Sequence[str] = ()) -> CoxModel:
        """Fit on the rows where every named column is present; `categorical` columns are dummy-coded."""
        frame = data[[duration, event, *covariates, *strata]].dropna()
        design = design_matrix(frame, covariates, categorical)
        if design.empty or design.shape[1] == 0:
            raise ValueError("the Cox model has no covariate with more than one value")
        model_frame = pd.concat([frame[[duration, event, *strata]].reset_index(drop=True),
                                 design.reset_index(drop=True)], axis=1)
        model_frame[event] = event_indicator(model_frame[event])
        names = list(design.columns)
        x = model_frame[names].to_numpy(float)
        times, events = model_frame[duration].to_numpy(float), model_frame[event].to_numpy(bool)
        groups = model_frame[list(strata)].astype(str).agg("/".join, axis=1).to_numpy() if strata else None
        # A term constant within every stratum has no information: R reports NA for it and estimates the rest.
        informative = _varies_within_strata(x, groups)
        if not informative.any():
            raise ValueError("no covariate varies within a stratum")
        kept = [name for name, varies in zip(names, informative, strict=True) if varies]
        coef, se = np.full(len(names), np.nan), np.full(len(names), np.nan)
        coef[informative], likelihood = risksets.fit(x[:, informative], times, events, groups, self.ties)
        risksets.check_estimable(likelihood, kept)
        se[informative] = np.sqrt(np.diag(np.linalg.inv(likelihood.information)))
        self.loglik_ = likelihood.loglik
        self.n_ = len(model_frame)
        self.events_ = int(events.sum())
        self.ph_test_ = zph_test(x[:, informative], coef[informative], times, events, kept, groups, self.ties)
        self.summary_ = coefficient_table(names, coef, se, self.alpha)
        self.summary_["ph_test_p"] = self.ph_test_.set_index("term")["p"].reindex(names).to_numpy(float)
        return self


def _varies_within_strata(x: np.ndarray, strata: np.ndarray | None) -> np.ndarray:
    """Per column of `x`, whether it takes two values within some stratum (one stratum where there are none)."""
    layers = np.zeros(len(x), int) if strata is None else pd.factorize(strata)[0]
    return (pd.DataFrame(x).groupby(layers).nunique() > 1).any(axis=0).to_numpy()


def coefficient_table(names: Sequence[str], coef: np.ndarray, se: np.ndarray, alpha: float) -> pd.DataFrame:
    """One row per term: coefficient, standard error, hazard ratio with its (1 - alpha) interval, Wald z and p."""
    z = coef / se
    spread = float(norm.ppf(1 - alpha / 2)) * se
    return pd.DataFrame({"term": list(names), "coef": coef, "se": se, "hazard_ratio": np.exp(coef),
                         "hr_lower": np.exp(coef - spread), "hr_upper": np.exp(coef + spread), "z": z,
                         "p": 2 * norm.sf(np.abs(z))})


def design_matrix(frame: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str] = ()) -> pd.DataFrame:
    """Numbers and booleans as they are; categories as 0/1 dummies against the first level (R's treatment coding).

    A covariate with one value in the data carries no information and is left out rather than making the fit fail.
    """
    columns: dict[str, pd.Series] = {}
    for name in covariates:
        values = frame[name]
        numeric = pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values)
        if numeric and name not in categorical:
            if values.nunique() > 1:
                columns[name] = values.astype(float)
            continue
        labels = categories(values)
        levels = sorted(labels.unique())
        for level in levels[1:]:
            columns[f"{name}={level}"] = (labels == level).astype(float)
    return pd.DataFrame(columns, index=frame.index) if columns else pd.DataFrame(index=frame.index)


def categories(values: pd.Series) -> pd.Series:
    """A covariate's values as category labels, the same at every centre whatever dtype its column got there (a
    grade column with a missing value is float elsewhere: 2.0 and 2 are both "2", so a term reads `grade=2`)."""
    numbers = pd.to_numeric(values, errors="coerce")
    whole = not pd.api.types.is_bool_dtype(values) and numbers.notna().all() and bool((numbers % 1 == 0).all())
    return numbers.astype("int64").astype(str) if whole and len(values) else values.astype(str)


