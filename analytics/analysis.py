"""`analyse`: every output of the analytics stage for one cohort snapshot, written atomically.

Outputs go to `<folder>/tables/<name>.csv|.parquet`, `<folder>/figures/figure1_<group>.png|.svg`,
`<folder>/report.html` and `<folder>/summary.json`. They are written into a sibling staging folder and
swapped in by renames, so a reader sees the previous complete outputs or the new complete ones, never a mix (a
killed analysis's staging folder is removed by the next, `ilp.staging`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from analytics import descriptive, display, survival_tables
from analytics.cohort import CohortData
from analytics.disclosure import suppress
from analytics.figures import figure1, save
from analytics.kaplan_meier import KaplanMeier
from analytics.plan import AnalysisPlan
from analytics.report import Section, render
from ilp.staging import staging_folder

# Per result table: the count columns that trigger suppression, and the columns derived from them.
_ESTIMATES = ("estimate", "lower", "upper")
SMALL_CELLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "table1": (("n",), _ESTIMATES), "table2": (("n",), _ESTIMATES), "outcomes": (("n",), _ESTIMATES),
    "table3": (("n", "events"), ("median_years", "median_lower_years", "median_upper_years")),
    "logrank": (("smallest_group",), ("levels",)),
}


@dataclass
class AnalysisResult:
    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.folder / "report.html"


def analyse(data: CohortData, folder: Path, plan: AnalysisPlan | None = None,
            title: str = "Isolated limb perfusion cohort") -> AnalysisResult:
    """Compute every table and figure for `data` and publish them under `folder` (replacing earlier outputs)."""
    plan = plan or AnalysisPlan()
    folder = Path(folder)
    result = AnalysisResult(folder, _tables(data, plan))
    with staging_folder(folder.parent, f"{folder.name}-{uuid.uuid4().hex[:8]}") as staging:
        new = staging / "new"
        _write_tables(result.tables, new / "tables")
        figures = _figures(data, plan, new / "figures")
        _report(result.tables, figures, data, plan, title, new / "report.html")
        (new / "summary.json").write_text(json.dumps(_summary(data, result.tables, plan), indent=2, default=str),
                                          encoding="utf-8")
        if folder.exists():  # swapped by renames only; the old outputs leave with the staging folder
            folder.rename(staging / "old")
        new.rename(folder)
    result.figures = [folder / "figures" / p.name for paths in figures.values() for p in paths]
    return result


def _tables(data: CohortData, plan: AnalysisPlan) -> dict[str, pd.DataFrame]:
    tables = {"table1": descriptive.table1(data), "table2": descriptive.table2(data),
              "outcomes": descriptive.outcomes(data), "centre_comparisons": descriptive.centre_comparisons(data),
              "table3": survival_tables.table3(data, plan), "logrank": survival_tables.logrank_tests(data, plan),
              "cox": survival_tables.cox_models(data, plan)}
    if plan.suppress_small_cells:
        for name, (counts, derived) in SMALL_CELLS.items():
            tables[name] = suppress(tables[name], counts, derived, plan.min_cell)
    return tables


def _write_tables(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
        table.astype({c: str for c in table.columns if table[c].dtype == object}).to_parquet(
            folder / f"{name}.parquet", index=False)


def _figures(data: CohortData, plan: AnalysisPlan, folder: Path) -> dict[str, list[Path]]:
    """Figure 1 pooled (a curve per centre and the pooled one) and per centre."""
    hide_below = plan.min_cell if plan.suppress_small_cells else 0
    figures: dict[str, list[Path]] = {}
    centres = data.centres
    for group, subset in descriptive.groups(data):
        curves: dict[str, list[tuple[str, KaplanMeier]]] = {}
        for endpoint in plan.endpoints:
            labelled = [(group, subset)] if group != descriptive.POOLED or len(centres) == 1 else \
                [(descriptive.POOLED, subset)] + [(c, subset.for_centre(c)) for c in centres]
            fitted = [(label, survival_tables.fit_km(d.cohort, endpoint, plan, label)) for label, d in labelled]
            curves[endpoint.name] = [(label, km) for label, km in fitted if km is not None]
        title = "Pooled consortium" if group == descriptive.POOLED else f"Centre {group}"
        figures[group] = save(figure1({k: c for k, c in curves.items() if c}, plan, title, hide_below), folder,
                              f"figure1_{group}")
    return figures


def _report(tables: dict[str, pd.DataFrame], figures: dict[str, list[Path]], data: CohortData, plan: AnalysisPlan,
            title: str, path: Path) -> None:
    sections = [
        Section("Table 1. Patient demographics and tumour characteristics",
                "n (%) of patients, or median [range]; pooled consortium then each centre.",
                [("Table 1", display.descriptive(tables["table1"]))]),
        Section("Table 2. Response to ILP", "RECIST radiological response within 90 days of the first ILP; "
                "pathological response on the resection specimen (resected patients); follow-up from diagnosis.",
                [("Table 2", display.descriptive(tables["table2"]))]),
        Section("Toxicity and treatment", "Worst grade per patient; CTCAE rows count patients with each event.",
                [("Toxicity and treatment", display.descriptive(tables["outcomes"])),
                 ("Between-centre comparisons", tables["centre_comparisons"])]),
        Section("Table 3. Oncological outcomes", "Median survival in years and survival rates, with 95% CI.",
                [("Table 3", display.survival_summary(tables["table3"], plan.horizons_years))]),
        Section("Prognostic factors", "Log-rank tests by each factor of the study, per centre and pooled; Cox "
                "models on the pooled cohort.",
                [("Log-rank tests", display.logrank(tables["logrank"])), ("Cox models", display.cox(tables["cox"]))]),
        Section("Figure 1. Survival curves", "a recurrence-free, b metastasis-free, c local relapse-free, "
                "d overall survival; numbers at risk under each panel.",
                figures=[(f"Figure 1 ({group})", paths[0]) for group, paths in figures.items()]),
    ]
    provenance = {"snapshot": data.source, "manifests": data.manifests, "version": version("ilp-cohort")}
    render(path, title, sections, provenance, plan)


def _summary(data: CohortData, tables: dict[str, pd.DataFrame], plan: AnalysisPlan) -> dict[str, object]:
    return {"snapshot": data.source, "centres": data.centres, "patients": len(data.cohort),
            "ci_method": plan.ci_method, "small_cells_suppressed": plan.suppress_small_cells,
            "min_cell": plan.min_cell, "tables": {name: len(t) for name, t in tables.items()}}
