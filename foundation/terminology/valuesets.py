"""Load the canonical ValueSets and answer: which canonical value does this coding mean?

Each ValueSet groups source codings under canonical values through the `canonical-value` extension on
`compose.include.concept`, so one canonical concept accepts several codings (SNOMED, ICD-10, OMOP, local).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

BASE_URL = "http://ilp-cohort.org/fhir"
LOCAL_SYSTEM = f"{BASE_URL}/CodeSystem/ilp-local"
CANONICAL_VALUE_URL = f"{BASE_URL}/StructureDefinition/canonical-value"


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def as_fhir(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True)
class CanonicalValueSet:
    """One canonical attribute (e.g. histology): its canonical values and the codings that mean each."""

    name: str
    url: str
    codings: dict[str, tuple[Coding, ...]]  # canonical value -> codings, in the order the ValueSet lists them
    _index: dict[tuple[str, str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {(c.system, c.code): value for value, cs in self.codings.items() for c in cs}
        object.__setattr__(self, "_index", index)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self.codings)

    def lookup(self, system: str | None, code: str | None) -> str | None:
        """The canonical value a coding means, or None when the ValueSet does not contain it."""
        return self._index.get((system or "", code or ""))

    def primary(self, value: str) -> Coding:
        """The preferred coding of a canonical value: the first one the ValueSet lists."""
        return self.codings[value][0]

    @classmethod
    def from_fhir(cls, resource: dict[str, Any]) -> CanonicalValueSet:
        grouped: dict[str, list[Coding]] = {}
        for include in resource["compose"]["include"]:
            for concept in include["concept"]:
                values = [e["valueCode"] for e in concept.get("extension", []) if e["url"] == CANONICAL_VALUE_URL]
                if len(values) != 1:
                    raise ValueError(f"ValueSet {resource['id']}: concept {include['system']}|{concept['code']} "
                                     f"needs exactly one canonical-value extension")
                grouped.setdefault(values[0], []).append(
                    Coding(include["system"], concept["code"], concept.get("display")))
        name = resource["id"].removeprefix("ilp-")
        return cls(name, resource["url"], {v: tuple(cs) for v, cs in grouped.items()})


def _package_json(prefix: str) -> dict[str, dict[str, Any]]:
    folder = resources.files(__package__)
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(".json")}


@cache
def valueset_resources() -> dict[str, dict[str, Any]]:
    """The shipped ValueSet resources, by file name."""
    return _package_json("ValueSet-")


@cache
def valuesets() -> dict[str, CanonicalValueSet]:
    """The canonical ValueSets by short name (`histology`, `procedure`, `ilp-level`, ...)."""
    loaded = (CanonicalValueSet.from_fhir(r) for r in valueset_resources().values())
    return {vs.name: vs for vs in loaded}


def valueset(name: str) -> CanonicalValueSet:
    try:
        return valuesets()[name]
    except KeyError:
        raise KeyError(f"no canonical ValueSet {name!r}; shipped: {sorted(valuesets())}") from None


@cache
def local_codesystem() -> dict[str, Any]:
    """The project's CodeSystem of concepts with no standard code (Wieberdink grade, ILP level, ...)."""
    return _package_json("CodeSystem-")["CodeSystem-ilp-local.json"]
