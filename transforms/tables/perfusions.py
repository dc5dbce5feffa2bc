"""`perfusions`: each ILP with its drugs, temperature, duration and leakage, gathered through `partOf`."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ilp.model import PERFUSIONS
from transforms.columns import date_imputed, in_unit
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
    drugs = view.facts("MedicationAdministration", *PARTS).select(
        "centre_id", "kind", "ref", "dose", F.lit(None).cast(QUANTITY).alias("quantity"), "part_of")
    measurements = view.facts("Observation", *PARTS).select(
        "centre_id", "kind", "ref", F.lit(None).cast(QUANTITY).alias("dose"), F.col("value_quantity").alias("quantity"),
        "part_of")
    parts = linked(drugs.unionByName(measurements), "part_of")
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
        F.collect_set(F.when(F.col("kind").isin(*PARTS), F.col("ref"))).alias("part_refs"))
    joined = (base.join(per_procedure, "target_id", "left")
              .join(ilp_procedures(view).select("target_id", "subject_id", "perfusion_date", "perfusion_number"),
                    "target_id")
              .join(view.patient_ids(), "subject_id"))
    return joined.select(
        "centre_id", view.key(F.col("ref")).alias("perfusion_id"), "patient_id",
        view.key(F.col("tumour_ref")).alias("tumour_id"), "perfusion_date", "perfusion_date_imputed",
        F.col("perfusion_number").cast("int").alias("perfusion_number"), "site", "ilp_level", "tnf_dose_mg",
        F.coalesce("per_litre", F.col("melphalan_total_mg") / F.col("limb_volume_l")).alias("melphalan_dose_mg_per_l"),
        "melphalan_total_mg", "limb_volume_l", "max_temperature_c",
        F.coalesce("period_minutes", "duration_observed").cast("double").alias("duration_min"), "leakage_pct",
        F.array_union(F.array("ref"), F.coalesce("part_refs", F.array())).alias("source_resource_ids"),
    ).select(*[c for c in PERFUSIONS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))
