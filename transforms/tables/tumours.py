"""`tumours`: the primary limb sarcoma, with site, histology, grade, size and why it was unresectable."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ilp.model import TUMOURS
from ilp.model.vocabulary import HISTOLOGY_FAMILY
from ilp.terminology import valueset
from transforms.columns import date_imputed, fhir_date, in_unit
from transforms.tables.links import linked
from transforms.view import ResourceView

HISTOLOGY_URL = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior"
LATERALITY_URL = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"


def build_tumours(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    conditions = view.of("Condition", "primary_sarcoma")
    sites = F.col("r.bodySite")
    site_codings = F.flatten(F.transform(sites, lambda s: s["coding"]))
    laterality_codings = F.flatten(F.transform(sites, lambda s: F.flatten(F.transform(
        F.filter(F.coalesce(s["extension"], F.array()), lambda e: e["url"] == LATERALITY_URL),
        lambda e: e["valueCodeableConcept"]["coding"]))))
    histology_codings = F.flatten(F.transform(
        F.filter(F.coalesce(F.col("r.extension"), F.array()), lambda e: e["url"] == HISTOLOGY_URL),
        lambda e: e["valueCodeableConcept"]["coding"]))
    histology = lookup.first("histology", histology_codings)
    family = F.create_map(*[F.lit(x) for pair in HISTOLOGY_FAMILY.items() for x in pair])
    morphology = F.create_map(*[F.lit(x) for value in HISTOLOGY_FAMILY
                                for x in (value, valueset("histology").primary(value).code)])
    tumours = conditions.select(
        F.col("local_id").alias("condition_id"), "subject_id", "ref", F.col("r.onsetDateTime").alias("onset"),
        lookup.first("site", site_codings).alias("site"), lookup.first("subsite", site_codings).alias("subsite"),
        lookup.first("laterality", laterality_codings).alias("laterality"), histology.alias("histology"),
        F.try_element_at(family, histology).alias("histology_family"),
        F.try_element_at(morphology, histology).alias("morphology_code"))
    longest = F.filter(F.coalesce(F.col("r.component"), F.array()),
                       lambda c: lookup.value("observation", c["code"]) == "tumour_longest_dimension")
    facts = (view.of("Observation")
             .where(F.col("kind").isin("tumour_size", "histologic_grade", "unresectability_reason"))
             .select("centre_id", "ref", "kind", in_unit(F.get(longest, 0)["valueQuantity"], "cm").alias("size"),
                     lookup.value("fnclcc-grade", F.col("r.valueCodeableConcept")).alias("grade"),
                     lookup.value("unresectability-reason", F.col("r.valueCodeableConcept")).alias("reason"),
                     F.col("r.focus").alias("focus")))
    values = linked(facts, "focus").withColumnRenamed("target_id", "condition_id").where(
        F.col("condition_id").isNotNull())
    per_tumour = values.groupBy("condition_id").agg(
        F.max(F.when(F.col("kind") == "tumour_size", F.col("size"))).alias("size"),
        F.max(F.when(F.col("kind") == "histologic_grade", F.col("grade"))).alias("grade"),
        F.max(F.when(F.col("kind") == "unresectability_reason", F.col("reason"))).alias("reason"),
        F.collect_set("ref").alias("fact_refs"))
    joined = tumours.join(per_tumour, "condition_id", "left").join(view.patient_ids(), "subject_id")
    return joined.select(
        "centre_id", view.key(F.col("ref")).alias("tumour_id"), "patient_id",
        fhir_date(F.col("onset")).alias("diagnosis_date"), date_imputed(F.col("onset")).alias("diagnosis_date_imputed"),
        "site", "subsite", "laterality", "histology", "histology_family", "morphology_code",
        F.col("grade").cast("int").alias("fnclcc_grade"), F.round("size", 6).alias("size_cm"),
        F.col("reason").alias("unresectability_reason"),
        F.array_union(F.array("ref"), F.coalesce("fact_refs", F.array())).alias("source_resource_ids"),
    ).select(*[c for c in TUMOURS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))


def diagnoses(view: ResourceView) -> DataFrame:
    """subject_id -> first diagnosis date, for ages at diagnosis."""
    return (view.of("Condition", "primary_sarcoma")
            .groupBy("subject_id").agg(F.min(fhir_date(F.col("r.onsetDateTime"))).alias("diagnosis_date")))
