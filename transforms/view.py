"""One centre's current resources, parsed once, with the canonical kind of each: the input of every table.

A resource's kind is what its code means in the canonical ValueSets (through the centre's ConceptMaps): an
Observation of kind `bmi`, a Procedure of kind `ilp`, a Condition of kind `primary_sarcoma`. References are
reduced to the id they point at, whatever their style.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ilp.secrets import Secret
from transforms.codes import CodeLookup
from transforms.columns import reference_id
from transforms.current import CurrentState
from transforms.landed import parsed
from transforms.pseudonym import pseudonym_column

KIND_VALUESETS = {"Observation": "observation", "Condition": "condition", "Procedure": "procedure",
                  "MedicationAdministration": "medication"}


@dataclass
class CentreView:
    centre_id: str
    resources: DataFrame  # resource_type, id, run_id, r (parsed), kind, subject_id, ref
    lookup: CodeLookup
    secret: Secret
    national_id_system: str | None
    # Each type cached apart, and the pseudonyms once: tables scan only the types they read (a scan of the
    # parsed structs is most of a table's cost).
    _by_type: dict[str, DataFrame] = field(default_factory=dict, repr=False)
    _patient_ids: DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, spark: SparkSession, state: CurrentState, lookup: CodeLookup, secret: Secret,
             national_id_system: str | None) -> CentreView:
        rows = state.read(spark).select("resource_type", "id", "run_id", parsed().alias("r"))
        kind = F.lit(None).cast("string")
        for resource_type, valueset_name in KIND_VALUESETS.items():
            code = F.col("r.medicationCodeableConcept") if resource_type == "MedicationAdministration" \
                else F.col("r.code")
            kind = F.when(F.col("resource_type") == resource_type, lookup.value(valueset_name, code)).otherwise(kind)
        subject = F.coalesce(F.col("r.subject.reference"), F.col("r.patient.reference"))
        rows = rows.select("*", kind.alias("kind"),
                           F.when(F.col("resource_type") == "Patient", F.col("id"))
                           .otherwise(reference_id(subject)).alias("subject_id"),
                           F.concat_ws("/", "resource_type", "id").alias("ref"))
        return cls(state.centre_id, rows, lookup, secret, national_id_system)

    def of(self, resource_type: str, kind: str | None = None) -> DataFrame:
        if resource_type not in self._by_type:
            self._by_type[resource_type] = self.resources.where(F.col("resource_type") == resource_type).cache()
        rows = self._by_type[resource_type]
        return rows.where(F.col("kind") == kind) if kind else rows

    def of_types(self, *resource_types: str) -> DataFrame:
        rows = self.of(resource_types[0])
        for resource_type in resource_types[1:]:
            rows = rows.unionByName(self.of(resource_type))
        return rows

    def release(self) -> None:
        for rows in self._by_type.values():
            rows.unpersist()
        if self._patient_ids is not None:
            self._patient_ids.unpersist()

    def patient_ids(self) -> DataFrame:
        """subject_id -> pseudonymised patient_id (national identifier when present, else centre and id)."""
        if self._patient_ids is None:
            self._patient_ids = self._pseudonymise_patients().cache()
        return self._patient_ids

    def _pseudonymise_patients(self) -> DataFrame:
        fallback = F.concat(F.lit(f"{self.centre_id}|Patient/"), F.col("id"))
        identity = fallback
        if self.national_id_system:
            national = F.get(F.filter("r.identifier", lambda i: i["system"] == F.lit(self.national_id_system)), 0)
            identity = F.coalesce(F.concat(national["system"], F.lit("|"), national["value"]), fallback)
        return self.of("Patient").select("subject_id", pseudonym_column(self.secret, identity).alias("patient_id"))

    def key(self, reference: Column) -> Column:
        """The pseudonymised key of a row derived from `reference` (`Condition/<id>`)."""
        return pseudonym_column(self.secret, F.concat(F.lit(f"{self.centre_id}|"), reference))

    def provenance(self, run_id: str) -> list[Column]:
        return [F.lit(self.centre_id).alias("centre_id"), F.array_sort("source_resource_ids")
                .alias("source_resource_ids"), F.lit(run_id).alias("run_id")]
