"""The canonical ILP cohort model: tables, vocabularies, endpoint declarations and the date rule."""

from foundation.model.endpoints import DEFAULT_ENDPOINTS, Endpoint, Exclusion
from foundation.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES
from foundation.model.schema import Column, Table
from foundation.model.tables import (
    BY_NAME,
    COHORT,
    EVENTS,
    PATIENTS,
    PERFUSIONS,
    RESPONSES,
    TABLES,
    TOXICITIES,
    TREATMENTS,
    TUMOURS,
)

__all__ = [
    "BY_NAME", "COHORT", "DEFAULT_ENDPOINTS", "EVENTS", "PATIENTS", "PERFUSIONS", "RESOURCE_TYPES", "RESPONSES",
    "TABLES", "TERMINOLOGY_TYPES", "TOXICITIES", "TREATMENTS", "TUMOURS", "Column", "Endpoint", "Exclusion", "Table",
]
