"""Cox proportional-hazards models (lifelines' `CoxPHFitter`, Efron ties as R's `coxph`) with a PH check.

Covariates may be booleans, numbers or categories; categories are dummy-coded against their first level so the
table reads like R's. Centre effects enter either as strata (a baseline hazard per centre, the default for pooled
consortium data) or as a covariate. The proportional-hazards check is lifelines' Grambsch-Therneau score test with
the Kaplan-Meier time transform, R `cox.zph`'s default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test


class CoxModel:
    """`fit` returns self; `summary_` has one row per model term (coef, se, HR with CI, z, p, PH-test p)."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, data: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
            strata: Sequence[str] = (), categorical: Sequence[str] = ()) -> CoxModel:
        """Fit on the rows where every named column is present; `categorical` columns are dummy-coded."""
        frame = data[[duration, event, *covariates, *strata]].dropna()
        design = design_matrix(frame, covariates, categorical)
        if design.empty or design.shape[1] == 0:
            raise ValueError("the Cox model has no covariate with more than one value")
        model_frame = pd.concat([frame[[duration, event, *strata]].reset_index(drop=True),
                                 design.reset_index(drop=True)], axis=1)
        model_frame[event] = model_frame[event].astype(bool)
        self.fitter_ = CoxPHFitter(alpha=self.alpha).fit(model_frame, duration_col=duration, event_col=event,
                                                         strata=list(strata) or None)
        self.n_ = len(model_frame)
        self.events_ = int(model_frame[event].sum())
        table = self.fitter_.summary
        lower_hr, upper_hr = table.columns[table.columns.str.startswith("exp(coef) lower")][0], \
            table.columns[table.columns.str.startswith("exp(coef) upper")][0]
        summary = pd.DataFrame({
            "term": table.index.to_list(), "coef": table["coef"].to_numpy(), "se": table["se(coef)"].to_numpy(),
            "hazard_ratio": table["exp(coef)"].to_numpy(), "hr_lower": table[lower_hr].to_numpy(),
            "hr_upper": table[upper_hr].to_numpy(), "z": table["z"].to_numpy(), "p": table["p"].to_numpy()})
        ph = proportional_hazard_test(self.fitter_, model_frame, time_transform="km").summary
        summary["ph_test_p"] = summary["term"].map(ph["p"]).to_numpy(dtype=float)
        self.summary_ = summary
        return self


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
        levels = sorted(values.astype(str).unique())
        for level in levels[1:]:
            columns[f"{name}={level}"] = (values.astype(str) == level).astype(float)
    return pd.DataFrame(columns, index=frame.index) if columns else pd.DataFrame(index=frame.index)


def hazard_ratio_text(row: pd.Series) -> str:
    """'0.59 (0.42-0.82)' for a summary row."""
    if not np.isfinite(row["hazard_ratio"]):
        return "n/a"
    return f"{row['hazard_ratio']:.2f} ({row['hr_lower']:.2f}-{row['hr_upper']:.2f})"
