"""Who is in the study: the cohort definition, declared once for the consortium and applied at every source.

A hospital's server or export holds every patient, not only the perfused ones. The definition says which patients
the study is about in canonical terms (the kinds the shipped ValueSets give procedures and conditions), so each
centre's own codes select its patients through its ConceptMaps, exactly as they feed the tables. The default is
the reference study's inclusion: an isolated limb perfusion for a primary soft-tissue sarcoma of a limb, at any date.

Everything that belongs to other patients is out of scope: counted per resource type, never quarantined, never in
the unmapped-codes report, never in a table. A source that can search by code asks the server for the cohort's
patients (`search_codes`); every source's data is filtered again by the transform, which is the one place the
definition is applied in full (kinds through ConceptMaps and view overrides, the date window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from foundation.terminology import ConceptMapIndex, valueset

PROCEDURE_VALUESET = "procedure"
CONDITION_VALUESET = "condition"


@dataclass(frozen=True)
class CohortDefinition:
    """The patients a study includes: one with a procedure of one of `procedure_kinds` (performed within the
    window, when one is given) and a condition of one of `condition_kinds` (none: no condition is required)."""

    procedure_kinds: tuple[str, ...] = ("ilp",)
    condition_kinds: tuple[str, ...] = ("primary_sarcoma",)
    performed_from: date | None = None
    performed_until: date | None = None

    def __post_init__(self) -> None:
        for name, kinds, values in (("procedure_kinds", self.procedure_kinds, valueset(PROCEDURE_VALUESET).values),
                                    ("condition_kinds", self.condition_kinds, valueset(CONDITION_VALUESET).values)):
            unknown = sorted(set(kinds) - set(values))
            if unknown:
                raise ValueError(f"{name}: unknown kinds {unknown}; the shipped ValueSet has {', '.join(values)}")
        if not self.procedure_kinds:
            raise ValueError("procedure_kinds: at least one kind of procedure defines the cohort")
        if self.performed_from and self.performed_until and self.performed_from > self.performed_until:
            raise ValueError("performed_from is after performed_until")

    def describe(self) -> str:
        """In words, for messages and the report's methods."""
        window = ""
        if self.performed_from or self.performed_until:
            window = f" performed {self.performed_from or '...'} to {self.performed_until or '...'}"
        condition = f" and a condition of kind {' or '.join(self.condition_kinds)}" if self.condition_kinds else ""
        return f"a procedure of kind {' or '.join(self.procedure_kinds)}{window}{condition}"

    def as_record(self) -> dict[str, Any]:
        """What a manifest records of the definition a snapshot was built under."""
        return {"procedure_kinds": list(self.procedure_kinds), "condition_kinds": list(self.condition_kinds),
                "performed_from": self.performed_from.isoformat() if self.performed_from else None,
                "performed_until": self.performed_until.isoformat() if self.performed_until else None}

    def search_codes(self, conceptmap: ConceptMapIndex | None = None) -> tuple[str, ...]:
        """`system|code` tokens of every procedure coding that means one of the cohort's kinds: the canonical
        ValueSet's codings, and the centre's local codes its ConceptMap translates into one of them. A REST source
        searches `Procedure?code=` with these to find the cohort's patients."""
        procedures = valueset(PROCEDURE_VALUESET)
        codings = {c for kind in self.procedure_kinds for c in procedures.codings[kind]}
        tokens = {f"{c.system}|{c.code}" for c in codings}
        if conceptmap is not None:
            tokens |= {f"{system}|{code}" for (system, code), targets in conceptmap.targets.items()
                       if any(procedures.lookup(t.system, t.code) in self.procedure_kinds for t in targets)}
        return tuple(sorted(tokens))


# The reference study's inclusion: an ILP for a primary limb soft-tissue sarcoma, at any date.
REFERENCE_STUDY = CohortDefinition()
