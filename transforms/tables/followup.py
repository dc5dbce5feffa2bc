"""`treatments` (resection, amputation, radiotherapy, systemic therapy) and `events` (relapses, death, last
contact)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from foundation.model import EVENTS, TREATMENTS
from transforms.columns import date_imputed, fhir_date
from transforms.view import ResourceView

KINDS = ("resection", "amputation", "radiotherapy", "systemic_therapy")


def build_treatments(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    start = F.col("performed_start")
    rows = view.facts("Procedure", *KINDS).select(
        "ref", "subject_id", "kind", fhir_date(start).alias("start_date"),
        date_imputed(start).alias("start_date_imputed"),
        fhir_date(F.col("performed_end")).alias("end_date"), "limb_sparing",
        F.when(F.col("kind") == "amputation", lookup.first("amputation-reason", F.col("reason_codings")))
        .alias("amputation_reason"))
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
    status = lookup.values("disease-status", F.col("disease_status"))
    no_site = F.lit(None).cast("string").alias("metastasis_site")
    statuses = view.facts("Observation", "disease_status").select(
        "centre_id", "ref", "subject_id", "effective", status.alias("status"))
    relapse = F.array_contains("status", "local_recurrence")
    view.note_unused(statuses.where(~relapse).select("centre_id", "ref", F.concat(
        F.lit("disease status "), F.coalesce(F.nullif(F.array_join("status", ", "), F.lit("")), F.lit("uncoded")),
        F.lit(" is not a local recurrence in what the observation view's disease_status column reads (the cohort "
              "records local relapses): if the centre codes the kind of progression elsewhere (method, a "
              "component), override that column")).alias("reason")))
    relapse_observations = statuses.where(relapse).select("ref", "subject_id", F.col("effective").alias("when"))
    relapse_conditions = view.facts("Condition", "local_relapse").select("ref", "subject_id",
                                                                        F.col("onset").alias("when"))
    local = relapse_observations.unionByName(relapse_conditions).select(
        "ref", "subject_id", F.lit("local_relapse").alias("kind"), "when", no_site)
    metastasis = view.facts("Condition", "distant_metastasis").select(
        "ref", "subject_id", F.lit("distant_metastasis").alias("kind"), F.col("onset").alias("when"),
        lookup.first("metastasis-site", F.col("body_site")).alias("metastasis_site"))
    death = view.facts("Patient").where(F.col("deceased_date").isNotNull()).select(
        F.concat("ref", F.lit("#death")).alias("ref"), "subject_id", F.lit("death").alias("kind"),
        F.col("deceased_date").alias("when"), no_site)
    contact = view.facts("Observation", "last_contact").select(
        "ref", "subject_id", F.lit("last_contact").alias("kind"), F.coalesce("value_date", "effective").alias("when"),
        no_site)
    events = local.unionByName(metastasis).unionByName(death).unionByName(contact)
    return events.join(view.patient_ids(), "subject_id").select(
        "centre_id", view.key(F.col("ref")).alias("event_id"), "patient_id", "kind",
        fhir_date(F.col("when")).alias("event_date"), date_imputed(F.col("when")).alias("event_date_imputed"),
        "metastasis_site",
        F.array(F.regexp_replace("ref", "#.*$", "")).alias("source_resource_ids"),
    ).select(*[c for c in EVENTS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))
