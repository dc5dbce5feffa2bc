"""`toxicities` and `responses`: graded reactions after an ILP and the response to it."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from foundation.model import RESPONSES, TOXICITIES
from foundation.model import vocabulary as v
from transforms.columns import fhir_date, in_unit
from transforms.tables.links import ilp_procedures, linked
from transforms.view import ResourceView

SCALES = {"wieberdink": ("wieberdink", "wieberdink-grade"), "ctcae_adverse_event": ("ctcae", "ctcae-grade"),
          "clavien_dindo": ("clavien_dindo", "clavien-dindo-grade")}


def _perfusion_keys(view: ResourceView) -> DataFrame:
    return ilp_procedures(view).select("target_id", "perfusion_ref", "perfusion_number", "subject_id")


def build_toxicities(view: ResourceView, run_id: str) -> DataFrame:
    lookup = view.lookup
    graded = view.facts("Observation", *SCALES)
    scale = F.create_map(*[F.lit(x) for kind, (name, _) in SCALES.items() for x in (kind, name)])
    grade = F.lit(None).cast("string")
    for kind, (_, valueset_name) in SCALES.items():
        grade = F.when(F.col("kind") == kind, lookup.first(valueset_name, F.col("value_codings"))).otherwise(grade)
    rank = F.create_map(*[F.lit(x) for name, grades in v.GRADE_RANK.items() for g, r in grades.items()
                          for x in (f"{name}|{g}", r)])
    term_components = F.filter(F.col("components"),
                               lambda c: lookup.value("observation", c["code"]) == "ctcae_term")
    facts = graded.select(
        "centre_id", "ref", "subject_id", F.try_element_at(scale, F.col("kind")).alias("scale"), grade.alias("grade"),
        lookup.value("ctcae-term", F.get(term_components, 0)["valueCodeableConcept"]).alias("ctcae_term"),
        fhir_date(F.col("effective")).alias("onset_date"), "part_of")
    rows = linked(facts, "part_of").join(_perfusion_keys(view).drop("subject_id"), "target_id", "left").drop(
        "target_id", "centre_id")
    return rows.join(view.patient_ids(), "subject_id").select(
        "centre_id", view.key(F.col("ref")).alias("toxicity_id"), "patient_id",
        F.when(F.col("perfusion_ref").isNotNull(), view.key(F.col("perfusion_ref"))).alias("perfusion_id"),
        "scale", "grade",
        F.try_element_at(rank, F.concat_ws("|", "scale", "grade")).cast("int").alias("grade_rank"),
        "ctcae_term", "onset_date", F.array("ref").alias("source_resource_ids"),
    ).select(*[c for c in TOXICITIES.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))


def build_responses(view: ResourceView, run_id: str) -> DataFrame:
    """RECIST on MRI (focus: the ILP) and necrosis of the resection specimen (attributed to the first ILP)."""
    lookup = view.lookup
    perfusions = _perfusion_keys(view)
    recist = view.facts("Observation", "recist").select(
        "centre_id", "ref", "subject_id", F.lit("radiological").alias("kind"),
        fhir_date(F.col("effective")).alias("assessment_date"),
        lookup.first("recist", F.col("value_codings")).alias("category"),
        F.lit(None).cast("double").alias("necrosis_pct"), "focus")
    radiological = (linked(recist, "focus").join(perfusions.drop("subject_id"), "target_id", "left")
                    .select("ref", "subject_id", "perfusion_ref", "kind", "assessment_date", "category",
                            "necrosis_pct"))
    necrosis = in_unit(F.col("value_quantity"), "%")
    first = perfusions.where("perfusion_number = 1").select("subject_id", "perfusion_ref")
    pathological = (view.facts("Observation", "necrosis").join(first, "subject_id", "left")
                    .select("ref", "subject_id", "perfusion_ref", F.lit("pathological").alias("kind"),
                            fhir_date(F.col("effective")).alias("assessment_date"),
                            F.when(necrosis >= 100, "CR").when(necrosis >= 50, "PR").when(necrosis.isNotNull(), "NR")
                            .alias("category"), necrosis.alias("necrosis_pct")))
    return radiological.unionByName(pathological).join(view.patient_ids(), "subject_id").select(
        "centre_id", view.key(F.col("ref")).alias("response_id"), "patient_id",
        F.when(F.col("perfusion_ref").isNotNull(), view.key(F.col("perfusion_ref"))).alias("perfusion_id"),
        "kind", "assessment_date", "category", "necrosis_pct", F.array("ref").alias("source_resource_ids"),
    ).select(*[c for c in RESPONSES.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
             *view.provenance(run_id))
