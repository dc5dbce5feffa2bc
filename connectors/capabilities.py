"""What a FHIR server says it can do, read once per run from its CapabilityStatement, and the pull planned from it.

Hospital servers differ: some have no type-level `_history` (deletions must be found another way), some ignore or
refuse `_lastUpdated`, some search clinical types only within a patient compartment (US Core's
search-parameter-combination extension says `patient` is required). A statement that does not describe a type
is taken to allow everything, and the pull falls back at run time where the server refuses; the configuration's
`server_features` overrides the statement where it is wrong. The plan is recorded in the landing manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from connectors.settings import ServerFeatures

COMBINATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
COMPARTMENT_PARAMETERS = frozenset({"patient", "subject"})
EXPORT_LEVELS = {"": "system", "Patient": "patient", "Group": "group"}


@dataclass(frozen=True)
class TypePlan:
    """How one resource type is pulled from this server."""

    last_updated: bool  # incremental searches filter on `_lastUpdated`; else every search reads all
    count: bool  # searches ask for a page size with `_count` (a strict server refuses parameters it lacks)
    history: bool  # deletions come from type-level `_history`
    system_search: bool  # searchable across patients; else within each patient's compartment
    described: bool  # the CapabilityStatement describes the type (else everything is assumed, and checked)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _resource_entries(capability: dict[str, Any]) -> dict[str, dict[str, Any]]:
    servers = [r for r in capability.get("rest") or [] if isinstance(r, dict) and r.get("mode", "server") == "server"]
    return {str(entry.get("type")): entry for rest in servers for entry in rest.get("resource") or []
            if isinstance(entry, dict)}


def _names(items: Any, key: str) -> set[str]:
    return {str(item.get(key)) for item in items or [] if isinstance(item, dict)}


def _requires_compartment(entry: dict[str, Any]) -> bool:
    """Whether every search of the type must name a patient (a required search-parameter combination)."""
    for extension in entry.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == COMBINATION:
            required = {str(e.get("valueString")) for e in extension.get("extension") or []
                        if isinstance(e, dict) and e.get("url") == "required"}
            if required & COMPARTMENT_PARAMETERS:
                return True
    return False


def plan_types(capability: dict[str, Any], resource_types: tuple[str, ...],
               overrides: ServerFeatures) -> dict[str, TypePlan]:
    """The plan per type: what the statement says, then what the configuration overrides."""
    entries = _resource_entries(capability)
    plans = {}
    for resource_type in resource_types:
        entry = entries.get(resource_type)
        if entry is None:
            # a statement that lists other types but not this one says nothing of it: search it, but do not count
            # on its `_history` (deletions are then found by comparing ids)
            said = {"last_updated": True, "count": True, "history": not entries, "system_search": True}
        else:
            interactions = _names(entry.get("interaction"), "code")
            params = _names(entry.get("searchParam"), "name")
            across = not _requires_compartment(entry)
            # type-level history spans patients: a server that searches only within compartments does not serve it
            # `_count` is a result parameter that statements seldom list: always asked for unless overridden (a
            # server that refuses it is searched again without it)
            said = {"last_updated": not params or "_lastUpdated" in params, "count": True,
                    "history": "history-type" in interactions and across, "system_search": across}
        chosen = {name: said[name] if getattr(overrides, name, None) is None else bool(getattr(overrides, name))
                  for name in said}
        if overrides.history is None and not chosen["system_search"]:
            chosen["history"] = False  # type-level history spans patients, as system-level search does
        plans[resource_type] = TypePlan(described=entry is not None, **chosen)
    return plans


def export_levels(capability: dict[str, Any]) -> list[str]:
    """The `$export` levels the statement advertises (system, patient, group)."""
    levels = set()
    for rest in capability.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        if "export" in _names(rest.get("operation"), "name"):
            levels.add("system")
        for entry in rest.get("resource") or []:
            if isinstance(entry, dict) and "export" in _names(entry.get("operation"), "name"):
                levels.add(EXPORT_LEVELS.get(str(entry.get("type")), str(entry.get("type"))))
    return sorted(levels)
