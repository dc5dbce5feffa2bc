"""The FHIR resource types the cohort is built from: what connectors pull, transforms read and the synthetic
consortium writes. Declared once, so a new type is one edit here."""

RESOURCE_TYPES = ("Patient", "Condition", "Procedure", "Observation", "MedicationAdministration")
# Conformance resources a centre may publish next to its data: how its local codes map to standard ones. They are
# searched whole (never scoped to the cohort's patients, never part of a patient-level export).
TERMINOLOGY_TYPES = ("ConceptMap",)
