"""Build every canonical table of the centres being transformed from their current resources."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

from foundation.model import DEFAULT_ENDPOINTS, Endpoint
from transforms.tables.cohort import build_cohort
from transforms.tables.followup import build_events, build_treatments
from transforms.tables.outcomes import build_responses, build_toxicities
from transforms.tables.patients import build_patients
from transforms.tables.perfusions import build_perfusions
from transforms.tables.tumours import build_tumours, diagnoses
from transforms.view import ResourceView

Builder = Callable[[ResourceView, str], DataFrame]
BASE_TABLES: dict[str, Builder] = {"patients": lambda view, run_id: build_patients(view, diagnoses(view), run_id),
               "tumours": build_tumours, "perfusions": build_perfusions, "toxicities": build_toxicities,
               "responses": build_responses, "treatments": build_treatments, "events": build_events}


def build_tables(view: ResourceView, run_id: str,
                 endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS) -> dict[str, DataFrame]:
    """The canonical tables (patients ... events, then cohort from them), as lazy DataFrames."""
    tables = {name: build(view, run_id) for name, build in BASE_TABLES.items()}
    tables["cohort"] = build_cohort(tables, endpoints, run_id)
    return tables
