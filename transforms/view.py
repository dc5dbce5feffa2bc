"""The current resources of the centres being transformed, with the canonical kind of each: the input of every
table.

A resource's kind is what its code means in the canonical ValueSets (through its centre's ConceptMaps): an
Observation of kind `bmi`, a Procedure of kind `ilp`, a Condition of kind `primary_sarcoma`. References are
reduced to the id they point at, whatever their style, and qualified by the centre (`aurora|p1`), so every join
and window of every table is right for many centres at once: one Spark plan per table, not one per centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ilp.secrets import Secret
from transforms.codes import CodeLookup
from transforms.columns import reference_id
from transforms.current import CurrentState, read_states
from transforms.pseudonym import pseudonym_column


def local_id(resource_id: Column) -> Column:
    """A resource id qualified by the row's centre: ids are only unique within a centre."""
    return F.concat(F.col("centre_id"), F.lit("|"), resource_id)


def local_reference(reference: Column) -> Column:
    """The centre-qualified id a reference points at."""
    return local_id(reference_id(reference))


@dataclass
class ResourceView:
    centres: tuple[str, ...]
    # centre_id, resource_type, kind, id, run_id, impossible (why, or null), r (parsed), subject_id, local_id, ref
    resources: DataFrame
    lookup: CodeLookup
    secret: Secret
    national_id_system: str | None
    # Pseudonyms are computed once (and cached: small).
    _patient_ids: DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, spark: SparkSession, states: list[CurrentState], lookup: CodeLookup, secret: Secret,
             national_id_system: str | None) -> ResourceView:
        """The states are stored by type and kind: a table reads just the partitions it uses."""
        rows = read_states(spark, states).select(
            "centre_id", "resource_type", "kind", "id", "run_id", "impossible", "r")
        subject = F.coalesce(F.col("r.subject.reference"), F.col("r.patient.reference"))
        rows = rows.select("*", F.when(F.col("resource_type") == "Patient", local_id(F.col("id")))
                           .otherwise(local_reference(subject)).alias("subject_id"),
                           local_id(F.col("id")).alias("local_id"),
                           F.concat_ws("/", "resource_type", "id").alias("ref"))
        return cls(tuple(s.centre_id for s in states), rows, lookup, secret, national_id_system)

    def of(self, resource_type: str, kind: str | None = None) -> DataFrame:
        """The type's resources (of one kind) that tables may read: internally impossible ones are left out."""
        rows = self.resources.where((F.col("resource_type") == resource_type) & F.col("impossible").isNull())
        return rows.where(F.col("kind") == kind) if kind else rows

    def of_types(self, *resource_types: str) -> DataFrame:
        return reduce(DataFrame.unionByName, [self.of(t) for t in resource_types])

    def release(self) -> None:
        if self._patient_ids is not None:
            self._patient_ids.unpersist()

    def patient_ids(self) -> DataFrame:
        """subject_id -> centre_id and pseudonymised patient_id (national identifier when present, else centre
        and id). The one frame of a table's joins that carries `centre_id`."""
        if self._patient_ids is None:
            self._patient_ids = self._pseudonymise_patients().cache()
        return self._patient_ids

    def _pseudonymise_patients(self) -> DataFrame:
        fallback = F.concat(F.col("centre_id"), F.lit("|Patient/"), F.col("id"))
        identity = fallback
        if self.national_id_system:
            national = F.get(F.filter("r.identifier", lambda i: i["system"] == F.lit(self.national_id_system)), 0)
            identity = F.coalesce(F.concat(national["system"], F.lit("|"), national["value"]), fallback)
        return self.of("Patient").select("subject_id", "centre_id",
                                         pseudonym_column(self.secret, identity).alias("patient_id"))

    def key(self, reference: Column) -> Column:
        """The pseudonymised key of a row derived from `reference` (`Condition/<id>`) at the row's centre."""
        return pseudonym_column(self.secret, F.concat(F.col("centre_id"), F.lit("|"), reference))

    def provenance(self, run_id: str) -> list[Column]:
        return [F.col("centre_id"), F.array_sort("source_resource_ids").alias("source_resource_ids"),
                F.lit(run_id).alias("run_id")]
