"""How resources hang together: what each Observation or MedicationAdministration is part of or about, and
the ILP procedures everything else is linked to."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from transforms.columns import fhir_date
from transforms.facts import local_id
from transforms.view import ResourceView


def linked(rows: DataFrame, element: str) -> DataFrame:
    """One row per (resource, centre-qualified target id) for a view's list of ids (`part_of`, `focus`); a
    resource without one keeps a row with a null target.

    `rows` carry the list as a top-level column named `element`, selected with just the other columns the
    caller uses."""
    return (rows.select("*", F.explode_outer(F.col(element)).alias("link")).drop(element)
            .withColumn("target_id", local_id(F.col("link"))).drop("link"))


def ilp_procedures(view: ResourceView) -> DataFrame:
    """ILP procedures: target_id, subject_id, perfusion reference and date, and its number for the patient."""
    procedures = view.facts("Procedure", "ilp").select(
        F.col("local_id").alias("target_id"), "subject_id", F.col("ref").alias("perfusion_ref"),
        fhir_date(F.col("performed_start")).alias("perfusion_date"))
    order = Window.partitionBy("subject_id").orderBy("perfusion_date", "target_id")
    return procedures.withColumn("perfusion_number", F.row_number().over(order))
