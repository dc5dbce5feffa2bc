"""`analyse`: every output of the analytics stage for one cohort snapshot, written atomically.

Outputs go to `<folder>/tables/<name>.csv|.parquet`, `<folder>/figures/figure1_<group>.png|.svg` and
`figure2_<group>` (cumulative incidence),
`<folder>/report.html` and `<folder>/summary.json`. They are written into a sibling staging folder and
swapped in by renames, so a reader sees the previous complete outputs or the new complete ones, never a mix (a
killed analysis's staging folder is removed by the next, `foundation.staging`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from analytics import descriptive, survival_tables
from analytics.cohort import CohortData
from analytics.competing_risks import CumulativeIncidence
from analytics.figures import cumulative_incidence_figure, figure1, save
from analytics.kaplan_meier import KaplanMeier
from analytics.outputs import FIGURE1, FIGURE2, HEADINGS, OUTPUTS
from analytics.plan import AnalysisPlan
from analytics.report import Section, render
from foundation.staging import staging_folder


@dataclass
class AnalysisResult:
    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.folder / "report.html"


def analyse(data: CohortData, folder: Path, plan: AnalysisPlan | None = None,
            title: str = "Isolated limb perfusion cohort", unpublished: Sequence[str] = ()) -> AnalysisResult:
    """Compute every table and figure for `data` and publish them under `folder` (replacing earlier outputs).

    `unpublished`: the validation failures that kept the snapshot from publication; the report is then marked
    as a preview, with the failures first, and so is the summary."""
    plan = plan or AnalysisPlan()
    folder = Path(folder)
    result = AnalysisResult(folder, _tables(data, plan))
    with staging_folder(folder.parent, f"{folder.name}-{uuid.uuid4().hex[:8]}") as staging:
        new = staging / "new"
        write_tables(result.tables, new / "tables")
        figures = _figures(data, plan, new / "figures")
        incidence = _incidence_figures(data, plan, new / "figures")
        _report(result.tables, figures, incidence, data, plan, title, new / "report.html", unpublished)
        summary = {**_summary(data, result.tables, plan), "published": not unpublished,
                   "blocking_failures": list(unpublished)}
        (new / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        if folder.exists():  # swapped by renames only; the old outputs leave with the staging folder
            folder.rename(staging / "old")
        new.rename(folder)
    result.figures = [folder / "figures" / p.name for drawn in (figures, incidence) for paths in drawn.values()
                      for p in paths]
    return result


def _tables(data: CohortData, plan: AnalysisPlan) -> dict[str, pd.DataFrame]:
    """Every registered output, as it may leave under the plan's output policy."""
    return published({output.name: output.build(data, plan) for output in OUTPUTS}, plan)


def published(tables: dict[str, pd.DataFrame], plan: AnalysisPlan, released: Collection[str] = ()
              ) -> dict[str, pd.DataFrame]:
    """Registered outputs as they may leave under the plan's output policy (`OutputPolicy`); those named in
    `released` were pooled from what the centres released (`Output.published`)."""
    return {o.name: o.published(tables[o.name], plan.policy, o.name in released) for o in OUTPUTS
            if o.name in tables}


# Columns that hold numbers of patients, events or degrees of freedom, in any output.
COUNT_COLUMNS = ("n", "total", "events", "competing_deaths", "smallest_group", "fewest_events", "df",
                 "between_centres_df")


def write_tables(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, table in tables.items():
        typed = typed_table(table)
        typed.to_csv(folder / f"{name}.csv", index=False)
        typed.to_parquet(folder / f"{name}.parquet", index=False)


def typed_table(table: pd.DataFrame) -> pd.DataFrame:
    """A table as analysts read it: counts as integers (empty where a row has none, never '301.0' or a string),
    text as text (empty, not 'None'), estimates as floats."""
    counts = {c: "Int64" for c in table.columns if c in COUNT_COLUMNS or c.startswith("at_risk_")}
    text = {c: "string" for c in table.columns if c not in counts and table[c].dtype == object}
    return table.astype({**counts, **text})


def _figures(data: CohortData, plan: AnalysisPlan, folder: Path) -> dict[str, list[Path]]:
    """Figure 1 pooled (a curve per centre and the pooled one) and per centre."""
    figures: dict[str, list[Path]] = {}
    centres = data.centres
    for group, subset in descriptive.groups(data):
        curves: dict[str, list[tuple[str, KaplanMeier]]] = {}
        for endpoint in plan.endpoints:
            labelled = [(group, subset)] if group != descriptive.POOLED or len(centres) == 1 else \
                [(descriptive.POOLED, subset)] + [(c, subset.for_centre(c)) for c in centres]
            fitted = [(label, survival_tables.fit_km(d.cohort, endpoint, plan, label)) for label, d in labelled]
            curves[endpoint.name] = [(label, km) for label, km in fitted if km is not None]
        drawn = {k: c for k, c in curves.items() if c and k in plan.figure_endpoints}
        # a group with no curve to draw (no patients yet) has no figure, rather than an empty one
        figures[group] = save(figure1(drawn, plan, _title(group)), folder, f"figure1_{group}") \
            if drawn else []
    return figures


def _title(group: str) -> str:
    return "Pooled consortium" if group == descriptive.POOLED else f"Centre {group}"


def _incidence_figures(data: CohortData, plan: AnalysisPlan, folder: Path) -> dict[str, list[Path]]:
    """Figure 2 per group: the cumulative incidence of local relapse and of distant metastasis, death competing."""
    figures: dict[str, list[Path]] = {}
    for group, subset in descriptive.groups(data):
        curves: dict[str, list[tuple[str, CumulativeIncidence]]] = {}
        labels = {}
        for endpoint in survival_tables.competing_endpoints(plan):
            event = survival_tables.COMPETING_ENDPOINTS[endpoint.name]
            frame = survival_tables.competing_data(subset.cohort, endpoint)
            fitted = [(what, survival_tables.fit_cif(frame, plan, cause))
                      for what, cause in ((event, survival_tables.CAUSE), (f"death without {event.lower()}",
                                                                           survival_tables.DEATH))]
            curves[endpoint.name] = [(what, cif) for what, cif in fitted if cif is not None]
            labels[endpoint.name] = event
        figures[group] = save(cumulative_incidence_figure({k: c for k, c in curves.items() if c}, labels,
                                                          _title(group), plan.policy), folder, f"figure2_{group}")
    return figures


def _report(tables: dict[str, pd.DataFrame], figures: dict[str, list[Path]], incidence: dict[str, list[Path]],
            data: CohortData, plan: AnalysisPlan, title: str, path: Path, unpublished: Sequence[str]) -> None:
    sections = table_sections(tables, plan)
    sections.append(Section(FIGURE1.title, FIGURE1.note,
                            figures=[(f"Figure 1 ({group})", paths[0]) for group, paths in figures.items() if paths]))
    sections.append(Section(FIGURE2.title, FIGURE2.note,
                            figures=[(f"Figure 2 ({group})", paths[0]) for group, paths in incidence.items()]))
    provenance = {"snapshot": data.source, "manifests": data.manifests, "version": version("ilp-cohort")}
    render(path, f"{title} (NOT PUBLISHED: preview)" if unpublished else title, sections, provenance, plan,
           unpublished)


def table_sections(tables: dict[str, pd.DataFrame], plan: AnalysisPlan, notes: dict[str, str] | None = None
                   ) -> list[Section]:
    """The report's sections of tables, in the registry's order, each output as its `show` presents it; a heading
    without any of `tables` is left out; `notes` add to a heading's note (by its title)."""
    sections = []
    for heading in HEADINGS:
        shown = [(o.caption, o.show(tables[o.name], plan)) for o in OUTPUTS
                 if o.heading == heading and o.name in tables]
        if shown:
            note = f"{heading.note} {(notes or {}).get(heading.title, '')}".strip()
            sections.append(Section(heading.title, note, shown))
    return sections


def _summary(data: CohortData, tables: dict[str, pd.DataFrame], plan: AnalysisPlan) -> dict[str, object]:
    return {"snapshot": data.source, "centres": data.centres, "patients": len(data.cohort),
            "ci_method": plan.ci_method, "output_policy": asdict(plan.policy),
            "tables": {name: len(t) for name, t in tables.items()}}
