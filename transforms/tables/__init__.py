"""Build every canonical table of one centre from its current resources."""

from __future__ import annotations

from pyspark.sql import DataFrame

from ilp.model import DEFAULT_ENDPOINTS, Endpoint
from transforms.tables.cohort import build_cohort
from transforms.tables.followup import build_events, build_treatments
from transforms.tables.outcomes import build_responses, build_toxicities
from transforms.tables.patients import build_patients
from transforms.tables.perfusions import build_perfusions
from transforms.tables.tumours import build_tumours, diagnoses
from transforms.view import CentreView


def build_tables(view: CentreView, run_id: str,
                 endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS) -> dict[str, DataFrame]:
    """The canonical tables (patients ... events, then cohort from them), as lazy DataFrames."""
    tables = {
        "patients": build_patients(view, diagnoses(view), run_id),
        "tumours": build_tumours(view, run_id),
        "perfusions": build_perfusions(view, run_id),
        "toxicities": build_toxicities(view, run_id),
        "responses": build_responses(view, run_id),
        "treatments": build_treatments(view, run_id),
        "events": build_events(view, run_id),
    }
    tables["cohort"] = build_cohort(tables, endpoints, view.centre_id, run_id)
    return tables
