"""The transform of one centre: landing -> current state -> canonical tables in a staging snapshot.

Every current resource ends up used by some canonical row or quarantined with a reason (its code means nothing
in the canonical ValueSets or the centre's ConceptMaps, or it means something no table uses), so per type
`resources = used + quarantined`; the counts, with the merge's, go to the snapshot's manifest. The unmapped-codes
report lists system, code, display and how many resources each cost.

Snapshots are written under `cohort/snapshots/run=<id>/` (validation and publication are the expectations
stage's); a rerun of the same run id rewrites the same snapshot, so crashes leave nothing half-used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ilp.fileio import write_json_atomically
from ilp.model import BY_NAME, DEFAULT_ENDPOINTS, Endpoint
from ilp.secrets import Secret
from ilp.terminology import ConceptMapIndex
from transforms.codes import CodeLookup
from transforms.current import CurrentState
from transforms.landed import completed_runs
from transforms.pseudonym import date_shift_days
from transforms.quarantine import write_quarantine
from transforms.tables import BASE_TABLES
from transforms.tables.cohort import build_cohort
from transforms.view import KIND_VALUESETS, CentreView

RESOURCE_TYPES = ("Patient", "Condition", "Procedure", "Observation", "MedicationAdministration")


@dataclass(frozen=True)
class CentreSettings:
    centre_id: str
    conceptmaps: tuple[Path, ...] = ()
    national_id_system: str | None = None
    shift_dates: bool = False  # move each patient's dates by a keyed offset (intervals and endpoints unchanged)


@dataclass
class TransformReport:
    centre_id: str
    run_id: str
    snapshot: Path
    merged_runs: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, dict[str, int]] = field(default_factory=dict)
    unmapped_codes: int = 0


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def transform_centre(spark: SparkSession, root: Path, centre: CentreSettings, secret: Secret, run_id: str,
                     endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS) -> TransformReport:
    root = Path(root)
    state = CurrentState(root, centre.centre_id)
    merge = state.merge(spark, completed_runs(root / "landing", centre.centre_id), RESOURCE_TYPES, run_id)
    lookup = CodeLookup(ConceptMapIndex.from_files(centre.conceptmaps))
    view = CentreView.load(spark, state, lookup, secret, centre.national_id_system)
    snapshot = root / "cohort" / "snapshots" / f"run={run_id}"
    report = TransformReport(centre.centre_id, run_id, snapshot, merge.merged_runs)
    written: dict[str, DataFrame] = {}
    for name, build in BASE_TABLES.items():
        table = build(view, run_id)
        if centre.shift_dates:
            table = _shift_dates(table, name, secret)
        written[name] = _write(spark, table, snapshot, name, centre.centre_id)
    written["cohort"] = _write(spark, build_cohort(written, endpoints, centre.centre_id, run_id), snapshot,
                               "cohort", centre.centre_id)
    report.rows = {name: df.count() for name, df in written.items()}
    report.reconciliation, report.unmapped_codes = _reconcile(spark, root, view, written, run_id)
    manifest = {"run_id": run_id, "centre_id": centre.centre_id, "merged_landing_runs": merge.merged_runs,
                "merge_counts": json.loads(state.pointer.read_text(encoding="utf-8"))["counts"],
                "rows": report.rows, "reconciliation": report.reconciliation,
                "unmapped_codes": report.unmapped_codes, "endpoints": [e.name for e in endpoints],
                "conceptmaps": [p.name for p in centre.conceptmaps], "finished_at": datetime.now(UTC).isoformat()}
    write_json_atomically(snapshot / f"manifest-{centre.centre_id}.json", manifest)
    view.release()
    return report


def _write(spark: SparkSession, table: DataFrame, snapshot: Path, name: str, centre_id: str) -> DataFrame:
    """Conform a table to the model's types, write the centre's partition (replacing it on a rerun), and read it
    back, so the next step reads what this one wrote."""
    model = BY_NAME[name]
    target = snapshot / name / f"centre_id={centre_id}"
    conformed = table.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in model if c.name != "centre_id"])
    conformed.write.mode("overwrite").parquet(str(target))
    return spark.read.parquet(str(target)).withColumn("centre_id", F.lit(centre_id)).select(*model.column_names)


def _shift_dates(table: DataFrame, name: str, secret: Secret) -> DataFrame:
    """Every date column moved by the patient's keyed offset (the cohort, built from these, follows)."""
    offset = date_shift_days(secret, F.col("patient_id"))
    dates = [c.name for c in BY_NAME[name] if c.type == "date"]
    return table.select(*[F.date_add(F.col(c), offset).alias(c) if c in dates else F.col(c) for c in table.columns])


def _reconcile(spark: SparkSession, root: Path, view: CentreView, tables: dict[str, DataFrame],
               run_id: str) -> tuple[dict[str, dict[str, int]], int]:
    """Quarantine every current resource no table used, with why; return per-type counts and unmapped codes."""
    used = (tables["cohort"].select(F.explode("source_resource_ids").alias("ref")).distinct()
            .withColumn("used", F.lit(True)))
    resources = view.of_types(*RESOURCE_TYPES).join(used, "ref", "left")
    classified = resources.where(F.col("resource_type").isin(*KIND_VALUESETS))
    reason = (F.when(F.col("used"), None)
              .when(F.col("resource_type").isin(*KIND_VALUESETS) & F.col("kind").isNull(),
                    "code not in the canonical ValueSets or the centre's ConceptMaps")
              .otherwise("no canonical table uses this resource"))
    labelled = resources.withColumn("reason", reason).cache()
    write_quarantine(labelled.where(F.col("reason").isNotNull()).select(
        F.lit(view.centre_id).alias("centre_id"), F.col("run_id").alias("landing_run_id"), "resource_type",
        F.col("id").alias("resource_id"), "reason", F.to_json("r").alias("json")),
        root, "harmonise", view.centre_id, run_id)
    counts: dict[str, dict[str, int]] = {}
    for row in labelled.groupBy("resource_type", F.col("reason").isNull().alias("ok")).count().collect():
        entry = counts.setdefault(row["resource_type"], {"resources": 0, "used": 0, "quarantined": 0})
        entry["resources"] += row["count"]
        entry["used" if row["ok"] else "quarantined"] += row["count"]
    code = F.coalesce(F.col("r.code"), F.col("r.medicationCodeableConcept"))
    unmapped = (classified.where(F.col("kind").isNull())
                .select("resource_type", F.explode_outer(code["coding"]).alias("c"))
                .groupBy("resource_type", F.col("c.system").alias("system"), F.col("c.code").alias("code"),
                         F.col("c.display").alias("display")).count().withColumnRenamed("count", "resources")
                .orderBy(F.desc("resources")))
    report = root / "quarantine" / "unmapped_codes" / f"centre={view.centre_id}" / f"run={run_id}"
    unmapped.coalesce(1).write.mode("overwrite").option("header", True).csv(str(report))
    labelled.unpersist()
    return counts, unmapped.count()


def read_manifest(snapshot: Path, centre_id: str) -> dict[str, Any]:
    return dict(json.loads((snapshot / f"manifest-{centre_id}.json").read_text(encoding="utf-8")))
