"""Human-readable versions of the tidy result tables (the CSVs keep the numbers; these keep the study's look).

Counts read '19/41 (46.3%)' (a percentage says its denominator), medians '51 [21-76]', survival '63% (48-81)',
medians not reached 'NR'. Groups (pooled, then centres) become columns, as a reader compares centres side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from analytics.descriptive import COUNT, MEDIAN
from analytics.plan import AnalysisPlan, Factor

WITHHELD = "withheld_because"


def _number(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NR"
    number = float(value)  # type: ignore[arg-type]
    return f"{number:.0f}" if number.is_integer() else f"{number:.{digits}f}"


def _count(value: object) -> str:
    """A count; empty where there is none (a model that could not be estimated)."""
    if value is None or pd.isna(value):
        return ""
    return f"{float(value):.0f}"  # type: ignore[arg-type]


def _percent(value: object) -> str:
    """A survival limit in %; NA where it is undefined (S = 0 has no log-scale interval, R reports NA)."""
    return "NA" if value is None or pd.isna(value) else f"{100 * float(value):.0f}"  # type: ignore[arg-type]


def descriptive(table: pd.DataFrame) -> pd.DataFrame:
    """Rows (section, variable, level) by group columns."""
    def text(row: pd.Series) -> str:
        reason = row.get(WITHHELD)
        if pd.notna(reason) and (pd.isna(row["n"]) or pd.isna(row["estimate"])):
            return f"withheld: {reason}"
        return formatted(row) + (f" ({reason})" if pd.notna(reason) else "")

    def formatted(row: pd.Series) -> str:
        if row["statistic"] == COUNT:
            # the denominator is said: a rate over the resected, or over those with the variable recorded
            return f"{int(row['n'])}/{int(row['total'])} ({row['estimate']:.1f}%)" if row["total"] else "0"
        if row["statistic"] == MEDIAN:
            if pd.isna(row["estimate"]):
                return "n/a"
            if pd.isna(row["lower"]):  # the policy withholds a range: its ends are single patients' values
                return f"{_number(row['estimate'])} [range withheld]"
            return f"{_number(row['estimate'])} [{_number(row['lower'])}-{_number(row['upper'])}]"
        return str(int(row["n"]))
    return _wide(table.assign(text=[text(row) for _, row in table.iterrows()]), ["section", "variable", "level"])


def survival_summary(table: pd.DataFrame, horizons: tuple[int, ...]) -> pd.DataFrame:
    """Table 3: per endpoint and group, events/n, median in years (CI) and each horizon's rate (CI)."""
    def median(record: dict[str, Any]) -> dict[str, str]:
        return {"Median, years (95% CI)": f"{_number(record.get('median_years'))} "
                                          f"({_number(record.get('median_lower_years'))}-"
                                          f"{_number(record.get('median_upper_years'))})"}
    return _by_horizon(table, horizons, "survival", "Events / n", lambda r: f"{r['events']} / {r['n']}", median)


def competing_risks(table: pd.DataFrame, horizons: tuple[int, ...]) -> pd.DataFrame:
    """Per endpoint and group: events / competing deaths / n, and the incidence in % (CI) at each horizon."""
    def gray(record: dict[str, Any]) -> dict[str, str]:
        p = record.get("between_centres_p")
        return {"Between centres (Gray's test)": "" if p is None or pd.isna(p) else
                f"chi2 {record['between_centres_chi_square']:.2f} (df {int(record['between_centres_df'])}), "
                f"p={p:.3g}"}
    return _by_horizon(table, horizons, "incidence", "Events / deaths / n",
                       lambda r: f"{r['events']} / {r['competing_deaths']} / {r['n']}", gray)


def _by_horizon(table: pd.DataFrame, horizons: tuple[int, ...], estimate: str, counted: str,
                counts: Callable[[dict[str, Any]], str],
                more: Callable[[dict[str, Any]], dict[str, str]] = lambda _: {}) -> pd.DataFrame:
    """One row per endpoint and group: the counts, `more`, and `<estimate>_<years>y` in % with its CI per horizon,
    and what the output policy withheld."""
    rows = []
    for record in table.to_dict("records"):
        row = {"Endpoint": record["label"], "Group": record["group"]}
        row[counted] = counts(record)
        row.update(more(record))
        for years in horizons:
            value = record.get(f"{estimate}_{years}y")
            row[f"{years}-year, % (95% CI)"] = "n/a" if value is None or pd.isna(value) else (
                f"{100 * value:.0f} ({_percent(record[f'{estimate}_{years}y_lower'])}-"
                f"{_percent(record[f'{estimate}_{years}y_upper'])})")
        row["Withheld"] = record.get(WITHHELD) or ""
        rows.append(row)
    return pd.DataFrame(rows)


def logrank(table: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """Endpoint (by its label) and factor rows, one column per group: 'chi2 3.21, p=0.073'."""
    def text(row: pd.Series) -> str:
        if pd.isna(row["p_value"]):
            return row["note"] or "n/a"
        return f"chi2 {row['chi_square']:.2f} (df {int(row['df'])}), p={row['p_value']:.3g}"
    labels = {e.name: e.label for e in plan.endpoints}
    shown = table.assign(text=[text(row) for _, row in table.iterrows()],
                         endpoint=table["endpoint"].map(lambda e: labels.get(e, e)))
    return _wide(shown, ["endpoint", "factor"])


def _wide(shown: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """`text` with a row per `index` and a column per group, both in the order they first appear in the tidy
    table (a pivot alone sorts rows it meets late, so Grade V would come before Grade IIIa)."""
    rows = pd.MultiIndex.from_tuples(list(dict.fromkeys(shown[index].itertuples(index=False, name=None))),
                                     names=index)
    wide = shown.pivot_table(index=index, columns="group", values="text", aggfunc="first", sort=False)
    wide = wide.reindex(index=rows)[list(dict.fromkeys(shown["group"]))]
    wide.columns.name = None
    return wide.reset_index()


def cox(table: pd.DataFrame, plan: AnalysisPlan, ratio: str = "HR") -> pd.DataFrame:
    """One row per model term with HR (CI), p and, for Cox models, the proportional-hazards check; endpoints and
    terms by their labels (`term_labels`)."""
    def hr(row: pd.Series) -> str:
        if row.get("note"):  # a note names the term it is about as a reader knows it
            return re.sub(r"term (\S+):", lambda m: f"term {term_label(m[1], plan)}:", row["note"])
        if pd.isna(row["hazard_ratio"]):
            return "n/a"
        return f"{row['hazard_ratio']:.2f} ({row['hr_lower']:.2f}-{row['hr_upper']:.2f})"
    labels = {e.name: e.label for e in plan.endpoints}
    shown = pd.DataFrame({"Endpoint": table["endpoint"].map(lambda e: labels.get(e, e)), "Model": table["model"],
                          "Term": term_labels(table, plan), f"{ratio} (95% CI)": [hr(r) for _, r in table.iterrows()]})
    if "p" in table.columns:
        shown["p"] = table["p"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}")
        if "ph_test_p" in table.columns:
            shown["PH test p"] = table["ph_test_p"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}")
        shown["n / events"] = [f"{_count(r['n'])} / {_count(r['events'])}" for r in table.to_dict("records")]
    return shown


def term_labels(table: pd.DataFrame, plan: AnalysisPlan) -> list[str]:
    """Each model term as a reader reads it, against its reference where the model's other terms tell it:
    `age_over_65` -> 'Age > 65 years (vs <= 65 years)', `fnclcc_grade=3` -> 'FNCLCC grade High (3) (vs Low (1))',
    `centre_id=borealis` -> 'Centre borealis (vs aurora)' (the reference is the first level in sort order, as
    `cox.design_matrix` codes it)."""
    factors = {f.column: f for f in plan.factors}
    terms = table["term"].fillna("").astype(str) if "term" in table.columns else pd.Series([""] * len(table))
    keys = table[["endpoint", "model"]].astype(str).agg("|".join, axis=1) if len(table) else pd.Series(dtype=str)
    in_model = {key: set(group) for key, group in terms.groupby(keys)} if len(table) else {}
    centres = sorted({m.removeprefix("centre ") for m in table.get("model", pd.Series(dtype=str)).astype(str)
                      if m.startswith("centre ") and m != "centre as covariate"})
    labels = []
    for key, term in zip(keys, terms, strict=True):
        column, _, level = term.partition("=")
        factor, label = factors.get(column), term_label(term, plan)
        if not level:  # a 0/1 term: against its False level
            shown = factor.label_of(False) if factor and label != term else None
        else:  # a category: against the one level below its terms that the model does not show
            levels = [t.partition("=")[2] for t in in_model[key] if t.partition("=")[0] == column]
            known = [str(stored) for stored, _ in factor.levels] if factor else (
                centres if column == "centre_id" else [])
            below = [c for c in known if c not in levels and c < min(levels)]
            reference = below[0] if len(below) == 1 else None
            shown = (factor.label_of(_stored(factor, reference)) or reference) if factor and reference \
                else reference
        labels.append(label + (f" (vs {shown})" if shown else ""))
    return labels


def term_label(term: str, plan: AnalysisPlan) -> str:
    """One term by the plan's labels: `fnclcc_grade=3` -> 'FNCLCC grade High (3)', `age_over_65` -> 'Age > 65
    years', `centre_id=borealis` -> 'Centre borealis'; a term the plan does not know stays as it is."""
    column, _, level = term.partition("=")
    factor = next((f for f in plan.factors if f.column == column), None)
    if not level:
        return f"{factor.label} {factor.label_of(True)}" if factor and factor.label_of(True) else term
    if factor:
        return f"{factor.label} {factor.label_of(_stored(factor, level)) or level}"
    return f"Centre {level}" if column == "centre_id" else term


def _stored(factor: Factor, level: str | None) -> object:
    """The stored value a term's level names (`2` -> 2, `male` -> 'male')."""
    return next((stored for stored, _ in factor.levels if str(stored) == level), level)
