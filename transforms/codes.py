"""Harmonise codings: the canonical value a CodeableConcept means, through the canonical ValueSets and the
centre's ConceptMaps (local code -> standard coding -> canonical value), as Spark map lookups.

The lookup tables are literals in the plan (a few hundred entries), so nothing depends on driver-side state and
the same plan runs on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

from ilp.terminology import ConceptMapIndex, valueset, valuesets


def _key(system: str | None, code: str | None) -> str:
    return f"{system or ''}|{code or ''}"


class CodeLookup:
    """Canonical values of codings for one centre: the ValueSets, plus whatever its ConceptMaps translate."""

    def __init__(self, conceptmaps: ConceptMapIndex | None = None) -> None:
        self.conceptmaps = conceptmaps or ConceptMapIndex({})

    def table(self, valueset_name: str) -> dict[str, str]:
        canonical = valueset(valueset_name)
        table = {_key(c.system, c.code): value for value, codings in canonical.codings.items() for c in codings}
        for (system, code), targets in self.conceptmaps.targets.items():
            value = next((canonical.lookup(t.system, t.code) for t in targets
                          if canonical.lookup(t.system, t.code)), None)
            if value is not None:
                table.setdefault(_key(system, code), value)
        return table

    def value(self, valueset_name: str, concept: Column) -> Column:
        """The canonical value of the first coding of `concept` that means something in the ValueSet."""
        return self.first(valueset_name, concept["coding"])

    def first(self, valueset_name: str, codings: Column) -> Column:
        """The canonical value of the first of `codings` (an array of Coding) that means something."""
        return F.get(self.values(valueset_name, codings), 0)

    def values(self, valueset_name: str, codings: Column) -> Column:
        """The canonical values of every one of `codings` that means something in the ValueSet, in order."""
        table = self.table(valueset_name)
        if not table:
            return F.array().cast("array<string>")
        lookup = F.create_map(*[F.lit(x) for pair in table.items() for x in pair])
        mapped = F.transform(F.coalesce(codings, F.array()), lambda c: F.try_element_at(lookup, F.concat_ws(
            "|", F.coalesce(c["system"], F.lit("")), F.coalesce(c["code"], F.lit("")))))
        return F.filter(mapped, lambda v: v.isNotNull())

    def known(self, codings: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (system, code) pairs some canonical ValueSet or ConceptMap gives a meaning (for reports)."""
        every = {k for name in valuesets() for k in self.table(name)}
        return {(s, c) for s, c in codings if _key(s, c) in every}
