"""Harmonise codings: the canonical value a CodeableConcept means, through the canonical ValueSets and each
centre's ConceptMaps (local code -> standard coding -> canonical value), as Spark map lookups.

The lookup tables are literals in the plan (a few hundred entries), so nothing depends on driver-side state and
the same plan runs on a cluster. One plan serves every centre: a centre's local codes are looked up under its
`centre_id`, so the rows being harmonised must carry that column. The literal maps are built once per ValueSet
and reused by every expression (building them is hundreds of calls into the JVM).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

from foundation.terminology import ConceptMapIndex, valueset, valuesets

# The ValueSet that says what a resource of each type is (its `kind`), and the element coding it.
KIND_VALUESETS = {"Observation": ("observation", "code"), "Condition": ("condition", "code"),
                  "Procedure": ("procedure", "code"), "MedicationAdministration": ("medication",
                                                                                  "medicationCodeableConcept")}


def _key(system: str | None, code: str | None) -> str:
    return f"{system or ''}|{code or ''}"


def _literal_map(table: Mapping[str, str]) -> Column:
    if not table:
        return F.create_map().cast("map<string,string>")
    return F.create_map(*[F.lit(x) for pair in table.items() for x in pair])


def _meaning(maps: tuple[Column, Column], coding: Column) -> Column:
    """A coding's value in a (canonical, centre-local) pair of lookup maps, or null."""
    canonical, local = maps
    key = F.concat_ws("|", F.coalesce(coding["system"], F.lit("")), F.coalesce(coding["code"], F.lit("")))
    return F.coalesce(F.try_element_at(canonical, key),
                      F.try_element_at(local, F.concat_ws("|", F.col("centre_id"), key)))


class CodeLookup:
    """Canonical values of codings at every centre: the ValueSets, plus whatever each centre's ConceptMaps
    translate (a standard code always keeps its standard meaning)."""

    def __init__(self, conceptmaps: Mapping[str, ConceptMapIndex] | None = None) -> None:
        self.conceptmaps = dict(conceptmaps or {})
        self._maps: dict[str, tuple[Column, Column]] = {}

    def canonical_table(self, valueset_name: str) -> dict[str, str]:
        """`system|code` -> canonical value, from the ValueSet alone."""
        canonical = valueset(valueset_name)
        return {_key(c.system, c.code): value for value, codings in canonical.codings.items() for c in codings}

    def local_table(self, valueset_name: str) -> dict[str, str]:
        """`centre|system|code` -> canonical value, for the local codes each centre's ConceptMaps translate."""
        canonical = valueset(valueset_name)
        table = {}
        for centre_id, index in self.conceptmaps.items():
            for (system, code), targets in index.targets.items():
                value = next((canonical.lookup(t.system, t.code) for t in targets
                              if canonical.lookup(t.system, t.code)), None)
                if value is not None:
                    table[f"{centre_id}|{_key(system, code)}"] = value
        return table

    def _lookup_maps(self, valueset_name: str) -> tuple[Column, Column]:
        if valueset_name not in self._maps:
            self._maps[valueset_name] = (_literal_map(self.canonical_table(valueset_name)),
                                         _literal_map(self.local_table(valueset_name)))
        return self._maps[valueset_name]

    def fingerprint(self, centre_id: str) -> str:
        """Changes whenever what a code of the centre means changes (a ValueSet or one of its ConceptMaps)."""
        tables = {name: (self.canonical_table(name), sorted(
            (k, v) for k, v in self.local_table(name).items() if k.startswith(f"{centre_id}|")))
            for name in sorted(valuesets())}
        return hashlib.sha256(json.dumps(tables, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def kind(self) -> Column:
        """What a resource (columns `resource_type`, `r`, `centre_id`) is: the canonical value of its code in its
        type's ValueSet (`bmi`, `ilp`, `primary_sarcoma`), or null."""
        kind = F.lit(None).cast("string")
        for resource_type, (valueset_name, element) in KIND_VALUESETS.items():
            kind = F.when(F.col("resource_type") == resource_type,
                          self.value(valueset_name, F.col(f"r.{element}"))).otherwise(kind)
        return kind

    def value(self, valueset_name: str, concept: Column) -> Column:
        """The canonical value of the first coding of `concept` that means something in the ValueSet."""
        return self.first(valueset_name, concept["coding"])

    def first(self, valueset_name: str, codings: Column) -> Column:
        """The canonical value of the first of `codings` (an array of Coding) that means something."""
        return F.get(self.values(valueset_name, codings), 0)

    def values(self, valueset_name: str, codings: Column) -> Column:
        """The canonical values of every one of `codings` that means something in the ValueSet, in order."""
        maps = self._lookup_maps(valueset_name)
        return F.filter(F.transform(F.coalesce(codings, F.array()), lambda c: _meaning(maps, c)),
                        lambda v: v.isNotNull())

    def meaningful_keys(self, centre_id: str) -> set[str]:
        """`system|code` of every coding that means something at the centre: in a canonical ValueSet or through
        one of its ConceptMaps."""
        keys = set()
        for name in valuesets():
            keys |= set(self.canonical_table(name))
            keys |= {k.removeprefix(f"{centre_id}|") for k in self.local_table(name) if k.startswith(f"{centre_id}|")}
        return keys
