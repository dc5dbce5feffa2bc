"""Current state: the latest version of every resource of a centre, after all landed runs and deletions.

`resources/centre=<id>/v=<version>/` holds one Parquet dataset of the resources parsed with the explicit
schema, partitioned by type and kind (what the resource's code means: `Observation/kind=recist`), and
`resources/centre=<id>/current.json` points at it and lists the landing runs merged into it. Each line is parsed
once, here; tables read only the parsed elements they use (Parquet prunes nested columns) and just the
partitions of the kinds they use. A state written under another schema, or under other ValueSets or
ConceptMaps, is rebuilt from every landed run, which the landing zone keeps.

A merge handles several centres in one Spark pass (one read, one window, one write: a job's fixed cost is most
of a small centre's merge), then gives each centre its new version and switches its pointer atomically: a crash
mid-write leaves the previous state in force (and a staging folder the next merge removes), and merging runs
that are already merged changes nothing.

Each resource is stored with its kind and, when it is internally impossible (`transforms.sanity`), why: the
tables never read those, and the transform quarantines them.

Newest wins by `meta.lastUpdated`, then by landing run; a tombstone deletes the resource unless a version newer
than the deletion exists. Every landed line ends up counted: current, superseded, deleted or quarantined.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ilp.fileio import write_json_atomically
from ilp.staging import staging_folder
from transforms.codes import CodeLookup
from transforms.landed import TOMBSTONES, LandedRun, parsed, read_lines
from transforms.quarantine import write_quarantine
from transforms.sanity import impossibility
from transforms.schema import RESOURCE

COLUMNS = ("centre_id", "resource_type", "kind", "id", "version_id", "last_updated", "run_id", "impossible", "r")
STATE_SCHEMA = ("centre_id string, resource_type string, kind string, id string, version_id string, "
                f"last_updated string, run_id string, impossible string, r {RESOURCE.simpleString()}")
SCHEMA_ID = hashlib.sha256(STATE_SCHEMA.encode("utf-8")).hexdigest()[:16]


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

    def has_resources(self) -> bool:
        version = self.current_version()
        return version is not None and any((self.folder / version).glob("resource_type=*"))

    def _unmerged(self, runs: list[LandedRun], harmonisation: str) -> tuple[list[LandedRun], bool]:
        """Runs to merge, and whether the state is rebuilt from all of them (none yet, another schema, or codes
        that mean something else now)."""
        pointer = self._pointer()
        rebuild = pointer.get("schema") != SCHEMA_ID or pointer.get("harmonisation") != harmonisation
        done = set() if rebuild else set(pointer["runs"])
        return [r for r in runs if r.run_id not in done], rebuild

    def _switch(self, staged: Path, version: str, runs: list[str], counts: dict[str, Any],
                transform_run: str, rebuild: bool, harmonisation: str) -> None:
        """Move the staged dataset in as `version`, point at it, drop the old one."""
        old = self.current_version()
        self.folder.mkdir(parents=True, exist_ok=True)
        if staged.is_dir():
            staged.rename(self.folder / version)
        else:  # no current resource at all: an empty dataset
            (self.folder / version).mkdir()
        merged = set(runs) if rebuild else set(self.merged_runs()) | set(runs)
        write_json_atomically(self.pointer, {"version": version, "runs": sorted(merged), "counts": counts,
                                             "transform_run": transform_run, "schema": SCHEMA_ID,
                                             "harmonisation": harmonisation})
        if old and old != version:
            shutil.rmtree(self.folder / old, ignore_errors=True)


def read_states(spark: SparkSession, states: list[CurrentState]) -> DataFrame:
    """The current resources of several centres (`COLUMNS`) in one scan of their versions under `resources/`.

    One scan, not a union of one per centre: every table reads the states several times, and a scan per centre
    multiplied the plans Spark optimises and compiles. The schema is given, so nothing is inferred from footers
    and a centre id that looks like a number stays a string."""
    present = [s for s in states if s.has_resources()]
    if not present:
        return spark.createDataFrame([], STATE_SCHEMA)
    stored = (f"id string, version_id string, last_updated string, run_id string, impossible string, "
              f"r {RESOURCE.simpleString()}, centre string, v string, resource_type string, kind string")
    return (spark.read.schema(stored).option("basePath", str(present[0].root / "resources"))
            .parquet(*[str(s.folder / str(s.current_version())) for s in present])
            .select(F.col("centre").alias("centre_id"), *COLUMNS[1:]))


def merge(spark: SparkSession, root: Path, runs: Mapping[str, list[LandedRun]], resource_types: tuple[str, ...],
          lookup: CodeLookup, transform_run: str) -> dict[str, MergeReport]:
    """Merge each centre's runs not merged yet into its current state, each resource with its kind; write the
    quarantine; return the counts."""
    root = Path(root)
    states = {centre: CurrentState(root, centre) for centre in runs}
    harmonisation = {centre: lookup.fingerprint(centre) for centre in runs}
    plans = {centre: state._unmerged(runs[centre], harmonisation[centre]) for centre, state in states.items()}
    reports = {centre: MergeReport(centre, [r.run_id for r in plans[centre][0]]) for centre in runs}
    changing = [centre for centre in runs if plans[centre][0]]
    if not changing:
        return reports
    new_runs = [r for c in changing for r in plans[c][0]]
    lines = read_lines(spark, new_runs, list(resource_types))
    problem = (F.when(F.col("r.resourceType").isNull() | F.col("r.id").isNull(),
                      "unparseable JSON, or no resourceType or id")
               .when(F.col("r.resourceType") != F.col("resource_type"), "resourceType differs from its stream"))
    landed = (lines.select("centre_id", F.col("stream").alias("resource_type"), "run_id", "json", parsed().alias("r"))
              .withColumn("reason", problem)
              .select("centre_id", "resource_type", F.col("r.id").alias("id"),
                      F.col("r.meta.versionId").alias("version_id"), F.col("r.meta.lastUpdated").alias("last_updated"),
                      "run_id", "r", "reason", F.when(F.col("reason").isNotNull(), F.col("json")).alias("json"),
                      F.lit("new").alias("origin")))
    previous = read_states(spark, [states[c] for c in changing if not plans[c][1]]).drop("kind", "impossible").select(
        "*", F.lit(None).cast("string").alias("reason"), F.lit(None).cast("string").alias("json"),
        F.lit("previous").alias("origin"))
    newest = Window.partitionBy("centre_id", "resource_type", "id").orderBy(
        F.col("reason").isNotNull(), F.col("last_updated").desc_nulls_last(), F.col("run_id").desc(),
        F.col("version_id").desc_nulls_last())
    deleted = F.col("t.deleted_at").isNotNull() & (F.col("c.last_updated").isNull()
                                                   | (F.col("t.deleted_at") >= F.col("c.last_updated")))
    # One pass decides every line's fate (the window is a shuffle of every resource: most of the merge's cost);
    # one write keeps the current and the quarantined in full and the other fates as bare keys, so counting every
    # fate is a read of the staging's partition folders, not a second pass over the landing.
    decided = (previous.unionByName(landed).withColumn("rank", F.row_number().over(newest))
               .withColumn("kind", lookup.kind()).withColumn("impossible", impossibility()).alias("c")
               .join(F.broadcast(_tombstones(spark, new_runs)).alias("t"), ["centre_id", "resource_type", "id"], "left")
               .select("c.*", F.when(F.col("reason").isNotNull(), "quarantined").when(F.col("rank") > 1, "superseded")
                       .when(deleted, "deleted").otherwise("current").alias("fate")))
    kept = F.col("fate").isin("current", "quarantined")
    version = f"v={datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    with staging_folder(root / "resources", version) as staging:
        (decided.select(*COLUMNS[:-1], F.when(kept, F.col("r")).alias("r"), "reason", "json", "origin", "fate")
         .write.partitionBy("centre_id", "fate", "resource_type", "kind").parquet(str(staging)))
        fates = (spark.read.parquet(str(staging)).groupBy("centre_id", "resource_type", "origin", "fate").count()
                 .collect()) if staging.is_dir() else []
        counts = _counts({(r["centre_id"], r["resource_type"], r["origin"], r["fate"]): r["count"] for r in fates})
        quarantined = [str(p) for c in changing if (p := staging / f"centre_id={c}" / "fate=quarantined").is_dir()]
        if quarantined:
            write_quarantine(spark.read.option("basePath", str(staging)).parquet(*quarantined).select(
                "centre_id", F.col("run_id").alias("landing_run_id"), "resource_type",
                F.col("id").alias("resource_id"), "reason", "json"), root, "current", changing, transform_run)
        for centre in changing:
            reports[centre].counts = counts.get(centre, {})
            states[centre]._switch(staging / f"centre_id={centre}" / "fate=current", version,
                                   reports[centre].merged_runs, reports[centre].counts, transform_run, plans[centre][1],
                                   harmonisation[centre])
    return reports


def _tombstones(spark: SparkSession, runs: list[LandedRun]) -> DataFrame:
    lines = read_lines(spark, runs, [TOMBSTONES])
    fields = F.from_json("json", "resourceType string, id string, deleted_at string")
    return (lines.select("centre_id", fields.alias("t"))
            .groupBy("centre_id", F.col("t.resourceType").alias("resource_type"), F.col("t.id").alias("id"))
            .agg(F.max(F.coalesce("t.deleted_at", F.lit("9999"))).alias("deleted_at")))


PREVIOUS_KEYS = {"current": "previous_kept", "superseded": "previous_replaced", "deleted": "previous_deleted"}


def _counts(observed: Mapping[tuple[str, ...], int]) -> dict[str, dict[str, dict[str, int]]]:
    """Per centre and type: lines in, and where each went (current, superseded, deleted, quarantined), plus what
    became of the previous state's resources."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (centre, resource_type, origin, outcome), count in observed.items():
        entry = counts.setdefault(centre, {}).setdefault(resource_type, {
            "in": 0, "current": 0, "superseded": 0, "deleted": 0, "quarantined": 0, "previous_replaced": 0,
            "previous_kept": 0, "previous_deleted": 0})
        if origin == "new":
            entry["in"] += count
            entry[outcome] += count
        else:
            entry[PREVIOUS_KEYS[outcome]] += count
    return {c: {t: e for t, e in types.items() if any(e.values())} for c, types in counts.items()}
