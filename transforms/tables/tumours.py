"""`tumours`: the primary limb sarcoma, with site, histology, grade, size and why it was unresectable."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from foundation.model import TUMOURS
from foundation.model.vocabulary import HISTOLOGY_FAMILY
from foundation.terminology import valueset
from transforms.columns import date_imputed, fhir_date, in_unit
from transforms.tables.links import linked
from transforms.view import ResourceView

# The Observations about a tumour.
FACTS = ("tumour_size", "histologic_grade", "unresectability_reason")


def build_tumours(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    family = F.create_map(*[F.lit(x) for pair in HISTOLOGY_FAMILY.items() for x in pair])
    morphology = F.create_map(*[F.lit(x) for value in HISTOLOGY_FAMILY
                                for x in (value, valueset("histology").primary(value).code)])
    histology = lookup.first("histology", F.col("histology"))
    tumours = view.facts("Condition", "primary_sarcoma").select(
        F.col("local_id").alias("condition_id"), "subject_id", "ref", "onset",
        lookup.first("site", F.col("body_site")).alias("site"), lookup.first("subsite", F.col("body_site"))
        .alias("subsite"), lookup.first("laterality", F.col("laterality")).alias("laterality"),
        histology.alias("histology"), F.try_element_at(family, histology).alias("histology_family"),
        F.try_element_at(morphology, histology).alias("morphology_code"))
    longest = F.filter(F.col("components"),
                       lambda c: lookup.value("observation", c["code"]) == "tumour_longest_dimension")
    size = F.coalesce(in_unit(F.get(longest, 0)["valueQuantity"], "cm"),
                      F.when(F.col("kind") == "tumour_size", in_unit(F.col("value_quantity"), "cm")))
    facts = view.facts("Observation", *FACTS).select(
        "centre_id", "ref", "kind", "subject_id", size.alias("size"),
        lookup.first("fnclcc-grade", F.col("value_codings")).alias("grade"),
        lookup.first("unresectability-reason", F.col("value_codings")).alias("reason"), "focus")
    values = _link_to_tumours(view, facts, tumours.select("condition_id", "subject_id"))
    per_tumour = values.groupBy("condition_id").agg(
        F.max(F.when(F.col("kind") == "tumour_size", F.col("size"))).alias("size"),
        F.max(F.when(F.col("kind") == "histologic_grade", F.col("grade"))).alias("grade"),
        F.max(F.when(F.col("kind") == "unresectability_reason", F.col("reason"))).alias("reason"),
        F.collect_set("ref").alias("fact_refs"),
        F.array_sort(F.collect_set(F.when(F.col("linked_by") == "subject", F.col("ref")))).alias("by_subject"))
    joined = tumours.join(per_tumour, "condition_id", "left").join(view.patient_ids(), "subject_id")
    return joined.select(
        "centre_id", view.key(F.col("ref")).alias("tumour_id"), "patient_id",
        fhir_date(F.col("onset")).alias("diagnosis_date"), date_imputed(F.col("onset")).alias("diagnosis_date_imputed"),
        "site", "subsite", "laterality", "histology", "histology_family", "morphology_code",
        F.col("grade").cast("int").alias("fnclcc_grade"), F.round("size", 6).alias("size_cm"),
        F.col("reason").alias("unresectability_reason"),
        F.coalesce("by_subject", F.array().cast("array<string>")).alias("facts_linked_by_subject"),
        F.array_union(F.array("ref"), F.coalesce("fact_refs", F.array())).alias("source_resource_ids"),
    ).select(*[c for c in TUMOURS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))


def _link_to_tumours(view: ResourceView, facts: DataFrame, tumours: DataFrame) -> DataFrame:
    """Each fact with the tumour it is about (`condition_id`) and how that was decided (`linked_by`): its
    `focus`, else the patient's only primary tumour. Facts that neither links are noted with what is missing.
    One join, with each patient's tumours as a list: the candidates are cached, since the quarantine's reasons
    read them again."""
    per_patient = tumours.groupBy("subject_id").agg(F.collect_list("condition_id").alias("tumours"))
    rows = linked(facts, "focus").join(per_patient, "subject_id", "left")
    ids = F.coalesce(F.col("tumours"), F.array().cast("array<string>"))
    focused = F.coalesce(F.array_contains(ids, F.col("target_id")), F.lit(False))
    alone = F.col("target_id").isNull() & (F.size(ids) == 1)
    rows = view.cached(rows.select(
        "*", F.when(focused, F.col("target_id")).when(alone, F.get(ids, 0)).alias("condition_id"),
        F.when(focused, "focus").when(alone, "subject").alias("linked_by")))
    wrong_focus = F.concat(F.lit("not linked to a tumour: its focus points at "),
                           F.regexp_replace("target_id", r"^[^|]*\|", ""),
                           F.lit(", which is not a primary tumour Condition of its patient: set focus to the tumour's "
                                 "Condition"))
    no_focus = F.concat(F.lit("not linked to a tumour: it has no focus, and its patient has "),
                        F.size(ids).cast("string"), F.lit(
        " primary tumour Conditions (linking by subject needs exactly one): set Observation.focus to the tumour's "
        "Condition, or override the observation view's `focus` column"))
    reason = F.when(F.col("target_id").isNotNull(), wrong_focus).otherwise(no_focus)
    view.note_unused(rows.where(F.col("condition_id").isNull()).select("centre_id", "ref", reason.alias("reason")))
    return rows.where(F.col("condition_id").isNotNull())


def diagnoses(view: ResourceView) -> DataFrame:
    """subject_id -> first diagnosis date, for ages at diagnosis."""
    return (view.facts("Condition", "primary_sarcoma")
            .groupBy("subject_id").agg(F.min(fhir_date(F.col("onset"))).alias("diagnosis_date")))
