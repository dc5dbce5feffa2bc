"""`patients`: demographics, anthropometry and comorbidities, one row per patient."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from foundation.model import PATIENTS
from transforms.columns import fhir_date, in_unit
from transforms.view import ResourceView

# The Observations a patient row is built from.
FACTS = ("bmi", "body_weight", "body_height", "smoking_status", "comorbidity")


def completed_years(born: Column, on: Column) -> Column:
    """Age in completed years (the same rule as foundation.model.dates.completed_years)."""
    before_birthday = (F.month(on) < F.month(born)) | ((F.month(on) == F.month(born)) & (F.dayofmonth(on) <
                                                                                          F.dayofmonth(born)))
    return (F.year(on) - F.year(born) - F.when(before_birthday, 1).otherwise(0)).cast("int")


def build_patients(view: ResourceView, diagnoses: DataFrame, run_id: str) -> DataFrame:
    """`diagnoses`: subject_id, diagnosis_date (from the tumours) for the age at diagnosis."""
    observations = view.facts("Observation", *FACTS).select(
        "subject_id", "kind", "ref", F.col("value_quantity").alias("quantity"),
        view.lookup.first("smoking", F.col("value_codings")).alias("smoking_value"),
        view.lookup.first("condition", F.col("value_codings")).alias("condition_value"))
    quantity = F.col("quantity")
    facts = observations.groupBy("subject_id").agg(
        F.max(F.when(F.col("kind") == "bmi", in_unit(quantity, "kg/m2"))).alias("bmi_direct"),
        F.max(F.when(F.col("kind") == "body_weight", in_unit(quantity, "kg"))).alias("weight"),
        F.max(F.when(F.col("kind") == "body_height", in_unit(quantity, "cm"))).alias("height"),
        F.max(F.when(F.col("kind") == "smoking_status", F.col("smoking_value") == "smoker")).alias("smoking"),
        F.collect_set(F.when(F.col("kind") == "comorbidity", F.col("condition_value"))).alias("observed"),
        F.collect_set("ref").alias("obs_refs"))
    conditions = view.facts("Condition", "hypertension", "dyslipidaemia").groupBy(
        "subject_id").agg(F.collect_set("kind").alias("recorded"), F.collect_set("ref").alias("condition_refs"))
    patients = view.facts("Patient").select("subject_id", "ref", "gender", fhir_date(F.col("birth_date"))
                                            .alias("birth_date"))
    comorbid = F.array_union(F.coalesce("observed", F.array()), F.coalesce("recorded", F.array()))
    bmi = F.coalesce("bmi_direct", F.round(F.col("weight") / F.pow(F.col("height") / 100, 2), 1))
    joined = (patients.join(view.patient_ids(), "subject_id").join(facts, "subject_id", "left")
              .join(conditions, "subject_id", "left").join(diagnoses, "subject_id", "left"))
    return joined.select(
        "centre_id", "patient_id", F.year("birth_date").alias("birth_year"),
        completed_years(F.col("birth_date"), F.col("diagnosis_date")).alias("age_at_diagnosis"),
        F.coalesce(F.col("gender"), F.lit("unknown")).alias("sex"), bmi.alias("bmi"), F.col("smoking"),
        F.array_contains(comorbid, "hypertension").alias("hypertension"),
        F.array_contains(comorbid, "dyslipidaemia").alias("dyslipidaemia"),
        F.array_union(F.array("ref"), F.array_union(F.coalesce("obs_refs", F.array()),
                                                    F.coalesce("condition_refs", F.array()))
                      ).alias("source_resource_ids"),
    ).select(*[c for c in PATIENTS.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))
