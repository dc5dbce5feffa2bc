"""Explicit Spark schemas for the FHIR elements the cohort needs (never inferred on the hot path).

One schema covers all five resource types: elements a type does not have are simply null. Primitives that real
servers send inconsistently (numbers as strings, booleans as strings) are read as strings and cast with
`try_cast` where used, so one odd value nulls that value, not the resource; elements not listed are ignored.
"""

from __future__ import annotations

from pyspark.sql.types import ArrayType, StringType, StructField, StructType

S = StringType()


def _struct(**fields: object) -> StructType:
    return StructType([StructField(name, kind, True) for name, kind in fields.items()])  # type: ignore[arg-type]


CODING = _struct(system=S, code=S, display=S)
CONCEPT = _struct(coding=ArrayType(CODING), text=S)
REFERENCE = _struct(reference=S)
QUANTITY = _struct(value=S, unit=S, system=S, code=S)
PERIOD = _struct(start=S, end=S)
EXTENSION = _struct(url=S, valueCoding=CODING, valueCodeableConcept=CONCEPT, valueBoolean=S, valueReference=REFERENCE,
                    valueString=S, valueDateTime=S, valueQuantity=QUANTITY, valueCode=S, valueInteger=S,
                    valueDecimal=S, valueDate=S)
CONCEPT_WITH_EXTENSIONS = _struct(coding=ArrayType(CODING), text=S, extension=ArrayType(EXTENSION))
COMPONENT = _struct(code=CONCEPT, valueQuantity=QUANTITY, valueCodeableConcept=CONCEPT, valueString=S)

RESOURCE = _struct(
    resourceType=S, id=S, meta=_struct(versionId=S, lastUpdated=S), extension=ArrayType(EXTENSION),
    subject=REFERENCE, patient=REFERENCE,
    # Patient
    identifier=ArrayType(_struct(system=S, value=S)), gender=S, birthDate=S, deceasedDateTime=S, deceasedBoolean=S,
    # Condition, Procedure, Observation
    code=CONCEPT, status=S, bodySite=ArrayType(CONCEPT_WITH_EXTENSIONS), onsetDateTime=S, recordedDate=S,
    performedDateTime=S, performedPeriod=PERIOD, reasonCode=ArrayType(CONCEPT), reasonReference=ArrayType(REFERENCE),
    complication=ArrayType(CONCEPT), effectiveDateTime=S, effectivePeriod=PERIOD, valueQuantity=QUANTITY,
    valueCodeableConcept=CONCEPT, valueDateTime=S, valueString=S, component=ArrayType(COMPONENT),
    partOf=ArrayType(REFERENCE), focus=ArrayType(REFERENCE), method=CONCEPT,
    # MedicationAdministration
    medicationCodeableConcept=CONCEPT, dosage=_struct(dose=QUANTITY),
)
