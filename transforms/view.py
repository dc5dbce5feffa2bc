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

from ilp.model import RESOURCE_TYPES
from ilp.secrets import Secret
from transforms.codes import CodeLookup
from transforms.columns import reference_id
from transforms.current import CurrentState, read_states
from transforms.pseudonym import pseudonym_column
from transforms.views.catalogue import Catalogue, view_for
from transforms.views.definition import ViewDefinition

# What every fact row carries besides its view's columns.
FACT_KEYS = ("centre_id", "resource_type", "kind", "id", "ref", "subject_id", "local_id")
# What the reconciliation reads of every resource besides: its landing run, why it is impossible (or null), the
# extension URLs on it and its bodySite, and the codings of its own code (`code`, `medicationCodeableConcept`).
TRACE_KEYS = ("run_id", "impossible", "extension_urls", "own_codings")


def stored_name(view: ViewDefinition, column: str) -> str:
    """A view column's name in `ResourceView.read_all`, which holds every type's (names repeat across views)."""
    return f"{view.name}__{column}"


def extension_urls() -> Column:
    """The extension URLs on a resource and its bodySite, once each."""
    return F.array_distinct(F.concat(
        F.coalesce(F.col("r.extension.url"), F.array()),
        F.flatten(F.transform(F.coalesce(F.col("r.bodySite"), F.array()),
                              lambda s: F.coalesce(s["extension"]["url"], F.array())))))


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
    _read: DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, spark: SparkSession, states: list[CurrentState], lookup: CodeLookup, secret: Secret,
             national_id_system: str | None, catalogue: Catalogue | None = None) -> ResourceView:
        """The current resources of the centres, with the keys every table joins on; nothing is read yet."""
        rows = read_states(spark, states).select(
            "centre_id", "resource_type", "kind", "id", "run_id", "impossible", "r")
        subject = F.coalesce(F.col("r.subject.reference"), F.col("r.patient.reference"))
        rows = rows.select("*", F.when(F.col("resource_type") == "Patient", local_id(F.col("id")))
                           .otherwise(local_reference(subject)).alias("subject_id"),
                           local_id(F.col("id")).alias("local_id"),
                           F.concat_ws("/", "resource_type", "id").alias("ref"))
        return cls(tuple(s.centre_id for s in states), rows, lookup, secret, national_id_system,
                   catalogue or Catalogue())

    def read_all(self) -> DataFrame:
        """Every resource as FACT_KEYS, TRACE_KEYS, `identity` and the columns of its type's view (`stored_name`):
        the parsed resources are read here, once, in one pass for all types, and the narrow result is cached. Every
        table and the reconciliation read it (a pass per table, or per type, each decoding the stored resources
        again, cost more than the tables' work)."""
        if self._read is None:
            columns = []
            for resource_type in RESOURCE_TYPES:
                view, of_type = view_for(resource_type), F.col("resource_type") == resource_type
                columns += [F.when(of_type, column).alias(stored_name(view, name))
                            for name, column in self.catalogue.columns(self.resources, resource_type).items()]
            own_code = F.coalesce(F.col("r.code"), F.col("r.medicationCodeableConcept"))
            self._read = self.cached(self.resources.select(
                *FACT_KEYS, "run_id", "impossible", extension_urls().alias("extension_urls"),
                F.when(F.col("kind").isNull(), own_code["coding"]).alias("own_codings"),
                F.when(F.col("resource_type") == "Patient", self._identity()).alias("identity"), *columns))
        return self._read

    def facts(self, resource_type: str, *kinds: str) -> DataFrame:
        """The columns of the type's view (with each centre's overrides) for its resources of `kinds` (all when
        none are given), after FACT_KEYS. Internally impossible resources are left out."""
        view = view_for(resource_type)
        rows = self.read_all().where((F.col("resource_type") == resource_type) & F.col("impossible").isNull())
        if kinds:
            rows = rows.where(F.col("kind").isin(*kinds))
        return rows.select(*FACT_KEYS, *[F.col(stored_name(view, n)).alias(n) for n in view.columns()])

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

    def __enter__(self) -> ResourceView:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        """Drop what the view cached (`with ResourceView.load(...) as view:` does it however the block ends)."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        self._read = None
        self._patient_ids = None

    def cached(self, frame: DataFrame) -> DataFrame:
        """`frame`, cached until `release`: for rows read more than once (a link's candidates: the table's write
        computes them, the quarantine's reasons reuse them; the reconciliation's narrow read and labels)."""
        self._cached.append(frame.cache())
        return self._cached[-1]

    def patient_ids(self) -> DataFrame:
        """subject_id -> centre_id and pseudonymised patient_id (national identifier when present, else centre
        and id). The one frame of a table's joins that carries `centre_id`."""
        if self._patient_ids is None:
            self._patient_ids = self.cached(self._pseudonymise_patients())
        return self._patient_ids

    def _identity(self) -> Column:
        """What a patient's pseudonym is computed from: the national identifier when present, else centre and
        id."""
        fallback = F.concat(F.col("centre_id"), F.lit("|Patient/"), F.col("id"))
        if not self.national_id_system:
            return fallback
        national = F.get(F.filter("r.identifier", lambda i: i["system"] == F.lit(self.national_id_system)), 0)
        return F.coalesce(F.concat(national["system"], F.lit("|"), national["value"]), fallback)

    def _pseudonymise_patients(self) -> DataFrame:
        return self.read_all().where((F.col("resource_type") == "Patient") & F.col("impossible").isNull()).select(
            "subject_id", "centre_id", pseudonym_column(self.secret, F.col("identity")).alias("patient_id"))

    def key(self, reference: Column) -> Column:
        """The pseudonymised key of a row derived from `reference` (`Condition/<id>`) at the row's centre."""
        return pseudonym_column(self.secret, F.concat(F.col("centre_id"), F.lit("|"), reference))

    def provenance(self, run_id: str) -> list[Column]:
        return [F.col("centre_id"), F.array_sort("source_resource_ids").alias("source_resource_ids"),
                F.lit(run_id).alias("run_id")]
