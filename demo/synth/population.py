"""A hospital's other patients: the general population a whole-hospital FHIR server or export holds beside the
ILP cohort, so that finding the cohort in it is tested as a real hospital poses it.

Most are ordinary patients: vital signs and laboratory results (LOINC), anthropometry and smoking status (codes
the ILP views know: they must still not count as used), other diagnoses (ICD-10, some the comorbidity kinds the
views know), paracetamol given on the ward, and deaths. Two kinds sit close to the cohort on purpose: patients
with an isolated limb perfusion for a melanoma (the ILP code is the centre's own, the condition is not a sarcoma)
and patients with a limb sarcoma who were resected without a perfusion. None of them is in the cohort, so a run
over the centre with them must publish exactly what it publishes without them; the centre's ground truth stays
as it is.

Codes of concepts the centre writes its own way (the ILP procedure, the sarcoma, BMI, smoking) go through the
centre's renderer, so a local-code centre's population carries its local codes; the rest is standard-coded, as a
hospital's other departments write it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from demo.synth.fhir import ICD10, NATIONAL_ID_SYSTEM, UCUM, Resource, StandardRenderer
from foundation.terminology import BASE_URL

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
VITAL_SIGNS = (("8867-4", "Heart rate", "/min", 55, 110), ("8310-5", "Body temperature", "Cel", 36.0, 39.5),
               ("9279-1", "Respiratory rate", "/min", 10, 26), ("59408-5", "Oxygen saturation", "%", 88, 100))
LABORATORY = (("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 220),
              ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.5),
              ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 8, 17),
              ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 3, 15))
DIAGNOSES = (("E11.9", "Type 2 diabetes mellitus without complications"), ("J45.909", "Unspecified asthma"),
             ("I10", "Essential (primary) hypertension"), ("M17.11", "Primary osteoarthritis, right knee"),
             ("K21.9", "Gastro-esophageal reflux disease without esophagitis"), ("N18.3", "Chronic kidney disease"))
MELANOMA = ("C43.7", "Malignant melanoma of lower limb, including hip")
MELANOMA_EVERY = 25  # every 25th: an ILP for a melanoma (in the centre's own ILP code)
RESECTED_SARCOMA_EVERY = 30  # every 30th: a limb sarcoma resected, never perfused


def population(renderer: StandardRenderer, count: int, seed: int) -> Iterator[list[Resource]]:
    """`count` general patients of the renderer's centre, each as its resources (Patient first)."""
    for index in range(count):
        yield _patient(renderer, index, random.Random(f"{seed}/{renderer.profile.centre_id}/population/{index}"))


def _patient(renderer: StandardRenderer, index: int, rng: random.Random) -> list[Resource]:
    centre = renderer.profile.centre_id
    pid = f"{centre}-population-{index:06d}"
    subject = renderer.reference("Patient", pid)
    seen = renderer.profile.cutoff - timedelta(days=rng.randrange(30, 3650))
    born = seen - timedelta(days=rng.randrange(18 * 365, 90 * 365))
    patient: Resource = renderer.base(
        "Patient", pid, gender=rng.choice(("male", "female")), birthDate=born.isoformat(),
        identifier=[{"system": f"{BASE_URL}/sid/{centre}-mrn", "value": f"GP{index:06d}"},
                    {"system": NATIONAL_ID_SYSTEM, "value": f"population-{centre}-{index:06d}"}])
    if rng.random() < 0.05:
        patient["deceasedDateTime"] = (seen + timedelta(days=rng.randrange(1, 400))).isoformat()
    out = [patient]

    def add(resource_type: str, slot: str, **fields: Any) -> None:
        out.append(renderer.base(resource_type, f"{pid}-{slot}", subject, **fields))

    def measured(slot: str, code: dict[str, Any], value: float, unit: str, day: date) -> None:
        add("Observation", slot, status="final", code=code, effectiveDateTime=day.isoformat(),
            valueQuantity={"value": round(value, 1), "unit": unit, "system": UCUM, "code": unit})

    for visit in range(rng.randrange(1, 4)):
        day = seen - timedelta(days=90 * visit)
        for loinc, name, unit, low, high in VITAL_SIGNS + LABORATORY:
            measured(f"{loinc}-{visit}", {"coding": [{"system": LOINC, "code": loinc, "display": name}]},
                     rng.uniform(low, high), unit, day)
    weight, height = rng.uniform(50, 110), rng.uniform(150, 195)
    measured("weight", renderer.concept("observation", "body_weight"), weight, "kg", seen)
    measured("height", renderer.concept("observation", "body_height"), height, "cm", seen)
    measured("bmi", renderer.concept("observation", "bmi"), weight / (height / 100) ** 2, "kg/m2", seen)
    add("Observation", "smoking", status="final", code=renderer.concept("observation", "smoking_status"),
        effectiveDateTime=seen.isoformat(),
        valueCodeableConcept=renderer.concept("smoking", rng.choice(("smoker", "never_smoker"))))
    for n, (code, display) in enumerate(rng.sample(DIAGNOSES, rng.randrange(0, 3))):
        add("Condition", f"diagnosis-{n}", clinicalStatus=_active(), onsetDateTime=seen.isoformat(),
            code={"coding": [{"system": ICD10, "code": code, "display": display}]})
    if rng.random() < 0.3:
        add("Condition", "hypertension", clinicalStatus=_active(), onsetDateTime=seen.isoformat(),
            code=renderer.concept("condition", "hypertension"))
    add("MedicationAdministration", "paracetamol", status="completed", effectiveDateTime=seen.isoformat(),
        medicationCodeableConcept={"coding": [{"system": RXNORM, "code": "161", "display": "Acetaminophen"}]},
        dosage={"dose": {"value": 1000, "unit": "mg", "system": UCUM, "code": "mg"}})
    if index % MELANOMA_EVERY == MELANOMA_EVERY - 1:
        add("Condition", "melanoma", clinicalStatus=_active(), onsetDateTime=seen.isoformat(),
            code={"coding": [{"system": ICD10, "code": MELANOMA[0], "display": MELANOMA[1]}]})
        add("Procedure", "melanoma-ilp", status="completed", code=renderer.concept("procedure", "ilp"),
            performedDateTime=(seen + timedelta(days=30)).isoformat())
    if index % RESECTED_SARCOMA_EVERY == RESECTED_SARCOMA_EVERY - 1:
        add("Condition", "sarcoma", clinicalStatus=_active(), onsetDateTime=seen.isoformat(),
            code=renderer.concept("condition", "primary_sarcoma"))
        add("Procedure", "sarcoma-resection", status="completed", code=renderer.concept("procedure", "resection"),
            performedDateTime=(seen + timedelta(days=45)).isoformat())
    return out


def _active() -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
