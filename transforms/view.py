"""The current resources of the centres being transformed, with the canonical kind of each: the input of every
table.

A resource's kind is what its code means in the canonical ValueSets (through its centre's ConceptMaps): an
Observation of kind `bmi`, a Procedure of kind `ilp`, a Condition of kind `primary_sarcoma`. References are
reduced to the id they point at, whatever their style, and qualified by the centre (`aurora|p1`), so every join
and window of every table is right for many centres at once: one Spark plan per table, not one per centre.
Both, and the columns of each type's view, were computed when the resource was merged (`transforms.facts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from foundation.cohort import REFERENCE_STUDY, CohortDefinition
from foundation.model import RESOURCE_TYPES
from foundation.secrets import Secret
from transforms.codes import CodeLookup
from transforms.current import CurrentState
from transforms.facts import FACT_KEYS, TRACE_KEYS, ResourceFacts, stored_name
from transforms.pseudonym import Linkage, patient_pseudonym, pseudonym_column
from transforms.scope import kept_subjects, mark, members
from transforms.views.catalogue import Catalogue, view_for


@dataclass
class ResourceView:
    centres: tuple[str, ...]
    # The centres' current resources in the cohort's scope (`transforms.scope`): keys, json (as landed), their
    # facts.
    resources: DataFrame
    # Every current resource, in scope or not, with `in_scope` (`transforms.scope.mark`): for the counts.
    marked: DataFrame
    lookup: CodeLookup
    secret: Secret
    stored_facts: ResourceFacts  # what the facts were merged under (views, overrides, national id system)
    members: DataFrame  # subject_id of the cohort's patients (`transforms.scope.members`)
    linkage: Linkage | None = None  # where the consortium opted in to one pseudonym per person
    # Pseudonyms are computed once (and cached: small).
    _patient_ids: DataFrame | None = field(default=None, repr=False)
    # (centre_id, ref, reason): resources a table read but could not use, and what would make them usable.
    _unused: list[DataFrame] = field(default_factory=list, repr=False)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, spark: SparkSession, state: CurrentState, lookup: CodeLookup, secret: Secret,
             facts: ResourceFacts, cohort: CohortDefinition = REFERENCE_STUDY,
             linkage: Linkage | None = None) -> ResourceView:
        """The current resources of the state's centres that the cohort definition keeps in scope, as merged under
        `facts`; nothing is read yet."""
        everything = state.read(spark, facts)
        chosen = members(everything, cohort).cache()  # small: the cohort's patients
        kept = kept_subjects(everything, chosen).cache()  # and orphans' subjects: read by every table
        marked = mark(everything, kept)
        return cls(state.centre_ids, marked.where("in_scope").drop("in_scope"), marked, lookup, secret, facts,
                   chosen, linkage, _cached=[chosen, kept])

    def keep_in_scope_in_memory(self) -> None:
        """Cache the resources in scope, for a view where most resources are out of scope (a whole hospital's
        export): every table and the reconciliation then read the cohort's few rows instead of scanning every
        stored resource again. Where most are in scope, scans of the few columns each table needs cost less than
        caching every column of every resource (measured at 20,000 patients), so nothing is cached."""
        self.resources = self.cached(self.resources)

    def scope_counts(self) -> dict[str, dict[tuple[str, bool], int]]:
        """Per centre, (resource type, in scope) -> current resources: one job."""
        counts: dict[str, dict[tuple[str, bool], int]] = {c: {} for c in self.centres}
        for row in self.marked.groupBy("centre_id", "resource_type", "in_scope").count().collect():
            counts.setdefault(row["centre_id"], {})[(row["resource_type"], row["in_scope"])] = row["count"]
        return counts

    def read_all(self) -> DataFrame:
        """Every resource as FACT_KEYS, TRACE_KEYS, `identity` and the columns of its type's view (`stored_name`):
        the facts stored at merge. Not cached: each table's scan reads only the flat columns it selects, which
        cost less than caching every column of every resource once."""
        views = [stored_name(view_for(t), n) for t in RESOURCE_TYPES for n in view_for(t).columns()]
        return self.resources.select(*FACT_KEYS, *TRACE_KEYS, "identity", *views)

    @property
    def catalogue(self) -> Catalogue:
        return self.stored_facts.catalogue

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
        self._patient_ids = None

    def cached(self, frame: DataFrame) -> DataFrame:
        """`frame`, cached until `release`: for rows read more than once (a link's candidates: the table's write
        computes them, the quarantine's reasons reuse them)."""
        self._cached.append(frame.cache())
        return self._cached[-1]

    def patient_ids(self) -> DataFrame:
        """subject_id -> centre_id and pseudonymised patient_id (`transforms.pseudonym.patient_pseudonym`). The
        one frame of a table's joins that carries `centre_id`."""
        if self._patient_ids is None:
            self._patient_ids = self.cached(self._pseudonymise_patients())
        return self._patient_ids

    def _pseudonymise_patients(self) -> DataFrame:
        return self.read_all().where((F.col("resource_type") == "Patient") & F.col("impossible").isNull()).select(
            "subject_id", "centre_id",
            patient_pseudonym(self.secret, self.linkage, F.col("centre_id"), F.col("identity")).alias("patient_id"))

    def key(self, reference: Column) -> Column:
        """The pseudonymised key of a row derived from `reference` (`Condition/<id>`) at the row's centre."""
        return pseudonym_column(self.secret, F.concat(F.col("centre_id"), F.lit("|"), reference))

    def provenance(self, run_id: str) -> list[Column]:
        return [F.col("centre_id"), F.array_sort("source_resource_ids").alias("source_resource_ids"),
                F.lit(run_id).alias("run_id")]
