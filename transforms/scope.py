"""The cohort definition (`foundation.cohort`) applied to a centre's current resources: which are in scope.

The transform is where the definition is applied in full, whatever the source: a files export or a system-level
Bulk export of the whole hospital, or a REST pull that searched by code. A patient is a member when they have a
procedure whose kind (its code, through the ValueSets and the centre's ConceptMaps) is one of the definition's,
performed within its window, and a condition of one of its kinds. Every resource about a member is in scope, and
so is every resource about no patient at all or about a patient the centre does not have (it keeps its own reason
in the reconciliation: nothing is dropped for want of a subject). The rest, about the centre's other patients, is
out of scope: counted per type, never in a table, the quarantine or the unmapped-codes report.

Members are few (the cohort), so they are broadcast; the resources are never collected.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from foundation.cohort import CohortDefinition
from transforms.columns import fhir_date
from transforms.facts import stored_name
from transforms.views.catalogue import view_for

OUT_OF_SCOPE = "not about a patient of the cohort"


def members(resources: DataFrame, cohort: CohortDefinition) -> DataFrame:
    """subject_id of every patient the definition selects (centre-qualified, so one column says which centre)."""
    selected = _procedure_subjects(resources, cohort)
    if cohort.condition_kinds:
        diagnosed = resources.where((F.col("resource_type") == "Condition")
                                    & F.col("kind").isin(*cohort.condition_kinds)).select("subject_id")
        selected = selected.join(diagnosed, "subject_id", "left_semi")
    return selected


def kept_subjects(resources: DataFrame, chosen: DataFrame) -> DataFrame:
    """subject_id of the resources kept in scope: the `chosen` members, and subjects that are no Patient of the
    centre (an orphan is not known to be outside the cohort: it stays, and the tables quarantine it with the
    reason it cannot be used). Few: computed once, then broadcast."""
    patients = resources.where(F.col("resource_type") == "Patient").select("subject_id")
    referenced = (resources.where((F.col("resource_type") != "Patient") & F.col("subject_id").isNotNull())
                  .select("subject_id").distinct())
    return chosen.unionByName(referenced.join(patients, "subject_id", "left_anti"))


def near_misses(resources: DataFrame, cohort: CohortDefinition, chosen: DataFrame) -> dict[str, int]:
    """Per centre, patients with a procedure of the cohort's kinds but none of its conditions: out of scope, and
    worth a warning (a melanoma perfused, or a sarcoma coded with a code nobody mapped)."""
    if not cohort.condition_kinds:
        return {}
    missed = _procedure_subjects(resources, cohort).join(chosen, "subject_id", "left_anti")
    centre = F.substring_index(F.col("subject_id"), "|", 1)
    return {r["centre_id"]: r["count"] for r in missed.groupBy(centre.alias("centre_id")).count().collect()}


def _procedure_subjects(resources: DataFrame, cohort: CohortDefinition) -> DataFrame:
    """subject_id of the patients with a procedure of the cohort's kinds within its window."""
    performed = fhir_date(F.col(stored_name(view_for("Procedure"), "performed_start")))
    within: Column = F.lit(True)
    if cohort.performed_from:
        within = within & (performed >= F.lit(cohort.performed_from))
    if cohort.performed_until:
        within = within & (performed <= F.lit(cohort.performed_until))
    procedures = resources.where((F.col("resource_type") == "Procedure")
                                 & F.col("kind").isin(*cohort.procedure_kinds) & within)
    return procedures.select("subject_id").where(F.col("subject_id").isNotNull()).distinct()


def mark(resources: DataFrame, kept: DataFrame) -> DataFrame:
    """The resources with `in_scope`: about one of the `kept` subjects (`kept_subjects`), or about no patient."""
    marked = resources.join(F.broadcast(kept.withColumn("member", F.lit(True))), "subject_id", "left")
    return marked.withColumn("in_scope", F.col("member").isNotNull() | F.col("subject_id").isNull()).drop("member")


def describe_procedures(resources: DataFrame, centre_id: str, most: int = 5) -> str:
    """What a centre's Procedures are, for the message that says why the cohort is empty: how many of each kind,
    and the commonest codes of those of no kind (a code no ValueSet or ConceptMap maps: often the centre's own
    code for the procedure the cohort needs). Small: one row per kind and per code."""
    procedures = resources.where((F.col("centre_id") == centre_id) & (F.col("resource_type") == "Procedure"))
    kinds = {r["kind"]: r["count"] for r in procedures.groupBy("kind").count().collect()}
    if not kinds:
        return "It has no Procedure at all."
    codes = (procedures.where(F.col("kind").isNull()).select(F.explode("own_codings").alias("c"))
             .groupBy(F.col("c.system").alias("system"), F.col("c.code").alias("code")).count()
             .orderBy(F.desc("count"), "system", "code").limit(most).collect())
    known = ", ".join(f"{n} of kind {k}" for k, n in sorted(kinds.items(), key=lambda e: str(e[0])) if k)
    text = f"Its Procedures: {known or 'none of a known kind'}"
    if None in kinds:
        listed = "; ".join(f"{r['system']}|{r['code']} ({r['count']})" for r in codes)
        text += f", {kinds[None]} whose code means nothing (commonest: {listed or 'no coding'})"
    return text + "."


def qualifying_codes(resources: DataFrame, cohort: CohortDefinition, chosen: DataFrame) -> dict[str, dict[str, int]]:
    """Per centre, `system|code` of the procedures that put the cohort's patients in it, with how many patients
    each: what `ilp profile` shows a data manager. Reads the code from the few qualifying procedures' JSON."""
    procedures = (resources.where((F.col("resource_type") == "Procedure") & F.col("kind").isin(*cohort.procedure_kinds))
                  .join(chosen, "subject_id", "left_semi"))
    codings = F.from_json("json", "code struct<coding: array<struct<system: string, code: string>>>")
    rows = (procedures.select("centre_id", "subject_id", F.explode(codings["code"]["coding"]).alias("c"))
            .groupBy("centre_id", F.concat_ws("|", "c.system", "c.code").alias("code"))
            .agg(F.countDistinct("subject_id").alias("patients")).collect())
    found: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (-r["patients"], r["code"])):
        found.setdefault(row["centre_id"], {})[row["code"]] = row["patients"]
    return found


def cohort_found(centre_id: str, cohort: CohortDefinition, counts: dict[tuple[str, bool], int], without_condition: int,
                 codes: dict[str, int]) -> dict[str, Any]:
    """What the snapshot manifest says of the cohort found at a centre (`SnapshotManifest.cohort`): the definition,
    its patients and the centre's others, the perfused patients without the condition (with a warning), and the
    codes that selected them."""
    found: dict[str, Any] = {"definition": cohort.as_record(), "patients": counts.get(("Patient", True), 0),
                             "other_patients": counts.get(("Patient", False), 0),
                             "without_condition": without_condition, "codes": codes}
    if without_condition:
        found["warning"] = (
            f"{centre_id}: {without_condition} patients with a procedure of kind {' or '.join(cohort.procedure_kinds)} "
            f"have no condition of kind {' or '.join(cohort.condition_kinds)}: out of the cohort's scope (another "
            "disease perfused, or a condition coded with a code the centre's ConceptMap does not map)")
    return found
