"""The analytics' result tables, declared once: how each is computed, how it is protected for release, and where
the report shows it. A new output is one entry here; `analysis` computes, protects, writes and reports whatever
this registry lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from analytics import descriptive, display, survival_tables
from analytics.cohort import CohortData
from analytics.plan import AnalysisPlan
from analytics.policy import OutputPolicy, significant
from analytics.protection import protect_descriptive

_ESTIMATES = ("estimate", "lower", "upper")


def _as_is(table: pd.DataFrame, _: AnalysisPlan) -> pd.DataFrame:
    return table


def _released(table: pd.DataFrame, _: OutputPolicy) -> pd.DataFrame:
    """A table whose builder already applied the policy (survival, models: they need the rows to)."""
    return table


@dataclass(frozen=True)
class Heading:
    """A part of the report, in the order the report shows them."""

    title: str
    note: str


TABLE1 = Heading("Table 1. Patient demographics and tumour characteristics",
                 "n (%) of patients, or median [range]; pooled consortium then each centre.")
TABLE2 = Heading("Table 2. Response to ILP", "RECIST radiological response within 90 days of the first ILP; "
                 "pathological response on the resection specimen (resected patients); follow-up from diagnosis.")
TOXICITY = Heading("Toxicity and treatment", "Worst grade per patient; CTCAE rows count patients with each event.")
TABLE3 = Heading("Table 3. Oncological outcomes", "Median survival in years and survival rates, with 95% CI.")
PROGNOSTIC = Heading("Prognostic factors", "Log-rank tests by each factor of the study, per centre and pooled; Cox "
                     "models on the pooled cohort.")
COMPETING = Heading("Competing risks", "Cumulative incidence of local relapse and of distant metastasis with death "
                    "as a competing event (Aalen-Johansen; variance as R's cmprsk::cuminc; 95% CI on the log(-log) "
                    "scale), in %, with Gray's test between centres; Fine-Gray models of the study's factors "
                    "(subdistribution hazard ratios, sandwich variance, as cmprsk::crr). Figure 2 draws the "
                    "incidence.")
FIGURE1 = Heading("Figure 1. Survival curves", "a recurrence-free, b metastasis-free, c local relapse-free, "
                  "d overall survival; numbers at risk under each panel.")


@dataclass(frozen=True)
class Output:
    """One result table, written as `tables/<name>.csv` and `.parquet` and shown in the report under `caption`.

    `build` applies the plan's output policy where it needs the rows to (survival from protected risk tables,
    models that may not be published); `protect` applies it to the built table (rounded counts), and `estimates`
    and `p_values` name the columns that leave with the policy's significant figures."""

    name: str
    build: Callable[[CohortData, AnalysisPlan], pd.DataFrame]
    heading: Heading
    caption: str
    show: Callable[[pd.DataFrame, AnalysisPlan], pd.DataFrame] = _as_is
    protect: Callable[[pd.DataFrame, OutputPolicy], pd.DataFrame] = _released
    estimates: tuple[str, ...] = ()
    p_values: tuple[str, ...] = ()

    def published(self, table: pd.DataFrame, policy: OutputPolicy, released: bool = False) -> pd.DataFrame:
        """The built table as it may leave under `policy` (`released`: pooled at a hub from what the centres
        released, so its counts are protected already and only the figures are rounded)."""
        protected = table if released else self.protect(table, policy)
        estimates = [c for c in protected.columns if any(c == e or (e.endswith("*") and c.startswith(e[:-1]))
                                                         for e in self.estimates)]
        return significant(protected, estimates, self.p_values, policy)


_MODEL = {"estimates": ("coef", "se", "hazard_ratio", "hr_lower", "hr_upper", "z"), "p_values": ("p", "ph_test_p")}
_DESCRIPTIVE = {"protect": protect_descriptive, "estimates": _ESTIMATES}
OUTPUTS = (
    Output("table1", lambda data, _: descriptive.table1(data), TABLE1, "Table 1",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("table2", lambda data, _: descriptive.table2(data), TABLE2, "Table 2",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("outcomes", lambda data, _: descriptive.outcomes(data), TOXICITY, "Toxicity and treatment",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("centre_comparisons", lambda data, plan: descriptive.centre_comparisons(data, plan.policy), TOXICITY,
           "Between-centre comparisons", estimates=("statistic",), p_values=("p_value",)),
    Output("table3", survival_tables.table3, TABLE3, "Table 3",
           lambda table, plan: display.survival_summary(table, plan.horizons_years),
           estimates=("median_*", "survival_*")),
    Output("logrank", survival_tables.logrank_tests, PROGNOSTIC, "Log-rank tests",
           display.logrank),
    Output("cox", survival_tables.cox_models, PROGNOSTIC, "Cox models", display.cox,
           **_MODEL),  # type: ignore[arg-type]
    Output("competing_risks", survival_tables.competing_risks, COMPETING, "Cumulative incidence",
           lambda table, plan: display.competing_risks(table, plan.horizons_years), estimates=("incidence_*",)),
    Output("fine_gray", survival_tables.fine_gray_models, COMPETING, "Fine-Gray models (subdistribution hazard ratios)",
           lambda table, plan: display.cox(table, plan, ratio="SHR"), **_MODEL),  # type: ignore[arg-type]
)
HEADINGS = (TABLE1, TABLE2, TOXICITY, TABLE3, PROGNOSTIC, COMPETING)  # the tables' sections; then the figures
FIGURE2 = Heading("Figure 2. Cumulative incidence", "a local relapse, b distant metastasis, each with death "
                  "without it as the competing event; pooled consortium, then each centre.")
