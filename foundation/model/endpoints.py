"""Declared time-to-event endpoints.

A consortium declares each endpoint as data: the cohort columns that may serve as its origin (first present
wins), the columns whose dates are its events (earliest wins), where follow-up ends, and which patients are
excluded. The default declaration is the reference study's: OS from diagnosis to death; RFS, LRFS and MFS from
the resection of the primary tumour to local and/or distant relapse, censored at last follow-up.

Rule for patients without resection (the study reports RFS "among non-progressive patients"): their relapse
endpoints start at the first ILP, and patients whose best radiological response to ILP was progression (PD) and
who were never resected are excluded (their relapse endpoints are null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from foundation.model.dates import months_between


@dataclass(frozen=True)
class Exclusion:
    """Patients for whom `column` equals `value` while every column in `unless_present` is null are excluded."""

    column: str
    value: Any
    unless_present: tuple[str, ...] = ()

    def excludes(self, row: Mapping[str, Any]) -> bool:
        return row.get(self.column) == self.value and all(row.get(c) is None for c in self.unless_present)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint: time from the first present origin to the earliest event, else censored at follow-up end."""

    name: str
    label: str
    origins: tuple[str, ...]
    events: tuple[str, ...]
    follow_up_end: str = "last_contact_date"
    exclusions: tuple[Exclusion, ...] = ()

    def evaluate(self, row: Mapping[str, Any]) -> tuple[float | None, bool | None]:
        """(months, event) for one cohort row; (None, None) when excluded or without an origin."""
        origin: date | None = next((row[c] for c in self.origins if row.get(c) is not None), None)
        if origin is None or any(x.excludes(row) for x in self.exclusions):
            return None, None
        event_dates = [row[c] for c in self.events if row.get(c) is not None]
        if event_dates:
            return months_between(origin, min(event_dates)), True
        return months_between(origin, row[self.follow_up_end]), False

    def origin_kind(self, row: Mapping[str, Any]) -> str | None:
        """Which origin column applied, or None when the patient is excluded."""
        if any(x.excludes(row) for x in self.exclusions):
            return None
        return next((c for c in self.origins if row.get(c) is not None), None)


_NON_PROGRESSIVE = (Exclusion("radiological_response", "PD", unless_present=("resection_date",)),)
_RELAPSE_ORIGINS = ("resection_date", "first_ilp_date")

DEFAULT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("os", "Overall survival", origins=("diagnosis_date",), events=("death_date",)),
    Endpoint("rfs", "Recurrence-free survival", origins=_RELAPSE_ORIGINS,
             events=("local_relapse_date", "distant_metastasis_date"), exclusions=_NON_PROGRESSIVE),
    Endpoint("lrfs", "Local relapse-free survival", origins=_RELAPSE_ORIGINS,
             events=("local_relapse_date",), exclusions=_NON_PROGRESSIVE),
    Endpoint("mfs", "Metastasis-free survival", origins=_RELAPSE_ORIGINS,
             events=("distant_metastasis_date",), exclusions=_NON_PROGRESSIVE),
)
RELAPSE_ORIGIN_LABEL = {"resection_date": "resection", "first_ilp_date": "first_ilp"}
