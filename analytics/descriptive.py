"""Tables 1 and 2 of the reference study, and the toxicity and treatment outcomes, as tidy rows.

Every row is one (group, variable, level): `n` of `total` with the percent and its Clopper-Pearson 95% CI, or a
median with its range. `group` is `pooled` or a centre id, so one CSV holds the consortium and every centre.
Between-centre comparisons (chi-square or Fisher, see `proportions`) are a separate table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from analytics.cohort import CohortData
from analytics.policy import UNPROTECTED, OutputPolicy
from analytics.proportions import compare_groups, exact_rate
from foundation.model import vocabulary as v

POOLED = "pooled"
COLUMNS = ("group", "section", "variable", "level", "statistic", "n", "total", "estimate", "lower", "upper")
COUNT = "n (%), 95% CI Clopper-Pearson"
MEDIAN = "median [min-max]"
NOT_RECORDED = "Not recorded"
Levels = Sequence[tuple[object, str]]


def _labels(values: Iterable[str]) -> Levels:
    return [(value, value.replace("_", " ").capitalize()) for value in values]


def _grades(values: Iterable[str]) -> Levels:
    """Grades as the scales write them (Roman numerals with their a/b), in the scale's order."""
    return [(value, f"Grade {value}") for value in values]


# (section, variable label, column, levels, denominator filter) for the categorical rows of each table.
TABLE1_CATEGORIES: tuple[tuple[str, str, str, Levels], ...] = (
    ("Demographics", "Sex", "sex", [("male", "Male"), ("female", "Female")]),
    ("Tumour", "Tumour site", "site", [("upper_limb", "Upper limb"), ("lower_limb", "Lower limb")]),
    ("Tumour", "Subsite", "subsite", _labels(v.SUBSITE)),
    ("Comorbidities", "Smoking", "smoking", [(True, "Yes")]),
    ("Comorbidities", "Hypertension", "hypertension", [(True, "Yes")]),
    ("Comorbidities", "Dyslipidaemia", "dyslipidaemia", [(True, "Yes")]),
    ("Tumour", "Reason for unresectability", "unresectability_reason", _labels(v.UNRESECTABILITY_REASON)),
    ("Tumour", "Histological family", "histology_family", _labels(v.HISTOLOGY_FAMILIES)),
    ("Tumour", "Histological subtype", "histology", _labels(v.HISTOLOGY)),
    ("Tumour", "FNCLCC grade", "fnclcc_grade", [(1, "Low (1)"), (2, "Intermediate (2)"), (3, "High (3)")]),
    ("ILP", "Vascular access", "ilp_level", _labels(v.ILP_LEVEL)),
)
TABLE1_MEDIANS = (("Demographics", "Age (years)", "age_at_diagnosis"), ("Demographics", "BMI (kg/m2)", "bmi"),
                  ("Tumour", "Tumour size (cm)", "size_cm"), ("ILP", "TNF-alpha dose (mg)", "tnf_dose_mg"),
                  ("ILP", "Melphalan dose (mg/L)", "melphalan_dose_mg_per_l"),
                  ("ILP", "Maximum temperature (C)", "max_temperature_c"),
                  ("ILP", "Perfusion time (min)", "duration_min"),
                  ("ILP", "Systemic leakage (%)", "leakage_pct"))
RESPONSE_CATEGORIES = (
    ("Response", "Radiological response (RECIST)", "radiological_response",
     [("CR", "CR"), ("PR", "PR"), ("SD", "SD"), ("PD", "PD")]),
    ("Response", "Pathological response (resected)", "pathological_response",
     [("CR", "CR (100%)"), ("PR", "PR (50-99%)"), ("NR", "NR (<50%)")]),
)
OUTCOME_CATEGORIES = (
    ("Toxicity", "Wieberdink regional toxicity (worst)", "wieberdink_grade", _grades(v.WIEBERDINK_GRADE)),
    ("Toxicity", "Clavien-Dindo complication (worst)", "clavien_dindo_max_grade", _grades(v.CLAVIEN_DINDO_GRADE)),
    ("Toxicity", "CTCAE adverse event (worst grade)", "ctcae_max_grade", [(g, str(g)) for g in range(1, 6)]),
    ("Treatment", "Limb-sparing surgery", "limb_sparing_surgery", [(True, "Yes")]),
    ("Treatment", "Resection", "resected", [(True, "Yes")]),
    ("Treatment", "Amputation", "amputation", [(True, "Yes")]),
    ("Treatment", "Amputation reason", "amputation_reason", _labels(v.AMPUTATION_REASON)),
    ("Treatment", "Post-operative radiotherapy", "postoperative_radiotherapy", [(True, "Yes")]),
    ("Treatment", "Exclusive radiotherapy", "exclusive_radiotherapy", [(True, "Yes")]),
    ("Treatment", "Systemic therapy", "systemic_therapy", [(True, "Yes")]),
)
# Rates whose denominator is not every patient.
DENOMINATOR = {"pathological_response": "resected", "limb_sparing_surgery": "resected",
               "postoperative_radiotherapy": "resected", "amputation_reason": "amputation"}


def groups(data: CohortData) -> list[tuple[str, CohortData]]:
    """The pooled consortium first, then each centre."""
    return [(POOLED, data)] + [(centre, data.for_centre(centre)) for centre in data.centres]


def table1(data: CohortData) -> pd.DataFrame:
    """Patient demographics and tumour characteristics (the study's Table 1), plus the ILP parameters."""
    return _by_group(data, lambda c: [_total_row(c), *_medians(c, TABLE1_MEDIANS),
                                      *_categories(c, TABLE1_CATEGORIES, data.cohort)])


def table2(data: CohortData) -> pd.DataFrame:
    """Response to ILP (the study's Table 2): RECIST, objective response, pathological response, follow-up."""
    def rows(c: pd.DataFrame) -> list[dict[str, Any]]:
        responders = int(c["objective_response"].eq(True).sum())
        orr = rate_row("Response", "Objective response rate (CR + PR)", "CR or PR", responders, len(c))
        return [*_categories(c, RESPONSE_CATEGORIES[:1], data.cohort), orr,
                *_categories(c, RESPONSE_CATEGORIES[1:], data.cohort),
                *_medians(c, (("Follow-up", "Follow-up (months)", "follow_up_months"),))]
    return _by_group(data, rows)


def outcomes(data: CohortData) -> pd.DataFrame:
    """Toxicity (Wieberdink, Clavien-Dindo, CTCAE worst grade and each CTCAE term) and treatment rates."""
    def rows(c: pd.DataFrame, toxicities: pd.DataFrame) -> list[dict[str, Any]]:
        ctcae = toxicities[toxicities["scale"] == "ctcae"]
        per_term = ctcae.groupby("ctcae_term")["patient_id"].nunique()
        terms = [rate_row("Toxicity", "CTCAE adverse event (patients)", term.replace("_", " ").capitalize(),
                           int(per_term.get(term, 0)), len(c)) for term in v.CTCAE_TERM]
        return [*_categories(c, OUTCOME_CATEGORIES, data.cohort), *terms]
    frames = [_frame(group, rows(g.cohort, g.toxicities)) for group, g in groups(data)]
    return pd.concat(frames, ignore_index=True)


def centre_comparisons(data: CohortData, policy: OutputPolicy = UNPROTECTED) -> pd.DataFrame:
    """Each categorical variable compared between centres, by the study's chi-square/Fisher rule, on the counts
    the centres release under `policy` (so a test says nothing the counts do not)."""
    rows = []
    if len(data.centres) > 1:
        for section, variable, column, levels in (*TABLE1_CATEGORIES, *RESPONSE_CATEGORIES, *OUTCOME_CATEGORIES):
            frame = _denominator(data.cohort, column)
            # a yes/no variable compares yes against everyone else; a categorical one its listed levels
            category = frame[column].eq(levels[0][0]) if len(levels) == 1 else frame[column].map(dict(levels))
            counts = pd.crosstab(frame["centre_id"], category)
            result = compare_groups(policy.counts(counts.to_numpy()))
            rows.append({"section": section, "variable": variable, "test": result.test,
                         "statistic": result.statistic, "p_value": result.p_value})
    return pd.DataFrame(rows, columns=["section", "variable", "test", "statistic", "p_value"])


def _by_group(data: CohortData, build: Callable[[pd.DataFrame], list[dict[str, Any]]]) -> pd.DataFrame:
    return pd.concat([_frame(group, build(g.cohort)) for group, g in groups(data)], ignore_index=True)


def _frame(group: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS[1:])
    frame.insert(0, "group", group)
    return frame


def _total_row(cohort: pd.DataFrame) -> dict[str, Any]:
    return {"section": "Patients", "variable": "Number of patients", "level": "", "statistic": "n",
            "n": len(cohort), "total": len(cohort)}


def _denominator(cohort: pd.DataFrame, column: str) -> pd.DataFrame:
    flag = DENOMINATOR.get(column)
    return cohort[cohort[flag].eq(True)] if flag else cohort


def _categories(cohort: pd.DataFrame, specs: Sequence[tuple[str, str, str, Levels]],
                pooled: pd.DataFrame) -> list[dict[str, Any]]:
    """A row per level; and a "Not recorded" row (unknown is not no: a yes/no variable without data is its own
    row, never counted as No) in every group where any patient of the `pooled` cohort lacks the value, so that a
    centre with none missing shows 0 rather than a blank."""
    rows = []
    for section, variable, column, levels in specs:
        frame = _denominator(cohort, column)
        values = frame[column]
        for stored, label in levels:
            rows.append(rate_row(section, variable, label, int((values == stored).sum()), len(frame)))
        if _denominator(pooled, column)[column].isna().any():
            rows.append(rate_row(section, variable, NOT_RECORDED, int(values.isna().sum()), len(frame)))
    return rows


def rate_row(section: str, variable: str, level: str, count: int, total: int) -> dict[str, Any]:
    rate = exact_rate(count, total)
    return {"section": section, "variable": variable, "level": level, "statistic": COUNT, "n": count,
            "total": total, "estimate": rate.percent, "lower": 100 * rate.lower, "upper": 100 * rate.upper}


def _medians(cohort: pd.DataFrame, specs: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    rows = []
    for section, variable, column in specs:
        values = pd.to_numeric(cohort[column], errors="coerce").dropna()
        rows.append({"section": section, "variable": variable, "level": "", "statistic": MEDIAN,
                     "n": len(values), "total": len(cohort),
                     "estimate": float(values.median()) if len(values) else None,
                     "lower": float(values.min()) if len(values) else None,
                     "upper": float(values.max()) if len(values) else None})
    return rows
