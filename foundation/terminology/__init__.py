"""Canonical terminology: the project's ValueSets and local CodeSystem, and ConceptMap translation."""

from foundation.terminology.conceptmap import ConceptMapIndex, build_conceptmap
from foundation.terminology.valuesets import (
    BASE_URL,
    LOCAL_SYSTEM,
    CanonicalValueSet,
    Coding,
    local_codesystem,
    valueset,
    valueset_resources,
    valuesets,
)

__all__ = [
    "BASE_URL", "LOCAL_SYSTEM", "CanonicalValueSet", "Coding", "ConceptMapIndex", "build_conceptmap",
    "local_codesystem", "valueset", "valueset_resources", "valuesets",
]
