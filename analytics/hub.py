"""The hub's report over centres that sent packages of either kind: validated rows, or aggregates only.

When every centre sent rows, the hub has the pooled cohort and writes the full report (`analysis.analyse`). When
some sent aggregates, it writes what their counts allow, exactly: Tables 1-2 and the outcomes (counts summed,
medians per centre), Table 3 (Kaplan-Meier per centre and pooled),
log-rank tests by each factor and between centres, Figure 1 from the same estimates; the centre-stratified Cox
model needs live rounds with every centre (`federated.FederatedCox`), so a note says which centres' aggregates
cannot answer it. Every figure comes from what the centres released under the output policy, and the tables
are published by the same registry entries as the full report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from analytics.analysis import AnalysisResult, analyse, published, table_sections, write_tables
from analytics.cohort import CohortData
from analytics.descriptive import POOLED
from analytics.federated import (
    DESCRIPTIVE,
    FederatedCox,
    Transport,
    descriptive_tables,
    expanded,
    kaplan_meier_of,
    logrank_of,
    survival_counts,
)
from analytics.figures import figure1, save
from analytics.kaplan_meier import KaplanMeier
from analytics.outputs import PROGNOSTIC, TABLE1, TABLE3
from analytics.plan import AnalysisPlan
from analytics.report import Section, render
from analytics.survival_tables import CATEGORICAL, COX_COVARIATES, logrank_row, model_rows, model_table, table3_rows


@dataclass(frozen=True)
class Contribution:
    """One centre's part: how the hub asks it, and its rows when it sent them."""

    centre_id: str
    site: Transport
    rows: CohortData | None
    described: str  # for the report: the package's kind, snapshot and software
    live: Transport | None = None  # the centre answering rounds (`ilp serve`), for what its package cannot carry

    @property
    def rounds(self) -> Transport | None:
        """Who answers the Cox model's iterations for this centre: its rows here, or the centre itself, live."""
        return self.site if self.rows is not None else self.live


def hub_report(contributions: list[Contribution], folder: Path, plan: AnalysisPlan,
               title: str = "Isolated limb perfusion consortium (hub)") -> AnalysisResult:
    """The consortium's report from its centres' contributions, written to `folder`."""
    if all(c.rows is not None for c in contributions):
        pooled = CohortData(pd.concat([c.rows.cohort for c in contributions if c.rows], ignore_index=True),
                            pd.concat([c.rows.toxicities for c in contributions if c.rows], ignore_index=True),
                            "; ".join(c.described for c in contributions))
        return analyse(pooled, folder, plan, title)
    sites = {c.centre_id: c.site for c in contributions}
    groups = [POOLED, *sites]
    # each centre is asked once per endpoint and factor; a centre's figures are its part of the pooled counts
    counts = {(e.name, column): survival_counts(sites, e.name, column)
              for e in plan.endpoints for column in [None, *(f.column for f in plan.factors)]}
    fits = [(group, endpoint, kaplan_meier_of(_part(counts[(endpoint.name, None)], group), plan, group))
            for group in groups for endpoint in plan.endpoints]
    tables = {**descriptive_tables(sites), "table3": table3_rows(fits, plan),
              "logrank": _logrank_tests(counts, groups, plan)}
    rounds = {c.centre_id: c.rounds for c in contributions if c.rounds is not None}
    aggregates_only = sorted(c.centre_id for c in contributions if c.rounds is None)
    if not aggregates_only:
        tables["cox"] = _stratified_cox(rounds, plan)
    tables = published(tables, plan, released=DESCRIPTIVE)
    result = AnalysisResult(folder, tables)
    write_tables(tables, folder / "tables")
    curves: dict[str, list[tuple[str, KaplanMeier]]] = {}
    for group, endpoint, km in fits:
        if km is not None and (group == POOLED or len(sites) > 1):
            curves.setdefault(endpoint.name, []).append((group, km))
    result.figures = save(figure1(curves, plan, "Pooled consortium"), folder / "figures", "figure1")
    cox = (f"The centre-stratified Cox model is not in this report: centres {', '.join(aggregates_only)} sent "
           "aggregates only, and the model needs live rounds with every centre (`ilp serve`, `ilp pool --live`)."
           if aggregates_only else "The centre-stratified Cox model comes from rounds with the centres (`ilp serve`).")
    sections = table_sections(tables, plan, {
        TABLE1.title: "Pooled counts are the centres' summed; a median cannot be pooled from medians (its n is).",
        TABLE3.title: "From the centres' event and censoring counts.",
        PROGNOSTIC.title: f"Log-rank tests from the centres' counts. {cox}"})
    sections.append(Section("Figure 1. Survival curves", "Pooled and per centre, from the centres' counts.",
                            figures=[("Figure 1", result.figures[0])]))
    provenance = {"snapshot": "centre packages: " + "; ".join(f"{c.centre_id} ({c.described})" for c in contributions),
                  "version": version("ilp-cohort"), "manifests": [m for c in contributions if c.rows
                                                                  for m in c.rows.manifests]}
    render(folder / "report.html", title, sections, provenance, plan)
    return result


def _part(counts: pd.DataFrame, group: str) -> pd.DataFrame:
    """A group's share of the centres' counts: all of them pooled, or one centre's."""
    return counts if group == POOLED else counts[counts["centre"] == group]


def _logrank_tests(counts: Mapping[tuple[str, str | None], pd.DataFrame], groups: list[str],
                   plan: AnalysisPlan) -> pd.DataFrame:
    """The log-rank table of the full report, from counts: each factor per group, and between centres pooled."""
    rows = []
    for group in groups:
        for endpoint in plan.endpoints:
            comparisons: list[tuple[str, str | None]] = [(f.label, f.column) for f in plan.factors]
            if group == POOLED and len(groups) > 2:
                comparisons.append(("Centre", None))
            for label, column in comparisons:
                part = _part(counts[(endpoint.name, column)], group)
                by = "group" if column else "centre"
                labels = pd.Series(expanded(part, by)[2], dtype=object)
                test = logrank_of(part, by) if labels.nunique() >= 2 else None
                rows.append({"group": group, "endpoint": endpoint.name, "factor": label,
                             **logrank_row(test, labels, plan.policy)})
    return pd.DataFrame(rows)


def _stratified_cox(rounds: Mapping[str, Transport], plan: AnalysisPlan) -> pd.DataFrame:
    """Per endpoint, the study's factors in one model stratified by centre, fitted in rounds with the centres."""
    rows = []
    for endpoint in plan.endpoints:
        rows += model_rows({"endpoint": endpoint.name, "model": "stratified by centre"}, partial(
            FederatedCox(plan.alpha).fit, rounds, endpoint.name, COX_COVARIATES, CATEGORICAL), plan.policy,
            released=True)
    return model_table(rows)
