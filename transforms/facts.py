"""What the merge stores of each resource beside it: the flat facts every table and the reconciliation read.

The keys every table joins on (its centre-qualified id, the patient it is about, its `Type/id` reference), the
traces the reconciliation reads (the extension URLs on it, the codings of its own code when they mean nothing),
what its pseudonym is computed from, and the columns of its type's view with the centre's overrides.

Why at merge time: a resource version is parsed once, when it is merged, and every transform after that reads
these facts as flat Parquet columns (no nested decode of the parsed resource, no view evaluation). Computing the
views over every parsed resource at each transform, and caching the result, cost more than several tables.
A state therefore records what its facts were computed under (`fingerprint`: the views, the centre's overrides,
the national identifier system), and a change rebuilds it, as a change of ConceptMaps does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from foundation.model import RESOURCE_TYPES
from transforms.columns import reference_id
from transforms.schema import RESOURCE
from transforms.views.catalogue import DEFAULTS, Catalogue, view_for
from transforms.views.definition import ViewDefinition

# What every fact row carries besides its view's columns.
FACT_KEYS = ("centre_id", "resource_type", "kind", "id", "ref", "subject_id", "local_id")
# What the reconciliation reads of every resource besides: its landing run, why it is impossible (or null), the
# extension URLs on it and its bodySite, and the codings of its own code (`code`, `medicationCodeableConcept`).
TRACE_KEYS = ("run_id", "impossible", "extension_urls", "own_codings")
# What the facts are computed from (`r` the parsed resource, `kind` its canonical kind).
SOURCE = f"centre_id string, resource_type string, kind string, id string, r {RESOURCE.simpleString()}"


def stored_name(view: ViewDefinition, column: str) -> str:
    """A view column's stored name (one namespace for every type's view: names repeat across views)."""
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


def _views_digest() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(DEFAULTS.glob("*.json")))).hexdigest()


@dataclass
class ResourceFacts:
    """The facts of each resource, under the views with every centre's overrides."""

    catalogue: Catalogue = field(default_factory=Catalogue)
    national_id_system: str | None = None  # identifier system that makes a patient the same at every centre
    _compiled: tuple[list[Column], StructType] | None = field(default=None, repr=False)

    def columns(self, spark: SparkSession) -> list[Column]:
        """The facts as expressions over rows of `SOURCE`'s columns, named as they are stored."""
        return self._compile(spark)[0]

    def schema(self, spark: SparkSession) -> StructType:
        """The stored facts' names and types (the same at every centre: view columns are cast to their type)."""
        return self._compile(spark)[1]

    def _compile(self, spark: SparkSession) -> tuple[list[Column], StructType]:
        """Compiled once (the views' expressions take a second or two to build on the driver): the expressions
        name their columns, so they apply to any rows with `SOURCE`'s columns."""
        if self._compiled is None:
            source = spark.createDataFrame([], SOURCE)
            columns = self._columns(source)
            self._compiled = columns, source.select(*columns).schema
        return self._compiled

    def _columns(self, rows: DataFrame) -> list[Column]:
        subject = F.coalesce(F.col("r.subject.reference"), F.col("r.patient.reference"))
        patient = F.col("resource_type") == "Patient"
        own_code = F.coalesce(F.col("r.code"), F.col("r.medicationCodeableConcept"))
        views = []
        for resource_type in RESOURCE_TYPES:
            view, of_type = view_for(resource_type), F.col("resource_type") == resource_type
            views += [F.when(of_type, column).alias(stored_name(view, name))
                      for name, column in self.catalogue.columns(rows, resource_type).items()]
        return [F.concat_ws("/", "resource_type", "id").alias("ref"),
                F.when(patient, local_id(F.col("id"))).otherwise(local_reference(subject)).alias("subject_id"),
                local_id(F.col("id")).alias("local_id"),
                extension_urls().alias("extension_urls"),
                F.when(F.col("kind").isNull(), own_code["coding"]).alias("own_codings"),
                F.when(patient, self._identity()).alias("identity"), *views]

    def fingerprint(self, centre_id: str) -> str:
        """Changes whenever a fact of the centre's resources would: the shipped views, its overrides, the national
        identifier system."""
        basis = {"views": _views_digest(), "overrides": self.catalogue.overrides.get(centre_id, {}),
                 "national_id_system": self.national_id_system}
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def _identity(self) -> Column:
        """What a patient's pseudonym is computed from: the national identifier when present, else centre and
        id."""
        fallback = F.concat(F.col("centre_id"), F.lit("|Patient/"), F.col("id"))
        if not self.national_id_system:
            return fallback
        national = F.get(F.filter("r.identifier", lambda i: i["system"] == F.lit(self.national_id_system)), 0)
        return F.coalesce(F.concat(national["system"], F.lit("|"), national["value"]), fallback)
