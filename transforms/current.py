"""Current state: the latest version of every resource of a centre, after all landed runs and deletions.

`resources/centre=<id>/v=<version>/` holds one Parquet dataset (partitioned by resource type) and
`resources/centre=<id>/current.json` points at it and lists the landing runs merged into it. A merge writes a
new version, then switches the pointer atomically: a crash mid-write leaves the previous state in force, and
merging runs that are already merged changes nothing.

Newest wins by `meta.lastUpdated`, then by landing run; a tombstone deletes the resource unless a version newer
than the deletion exists. Every landed line ends up counted: current, superseded, deleted or quarantined.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ilp.fileio import write_json_atomically
from transforms.landed import TOMBSTONES, LandedRun, read_lines
from transforms.quarantine import write_quarantine

COLUMNS = "resource_type string, id string, version_id string, last_updated string, run_id string, json string"
KEYS = "resourceType string, id string, meta struct<versionId: string, lastUpdated: string>"


@dataclass
class MergeReport:
    centre_id: str
    merged_runs: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> in/current/superseded/deleted/...

    @property
    def nothing_new(self) -> bool:
        return not self.merged_runs


class CurrentState:
    def __init__(self, root: Path, centre_id: str) -> None:
        self.root = Path(root)
        self.centre_id = centre_id
        self.folder = self.root / "resources" / f"centre={centre_id}"
        self.pointer = self.folder / "current.json"

    def _pointer(self) -> dict[str, Any]:
        if not self.pointer.exists():
            return {"version": None, "runs": []}
        return dict(json.loads(self.pointer.read_text(encoding="utf-8")))

    def merged_runs(self) -> list[str]:
        return list(self._pointer()["runs"])

    def current_version(self) -> str | None:
        version = self._pointer()["version"]
        return str(version) if version else None

    def record_merged(self, run_ids: list[str]) -> None:
        """Record runs that changed nothing as merged, without writing a new version."""
        pointer = self._pointer()
        if not run_ids or pointer["version"] is None:
            return
        pointer["runs"] = sorted(set(pointer["runs"]) | set(run_ids))
        write_json_atomically(self.pointer, pointer)

    def read(self, spark: SparkSession) -> DataFrame:
        version = self._pointer()["version"]
        if version is None:
            return spark.createDataFrame([], COLUMNS)
        return spark.read.parquet(str(self.folder / version)).select(*[c.split()[0] for c in COLUMNS.split(", ")])

    def merge(self, spark: SparkSession, runs: list[LandedRun], resource_types: tuple[str, ...],
              transform_run: str) -> MergeReport:
        """Merge the runs not merged yet; write the new state and its quarantine; return the counts."""
        done = set(self.merged_runs())
        new = [r for r in runs if r.run_id not in done]
        report = MergeReport(self.centre_id, [r.run_id for r in new])
        if not new:
            return report
        lines = read_lines(spark, new, list(resource_types))
        keys = F.from_json("json", KEYS, {"mode": "PERMISSIVE"})
        landed = lines.select("*", keys.alias("k")).select(
            F.col("stream").alias("resource_type"), F.col("k.id").alias("id"),
            F.col("k.meta.versionId").alias("version_id"), F.col("k.meta.lastUpdated").alias("last_updated"),
            "run_id", "json", F.col("k.resourceType").alias("declared_type"))
        problem = (F.when(F.col("declared_type").isNull() | F.col("id").isNull(),
                          "unparseable JSON, or no resourceType or id")
                   .when(F.col("declared_type") != F.col("resource_type"), "resourceType differs from its stream"))
        landed = landed.withColumn("reason", problem).cache()
        valid = landed.where(F.col("reason").isNull()).select(*[c.split()[0] for c in COLUMNS.split(", ")])

        previous = self.read(spark).withColumn("origin", F.lit("previous"))
        candidates = previous.unionByName(valid.withColumn("origin", F.lit("new")))
        newest = Window.partitionBy("resource_type", "id").orderBy(
            F.col("last_updated").desc_nulls_last(), F.col("run_id").desc(), F.col("version_id").desc_nulls_last())
        tombstones = self._tombstones(spark, new)
        # One pass decides every line's fate; the new state and the counts both read it (the window is a shuffle
        # of every JSON line: computing it once is most of the merge's cost).
        decided = (candidates.withColumn("rank", F.row_number().over(newest)).alias("r")
                   .join(F.broadcast(tombstones).alias("t"), ["resource_type", "id"], "left")
                   .select("r.*", F.when(F.col("rank") > 1, "superseded")
                           .when(F.col("t.deleted_at").isNotNull()
                                 & (F.col("r.last_updated").isNull()
                                    | (F.col("t.deleted_at") >= F.col("r.last_updated"))),
                                 "deleted").otherwise("current").alias("outcome"))
                   .persist(StorageLevel.MEMORY_AND_DISK))
        outcome = decided.select("resource_type", "origin", "outcome").unionByName(
            landed.where(F.col("reason").isNotNull()).select("resource_type", F.lit("new").alias("origin"),
                                                             F.lit("quarantined").alias("outcome")))
        version = f"v={datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        (decided.where(F.col("outcome") == "current").select(*[c.split()[0] for c in COLUMNS.split(", ")])
         .write.partitionBy("resource_type").parquet(str(self.folder / version)))
        write_quarantine(landed.where(F.col("reason").isNotNull()).select(
            F.lit(self.centre_id).alias("centre_id"), F.col("run_id").alias("landing_run_id"), "resource_type",
            F.col("id").alias("resource_id"), "reason", "json"), self.root, "current", self.centre_id, transform_run)
        report.counts = _counts(outcome)
        landed.unpersist()
        decided.unpersist()
        old = self._pointer()["version"]
        write_json_atomically(self.pointer, {"version": version, "runs": sorted(done | set(report.merged_runs)),
                                             "counts": report.counts, "transform_run": transform_run})
        if old:
            shutil.rmtree(self.folder / old, ignore_errors=True)
        return report

    def _tombstones(self, spark: SparkSession, runs: list[LandedRun]) -> DataFrame:
        lines = read_lines(spark, runs, [TOMBSTONES])
        fields = F.from_json("json", "resourceType string, id string, deleted_at string")
        return (lines.select(fields.alias("t"))
                .groupBy(F.col("t.resourceType").alias("resource_type"), F.col("t.id").alias("id"))
                .agg(F.max(F.coalesce("t.deleted_at", F.lit("9999"))).alias("deleted_at")))


def _counts(outcome: DataFrame) -> dict[str, dict[str, int]]:
    """Per type: lines in, and where each went (current, superseded, deleted, quarantined), plus replaced olds."""
    rows = outcome.groupBy("resource_type", "origin", "outcome").count().collect()  # a few dozen rows
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        entry = counts.setdefault(row["resource_type"], {"in": 0, "current": 0, "superseded": 0, "deleted": 0,
                                                          "quarantined": 0, "previous_replaced": 0,
                                                          "previous_kept": 0, "previous_deleted": 0})
        if row["origin"] == "new":
            entry["in"] += row["count"]
            entry[row["outcome"]] += row["count"]
        else:
            entry[{"superseded": "previous_replaced", "current": "previous_kept",
                   "deleted": "previous_deleted"}[row["outcome"]]] += row["count"]
    return counts
