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
from transforms.views.catalogue import Catalogue

# What every fact row carries besides its view's columns.
FACT_KEYS = ("centre_id", "resource_type", "kind", "id", "ref", "subject_id", "local_id")


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
    catalogue: Catalogue = field(default_factory=Catalogue)
    # Pseudonyms are computed once (and cached: small).
    _patient_ids: DataFrame | None = field(default=None, repr=False)
    # (centre_id, ref, reason): resources a table read but could not use, and what would make them usable.
    _unused: list[DataFrame] = field(default_factory=list, repr=False)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, spark: SparkSession, states: list[CurrentState], lookup: CodeLookup, secret: Secret,
             national_id_system: str | None, catalogue: Catalogue | None = None) -> ResourceView:
        """The states are stored by type and kind: a table reads just the partitions it uses."""
        rows = read_states(spark, states).select(
            "centre_id", "resource_type", "kind", "id", "run_id", "impossible", "r")
        subject = F.coalesce(F.col("r.subject.reference"), F.col("r.patient.reference"))
        rows = rows.select("*", F.when(F.col("resource_type") == "Patient", local_id(F.col("id")))
                           .otherwise(local_reference(subject)).alias("subject_id"),
                           local_id(F.col("id")).alias("local_id"),
                           F.concat_ws("/", "resource_type", "id").alias("ref"))
        return cls(tuple(s.centre_id for s in states), rows, lookup, secret, national_id_system,
                   catalogue or Catalogue())

    def of(self, resource_type: str, kind: str | None = None) -> DataFrame:
        """The type's resources (of one kind) that tables may read: internally impossible ones are left out."""
        rows = self.resources.where((F.col("resource_type") == resource_type) & F.col("impossible").isNull())
        return rows.where(F.col("kind") == kind) if kind else rows

    def facts(self, resource_type: str, *kinds: str) -> DataFrame:
        """The columns of the type's view (with each centre's overrides) for its resources of `kinds` (all when
        none are given), after FACT_KEYS."""
        rows = self.of(resource_type)
        if kinds:
            rows = rows.where(F.col("kind").isin(*kinds))
        return self.catalogue.select(rows, resource_type, FACT_KEYS)

    def note_unused(self, rows: DataFrame) -> None:
        """Record resources (centre_id, ref, reason) a table read but could not use (an ambiguous link, a value
        that is not what the table needs): if nothing else uses them, their quarantine gives this reason, which
        says what is missing and how to supply it, instead of a generic one."""
        self._unused.append(rows.select("centre_id", "ref", "reason"))

    def unused_reasons(self) -> DataFrame | None:
        """(centre_id, ref, unused_reason) of the resources noted."""
        if not self._unused:
            return None
        return reduce(DataFrame.unionByName, self._unused).groupBy("centre_id", "ref").agg(
            F.min("reason").alias("unused_reason"))

    def release(self) -> None:
        if self._patient_ids is not None:
            self._patient_ids.unpersist()
        for frame in self._cached:
            frame.unpersist()

    def cached(self, frame: DataFrame) -> DataFrame:
        """`frame`, cached until `release`: for rows a table and the reconciliation both read (a link's
        candidates: the table's write computes them, the quarantine's reasons reuse them)."""
        self._cached.append(frame.cache())
        return self._cached[-1]

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
