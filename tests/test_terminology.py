"""Canonical terminology: loadable, valid FHIR, several codings per concept, in step with the model."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.valueset import ValueSet

from foundation.model import vocabulary as v
from foundation.terminology import (
    LOCAL_SYSTEM,
    Coding,
    ConceptMapIndex,
    build_conceptmap,
    local_codesystem,
    valueset,
    valueset_resources,
    valuesets,
)

ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
SCT = "http://snomed.info/sct"

# Canonical ValueSet -> the model vocabulary its canonical values must equal.
MODEL_VOCABULARY = {
    "site": v.SITE, "subsite": v.SUBSITE, "laterality": v.LATERALITY, "histology": v.HISTOLOGY,
    "fnclcc-grade": v.FNCLCC_GRADE, "unresectability-reason": v.UNRESECTABILITY_REASON, "ilp-level": v.ILP_LEVEL,
    "wieberdink-grade": v.WIEBERDINK_GRADE, "ctcae-grade": v.CTCAE_GRADE, "ctcae-term": v.CTCAE_TERM,
    "clavien-dindo-grade": v.CLAVIEN_DINDO_GRADE, "recist": v.RECIST, "metastasis-site": v.METASTASIS_SITE,
    "amputation-reason": v.AMPUTATION_REASON,
}


@pytest.mark.parametrize("name", sorted(valueset_resources()))
def test_every_valueset_is_valid_r4(name: str) -> None:
    ValueSet.model_validate(valueset_resources()[name])


def test_local_codesystem_is_valid_and_covers_every_local_coding() -> None:
    cs = local_codesystem()
    CodeSystem.model_validate(cs)
    defined = {c["code"] for c in cs["concept"]}
    used = {c.code for vs in valuesets().values() for cs_ in vs.codings.values() for c in cs_
            if c.system == LOCAL_SYSTEM}
    assert used <= defined, f"local codes used by ValueSets but not defined: {sorted(used - defined)}"
    assert {"wieberdink", "ilp-level", "leakage-pct", "perfusate-temp", "limb-volume", "limb-sparing"} <= defined


@pytest.mark.parametrize("name", sorted(MODEL_VOCABULARY))
def test_valueset_values_equal_the_model_vocabulary(name: str) -> None:
    assert set(valueset(name).values) == set(MODEL_VOCABULARY[name])


def test_a_concept_accepts_several_codings() -> None:
    histology = valueset("histology")
    assert {histology.lookup(ICDO3, c) for c in ("9040/3", "9041/3", "9042/3", "9043/3")} == {"synovial_sarcoma"}
    grade = valueset("fnclcc-grade")
    assert grade.lookup(SCT, "1155707008") == grade.lookup(LOCAL_SYSTEM, "fnclcc-3") == "3"


def test_unknown_codings_are_not_guessed() -> None:
    assert valueset("histology").lookup(ICDO3, "9999/3") is None
    assert valueset("histology").lookup("http://example.org/other", "8852/3") is None
    with pytest.raises(KeyError, match="no canonical ValueSet"):
        valueset("nonexistent")


def test_conceptmap_round_trip() -> None:
    local = Coding("http://hospital.example/cs", "X1", "Perfusie")
    target = valueset("procedure").primary("ilp")
    cmap = build_conceptmap("test-map", "Test", [(local, target)])
    ConceptMap.model_validate(cmap)
    index = ConceptMapIndex.from_resources([cmap])
    (translated,) = index.translate(local.system, local.code)
    assert valueset("procedure").lookup(translated.system, translated.code) == "ilp"
    assert index.translate(local.system, "X2") == ()
    with pytest.raises(ValueError, match="not a ConceptMap"):
        ConceptMapIndex.from_resources([{"resourceType": "ValueSet"}])
