"""`perfusions`: each ILP with its drugs, temperature, duration and leakage, gathered through `partOf`."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from foundation.model import PERFUSIONS
from transforms.columns import date_imputed, fhir_date, in_unit
from transforms.schema import QUANTITY
from transforms.tables.links import ilp_procedures, linked
from transforms.view import ResourceView

# What a perfusion row is built from (toxicities and responses linked to the ILP are rows of their own tables).
PARTS = ("tnf", "melphalan", "limb_volume", "perfusate_temperature", "perfusion_duration", "leakage")


def build_perfusions(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    procedures = view.facts("Procedure", "ilp")
    minutes = (F.unix_timestamp(F.try_to_timestamp(F.col("performed_end"))) -
               F.unix_timestamp(F.try_to_timestamp(F.col("performed_start")))) / 60
    base = procedures.select(
        F.col("local_id").alias("target_id"), "ref",
        date_imputed(F.col("performed_start")).alias("perfusion_date_imputed"),
        lookup.first("site", F.col("body_site")).alias("site"),
        lookup.first("ilp-level", F.col("ilp_level")).alias("ilp_level"),
        F.when(F.col("performed_end").isNotNull(), minutes).alias("period_minutes"),
        F.concat(F.lit("Condition/"), F.col("tumour")).alias("tumour_ref"))
    ilps = view.cached(ilp_procedures(view).select("target_id", "subject_id", "perfusion_date", "perfusion_number"))
    drugs = view.facts("MedicationAdministration", *PARTS).select(
        "centre_id", "kind", "ref", "subject_id", "effective", "dose", F.lit(None).cast(QUANTITY).alias("quantity"),
        "part_of")
    measurements = view.facts("Observation", *PARTS).select(
        "centre_id", "kind", "ref", "subject_id", "effective", F.lit(None).cast(QUANTITY).alias("dose"),
        F.col("value_quantity").alias("quantity"), "part_of")
    parts = _link_to_ilps(view, drugs.unionByName(measurements), ilps)
    dose = F.col("dose")
    unit = F.coalesce(dose["code"], dose["unit"])
    quantity = F.col("quantity")
    per_procedure = parts.groupBy("target_id").agg(
        F.max(F.when(F.col("kind") == "tnf", in_unit(dose, "mg"))).alias("tnf_dose_mg"),
        F.max(F.when((F.col("kind") == "melphalan") & unit.isin("mg/L", "mg/l"), in_unit(dose, "mg/L")))
        .alias("per_litre"),
        F.max(F.when((F.col("kind") == "melphalan") & ~unit.isin("mg/L", "mg/l"), in_unit(dose, "mg")))
        .alias("melphalan_total_mg"),
        F.max(F.when(F.col("kind") == "limb_volume", in_unit(quantity, "L"))).alias("limb_volume_l"),
        F.max(F.when(F.col("kind") == "perfusate_temperature", in_unit(quantity, "Cel"))).alias("max_temperature_c"),
        F.max(F.when(F.col("kind") == "perfusion_duration", in_unit(quantity, "min"))).alias("duration_observed"),
        F.max(F.when(F.col("kind") == "leakage", in_unit(quantity, "%"))).alias("leakage_pct"),
        F.collect_set(F.when(F.col("kind").isin(*PARTS), F.col("ref"))).alias("part_refs"),
        F.array_sort(F.collect_set(F.when(F.col("linked_by") == "date", F.col("ref")))).alias("by_date"))
    joined = base.join(per_procedure, "target_id", "left").join(ilps, "target_id").join(view.patient_ids(),
                                                                                        "subject_id")
    return joined.select(
        "centre_id", view.key(F.col("ref")).alias("perfusion_id"), "patient_id",
        view.key(F.col("tumour_ref")).alias("tumour_id"), "perfusion_date", "perfusion_date_imputed",
        F.col("perfusion_number").cast("int").alias("perfusion_number"), "site", "ilp_level", "tnf_dose_mg",
        F.coalesce("per_litre", F.col("melphalan_total_mg") / F.col("limb_volume_l")).alias("melphalan_dose_mg_per_l"),
        "melphalan_total_mg", "limb_volume_l", "max_temperature_c",
        F.coalesce("period_minutes", "duration_observed").cast("double").alias("duration_min"), "leakage_pct",
        F.coalesce("by_date", F.array().cast("array<string>")).alias("parts_linked_by_date"),
        F.array_union(F.array("ref"), F.coalesce("part_refs", F.array())).alias("source_resource_ids"),
    ).select(*[c for c in PERFUSIONS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))


def _link_to_ilps(view: ResourceView, parts: DataFrame, ilps: DataFrame) -> DataFrame:
    """Each drug or measurement with the ILP it belongs to (`target_id`) and how that was decided (`linked_by`):
    its `partOf`, else the patient's only ILP on the day it was given or measured. Parts neither links are noted
    with what is missing. One join, with each patient's ILPs as a list: the candidates are cached, since the
    quarantine's reasons read them again."""
    per_patient = ilps.groupBy("subject_id").agg(
        F.collect_list(F.struct("target_id", "perfusion_date")).alias("ilps"))
    rows = (linked(parts, "part_of").withColumnRenamed("target_id", "pointed")
            .join(per_patient, "subject_id", "left").withColumn("part_date", fhir_date(F.col("effective"))))
    patient_ilps = F.coalesce(F.col("ilps"), F.array().cast(per_patient.schema["ilps"].dataType))
    by_part_of = F.coalesce(F.exists(patient_ilps, lambda i: i["target_id"] == F.col("pointed")), F.lit(False))
    that_day = F.filter(patient_ilps, lambda i: i["perfusion_date"] == F.col("part_date"))
    by_date = F.col("pointed").isNull() & (F.size(that_day) == 1)
    rows = view.cached(rows.select(
        "*", F.when(by_part_of, F.col("pointed")).when(by_date, F.get(that_day, 0)["target_id"]).alias("target_id"),
        F.when(by_part_of, "partOf").when(by_date, "date").alias("linked_by"),
        F.size(that_day).alias("ilps_that_day")))
    day = F.coalesce(F.col("part_date").cast("string"), F.lit("an unknown day"))
    wrong = F.concat(F.lit("not linked to an ILP: its partOf points at "),
                     F.regexp_replace("pointed", r"^[^|]*\|", ""),
                     F.lit(", which is not an ILP Procedure of its patient: set partOf to the ILP's Procedure"))
    missing = F.concat(F.lit("not linked to an ILP: it has no partOf, and its patient has "),
                       F.col("ilps_that_day").cast("string"), F.lit(" ILP Procedures on "), day,
                       F.lit(" (linking by date needs exactly one): set partOf to the ILP's Procedure, or override "
                             "the view's `part_of` column"))
    view.note_unused(rows.where(F.col("target_id").isNull()).select(
        "centre_id", "ref", F.when(F.col("pointed").isNotNull(), wrong).otherwise(missing).alias("reason")))
    return rows.where(F.col("target_id").isNotNull())
