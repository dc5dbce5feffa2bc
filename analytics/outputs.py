"""The analytics' result tables, declared once: how each is computed, which of its counts make a cell small, and
where the report shows it. A new output is one entry here; `analysis` computes, suppresses, writes and reports
whatever this registry lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from analytics import descriptive, display, survival_tables
from analytics.cohort import CohortData
from analytics.disclosure import (
    Links,
    Withhold,
    across_centres,
    descriptive_links,
    model_links,
    no_links,
    withhold_columns,
    withhold_nothing,
    withhold_ranges,
)
from analytics.plan import AnalysisPlan

_ESTIMATES = ("estimate", "lower", "upper")


def _as_is(table: pd.DataFrame, _: AnalysisPlan) -> pd.DataFrame:
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

    `counts` are the columns whose small values are suppressed (when the plan asks), and `derived` the columns
    computed from them, blanked with them (`name*`: every column whose name starts so); `links` say which counts
    a reader can combine (`disclosure`), outputs of one `family` are protected together (their counts are tied
    across tables), and `withhold` removes what such an output never publishes under suppression."""

    name: str
    build: Callable[[CohortData, AnalysisPlan], pd.DataFrame]
    heading: Heading
    caption: str
    show: Callable[[pd.DataFrame, AnalysisPlan], pd.DataFrame] = _as_is
    counts: tuple[str, ...] = ()
    derived: tuple[str, ...] = ()
    links: Links = no_links
    family: str = ""
    withhold: Withhold = withhold_nothing  # what is not published at all under suppression


_MODEL_ESTIMATES = ("coef", "se", "hazard_ratio", "hr_lower", "hr_upper", "z", "p", "ph_test_p")
_DESCRIPTIVE = {"counts": ("n", "total"), "derived": _ESTIMATES, "links": descriptive_links, "family": "descriptive",
                "withhold": withhold_ranges(descriptive.MEDIAN)}
OUTPUTS = (
    Output("table1", lambda data, _: descriptive.table1(data), TABLE1, "Table 1",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("table2", lambda data, _: descriptive.table2(data), TABLE2, "Table 2",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("outcomes", lambda data, _: descriptive.outcomes(data), TOXICITY, "Toxicity and treatment",
           lambda table, _: display.descriptive(table), **_DESCRIPTIVE),  # type: ignore[arg-type]
    Output("centre_comparisons", lambda data, _: descriptive.centre_comparisons(data), TOXICITY,
           "Between-centre comparisons"),
    Output("table3", survival_tables.table3, TABLE3, "Table 3",
           lambda table, plan: display.survival_summary(table, plan.horizons_years), ("n", "events", "at_risk_*"),
           ("median_years", "median_lower_years", "median_upper_years", "survival_*"),
           across_centres(("endpoint",), ("n", "events", "at_risk_*"))),
    # a row's `levels` text carries each group's n and events, which add up across centres and equal Table 1's
    # counts: under suppression a row with a small group is blanked with another centre's row of the same
    # comparison, and no group count is published at all (only the test)
    Output("logrank", survival_tables.logrank_tests, PROGNOSTIC, "Log-rank tests",
           lambda table, _: display.logrank(table), ("smallest_group", "fewest_events"), ("levels",),
           across_centres(("endpoint", "factor"), ("smallest_group", "fewest_events")),
           withhold=withhold_columns(("levels", "smallest_group", "fewest_events"))),
    Output("cox", survival_tables.cox_models, PROGNOSTIC, "Cox models", lambda table, _: display.cox(table),
           ("n", "events"), _MODEL_ESTIMATES, model_links),
    Output("competing_risks", survival_tables.competing_risks, COMPETING, "Cumulative incidence",
           lambda table, plan: display.competing_risks(table, plan.horizons_years),
           ("n", "events", "competing_deaths"), ("incidence_*",),
           across_centres(("endpoint",), ("n", "events", "competing_deaths"))),
    Output("fine_gray", survival_tables.fine_gray_models, COMPETING, "Fine-Gray models (subdistribution hazard ratios)",
           lambda table, _: display.cox(table, ratio="SHR"), ("n", "events"), _MODEL_ESTIMATES, model_links),
)
HEADINGS = (TABLE1, TABLE2, TOXICITY, TABLE3, PROGNOSTIC, COMPETING)  # the tables' sections; then the figures
FIGURE2 = Heading("Figure 2. Cumulative incidence", "a local relapse, b distant metastasis, each with death "
                  "without it as the competing event; pooled consortium, then each centre.")
