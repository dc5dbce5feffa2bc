"""One self-contained HTML report: provenance, methods, the study's tables and Figure 1, pooled and per centre.

Self-contained means a reviewer can mail it: figures are inlined as PNG data URIs, styles are inline, nothing is
fetched. Every value comes from the result tables written beside it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.kaplan_meier import CI_LABEL
from analytics.plan import AnalysisPlan
from analytics.proportions import MONTE_CARLO_TABLES
from foundation.manifests import SnapshotManifest

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .85em; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } figure { margin: 1em 0; } img { max-width: 100%; }
.note { color: #555; font-size: .9em; }
.unpublished { border: 3px solid #b00020; background: #fdecee; padding: 0 1em 1em; margin: 1em 0; }
.unpublished h2 { color: #b00020; border: none; }
"""


@dataclass(frozen=True)
class Section:
    """A titled part of the report: an explanatory note, then tables and figures in order."""

    title: str
    note: str
    tables: Sequence[tuple[str, pd.DataFrame]] = ()
    figures: Sequence[tuple[str, Path]] = ()


def render(path: Path, title: str, sections: Sequence[Section], provenance: dict[str, Any],
           plan: AnalysisPlan, unpublished: Sequence[str] = ()) -> Path:
    """Write the report to `path`; `unpublished`: the failures that kept this snapshot from publication, shown
    first (a preview of what would have been published)."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             _unpublished(unpublished), _provenance(provenance), _methods(plan)]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2><p class='note'>{html.escape(section.note)}</p>")
        for caption, table in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(table.to_html(index=False, na_rep="", border=0, classes="result"))
        for caption, image in section.figures:
            data = base64.b64encode(image.read_bytes()).decode("ascii")
            parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _unpublished(failures: Sequence[str]) -> str:
    if not failures:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in failures)
    return (f"<section class='unpublished'><h2>Not published: a preview</h2><p>This snapshot failed validation and "
            f"was not published; the published cohort is unchanged. {len(failures)} critical expectation(s) "
            f"failed:</p><ul>{items}</ul><p>Nothing below is a consortium result until these are fixed and a "
            "new snapshot passes validation.</p></section>")


def _definition_list(items: dict[str, str]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


def _provenance(provenance: dict[str, Any]) -> str:
    manifests: list[SnapshotManifest] = provenance.get("manifests", [])
    centres = pd.DataFrame([{
        "centre": m.centre_id, "transform run": m.run_id, "landing runs": ", ".join(m.merged_landing_runs),
        "patients": m.rows.get("cohort"), "finished": m.finished_at,
        "ConceptMaps": ", ".join(m.conceptmaps) or "none"} for m in manifests])
    header = _definition_list({"Cohort snapshot": str(provenance["snapshot"]),
                               "Generated": datetime.now(UTC).isoformat(timespec="seconds"),
                               "Software": f"ilp-cohort {provenance['version']}, lifelines {version('lifelines')}, "
                                           f"scipy {version('scipy')}"})
    table = centres.to_html(index=False, border=0) if not centres.empty else "<p>No manifests found.</p>"
    return f"<section><h2>Provenance</h2>{header}{table}{_gaps(manifests)}</section>"


def _gaps(manifests: Sequence[SnapshotManifest]) -> str:
    """The canonical columns a centre leaves entirely empty while another fills them: where the pooled tables'
    "Not recorded" rows and a centre's missing values come from (no counts: they are the manifests')."""
    items = [f"<li>{html.escape(m.centre_id)}: {html.escape(', '.join(m.gaps))}</li>" for m in manifests if m.gaps]
    if not items:
        return ""
    return ("<h3>Columns a centre leaves empty while other centres fill them</h3><p class='note'>Usually an element "
            "the centre keeps where the views do not look: see <code>ilp profile</code> and docs/onboarding.md. "
            f"Its patients count as Not recorded for these variables.</p><ul>{''.join(items)}</ul>")


def _methods(plan: AnalysisPlan) -> str:
    endpoints = {e.label: (f"from the first present of {', '.join(e.origins)} to the earliest of "
                           f"{', '.join(e.events)}; censored at {e.follow_up_end}"
                           + "".join(f"; excluded when {x.column} = {x.value!r} and no "
                                     f"{' or '.join(x.unless_present)}" for x in e.exclusions))
                 for e in plan.endpoints}
    methods = {
        "Survival": f"Kaplan-Meier; pointwise {int((1 - plan.alpha) * 100)}% CI by the {CI_LABEL[plan.ci_method]} "
                    "transform of Greenwood's variance; median and its CI where the curve and its band reach 0.5 "
                    "(R quantile.survfit rule); rates at " + ", ".join(f"{h} year(s)" for h in plan.horizons_years),
        "Comparisons": "log-rank test (chi-square); Cox proportional hazards with Efron ties, stratified by centre "
                       "and with centre as a covariate; proportional hazards checked by the Grambsch-Therneau test "
                       "with the Kaplan-Meier time transform (R cox.zph default)",
        "Proportions": "Clopper-Pearson exact 95% CI; between centres: chi-square when every expected count is "
                       "at least 5 (Yates for 2x2), else Fisher's exact test (Monte Carlo over "
                       f"{MONTE_CARLO_TABLES} tables for tables larger than 2x2)",
        "Output policy": plan.policy.describe(),
        "Time unit": "months of 30.4375 days in the data; medians and horizons shown in years",
    }
    return (f"<section><h2>Methods</h2>{_definition_list(methods)}<h3>Endpoints</h3>"
            f"{_definition_list(endpoints)}</section>")
