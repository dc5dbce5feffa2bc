"""`treatments` (resection, amputation, radiotherapy, systemic therapy) and `events` (relapses, death, last
contact)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ilp.model import EVENTS, TREATMENTS
from transforms.columns import date_imputed, fhir_date
from transforms.view import ResourceView

LIMB_SPARING_URL = "http://ilp-cohort.org/fhir/StructureDefinition/limb-sparing"
KINDS = ("resection", "amputation", "radiotherapy", "systemic_therapy")


def build_treatments(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    start = F.coalesce(F.col("r.performedPeriod.start"), F.col("r.performedDateTime"))
    sparing = F.get(F.filter(F.coalesce(F.col("r.extension"), F.array()),
                             lambda e: e["url"] == LIMB_SPARING_URL), 0)["valueBoolean"]
    rows = view.of("Procedure").where(F.col("kind").isin(*KINDS)).select(
        "ref", "subject_id", "kind", fhir_date(start).alias("start_date"),
        date_imputed(start).alias("start_date_imputed"),
        fhir_date(F.col("r.performedPeriod.end")).alias("end_date"), sparing.try_cast("boolean").alias("limb_sparing"),
        F.when(F.col("kind") == "amputation", lookup.first("amputation-reason", F.flatten(F.transform(
            F.coalesce(F.col("r.reasonCode"), F.array()), lambda c: c["coding"])))).alias("amputation_reason"))
    resected = rows.where("kind = 'resection'").groupBy("subject_id").agg(F.min("start_date").alias("resected_on"))
    setting = F.when(F.col("kind") == "radiotherapy", F.when(
        F.col("resected_on").isNotNull() & (F.col("resected_on") <= F.col("start_date")), "postoperative")
        .otherwise("exclusive"))
    return rows.join(resected, "subject_id", "left").join(view.patient_ids(), "subject_id").select(
        "centre_id", view.key(F.col("ref")).alias("treatment_id"), "patient_id", "kind", "start_date",
        "start_date_imputed", "end_date", "limb_sparing", "amputation_reason", setting.alias("radiotherapy_setting"),
        F.array("ref").alias("source_resource_ids"),
    ).select(*[c for c in TREATMENTS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))


def build_events(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    observed = F.coalesce(F.col("r.effectiveDateTime"), F.col("r.onsetDateTime"))
    status = lookup.values("disease-status", F.col("r.valueCodeableConcept.coding"))
    local = (view.of("Observation", "disease_status").where(F.array_contains(status, "local_recurrence"))
             .unionByName(view.of("Condition", "local_relapse"))
             .select("ref", "subject_id", F.lit("local_relapse").alias("kind"), observed.alias("when"),
                     F.lit(None).cast("string").alias("metastasis_site")))
    metastasis = view.of("Condition", "distant_metastasis").select(
        "ref", "subject_id", F.lit("distant_metastasis").alias("kind"), F.col("r.onsetDateTime").alias("when"),
        lookup.first("metastasis-site", F.flatten(F.transform(F.col("r.bodySite"), lambda s: s["coding"])))
        .alias("metastasis_site"))
    death = view.of("Patient").where(F.col("r.deceasedDateTime").isNotNull()).select(
        F.concat("ref", F.lit("#death")).alias("ref"), "subject_id", F.lit("death").alias("kind"),
        F.col("r.deceasedDateTime").alias("when"), F.lit(None).cast("string").alias("metastasis_site"))
    contact = view.of("Observation", "last_contact").select(
        "ref", "subject_id", F.lit("last_contact").alias("kind"),
        F.coalesce(F.col("r.valueDateTime"), F.col("r.effectiveDateTime")).alias("when"),
        F.lit(None).cast("string").alias("metastasis_site"))
    events = local.unionByName(metastasis).unionByName(death).unionByName(contact)
    return events.join(view.patient_ids(), "subject_id").select(
        "centre_id", view.key(F.col("ref")).alias("event_id"), "patient_id", "kind",
        fhir_date(F.col("when")).alias("event_date"), date_imputed(F.col("when")).alias("event_date_imputed"),
        "metastasis_site",
        F.array(F.regexp_replace("ref", "#.*$", "")).alias("source_resource_ids"),
    ).select(*[c for c in EVENTS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))
