"""How resources hang together: what each Observation or MedicationAdministration is part of or about, and
the ILP procedures everything else is linked to."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.columns import fhir_date
from transforms.view import ResourceView, local_reference


def performed_start(r: str = "r") -> Column:
    return F.coalesce(F.col(f"{r}.performedPeriod.start"), F.col(f"{r}.performedDateTime"))


def linked(rows: DataFrame, element: str) -> DataFrame:
    """One row per (resource, centre-qualified target id) for a list of references (`partOf`, `focus`).

    `rows` carry the list as a top-level column named `element`, selected with just the other columns the
    caller uses: exploding a frame that still holds the parsed resource would read every element of it (Spark
    does not prune nested columns through the explode)."""
    return (rows.select("*", F.explode_outer(F.col(element)).alias("link")).drop(element)
            .withColumn("target_id", local_reference(F.col("link.reference"))).drop("link"))


def ilp_procedures(view: ResourceView) -> DataFrame:
    """ILP procedures: target_id, subject_id, perfusion reference and date, and its number for the patient."""
    procedures = view.of("Procedure", "ilp").select(
        F.col("local_id").alias("target_id"), "subject_id", F.col("ref").alias("perfusion_ref"),
        fhir_date(performed_start()).alias("perfusion_date"))
    order = Window.partitionBy("subject_id").orderBy("perfusion_date", "target_id")
    return procedures.withColumn("perfusion_number", F.row_number().over(order))
