"""Current state: the latest version of every resource of a centre, after all landed runs and deletions.

`resources/centre=<id>/` holds the centre's resources in segments: `seg=<stamp>/` is what one merge read
(Parquet, every new landed line once, as it came, with its kind, its facts and, when it is internally impossible,
why; a line that is not a resource, with the reason), and `dropped=<stamp>/` lists the stored rows that are no
longer current (superseded by a newer version, or deleted). `current.json` names the segments and the dropped
list in force and the landing runs merged into them. The state is the segments' resources minus the dropped rows.

Why segments: a merge parses each new line once and writes it once, as it comes; which version is the newest is
decided on narrow keys (type, id, lastUpdated, run), never by shuffling whole resources through a window (which
cost most of a merge). Past `MAX_SEGMENTS` segments, or once as many rows are dropped as are current, the
current rows are rewritten into one segment.

Each line is parsed once, here, and stored with its facts (`transforms.facts`: the keys, traces and view columns
every table reads, flat); the line itself is read again only to quarantine it. A state written under another
schema, or under other ValueSets, ConceptMaps, views or overrides, is rebuilt from every landed run, which the
landing zone keeps.

A merge handles several centres in one Spark pass (a job's fixed cost is most of a small centre's merge), then
moves each centre's new segment and dropped list in and switches its pointer atomically: a crash mid-write leaves
the previous state in force (and a staging folder, or a segment nothing names, that the next merge removes), and
merging runs that are already merged changes nothing.

Newest wins by `meta.lastUpdated`, then by landing run; a tombstone deletes the resource unless a version newer
than the deletion exists. Every landed line ends up counted: current, superseded, deleted or quarantined.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from foundation.manifests import StatePointer
from foundation.staging import staging_folder
from foundation.zones import Zones
from transforms.codes import CodeLookup
from transforms.facts import ResourceFacts
from transforms.landed import TOMBSTONES, LandedRun, completed_runs, landed_items, parsed, read_lines
from transforms.quarantine import write_quarantine
from transforms.sanity import with_impossibility

# A segment's rows before the resources' facts (`ResourceFacts`; its centre and name are its folders'): `json` is
# the line as landed, `row` numbers the rows within the merge that wrote them.
SEGMENT_SCHEMA = ("resource_type string, kind string, id string, version_id string, last_updated string, "
                  "run_id string, impossible string, reason string, json string, row bigint")
# More segments than this (each is a scan per table), or as many dropped rows as current ones, and a merge
# rewrites the centre's current rows into one segment.
MAX_SEGMENTS = 8
STORED = ("seg=", "dropped=", "v=")  # what a state folder holds besides its pointer (`v=`: the layout before)


@dataclass
class MergeReport:
    centre_id: str
    merged_runs: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> in/current/superseded/deleted/...

    @property
    def nothing_new(self) -> bool:
        return not self.merged_runs


class CentreFolder:
    """One centre's stored state: its segments, its dropped list, and the pointer (`current.json`) naming them."""

    def __init__(self, root: Path, centre_id: str) -> None:
        self.zones = Zones(root)
        self.centre_id = centre_id
        self.folder = self.zones.resources(centre_id)
        self.pointer = self.zones.current_pointer(centre_id)

    def _read(self) -> StatePointer:
        return StatePointer.read_if_present(self.pointer) or StatePointer()

    def merged_runs(self) -> list[str]:
        return list(self._read().runs)

    def segments(self) -> list[Path]:
        return [self.folder / name for name in self._read().segments]

    def dropped(self) -> Path | None:
        name = self._read().dropped
        return self.folder / name if name else None

    def counts(self) -> dict[str, dict[str, int]]:
        """What the merges in force counted, per resource type."""
        return self._read().counts

    def rows(self) -> tuple[int, int]:
        """How many stored rows are current, and how many are dropped."""
        pointer = self._read()
        return pointer.current_rows, pointer.dropped_rows

    def crowded(self) -> bool:
        """Whether reading the state costs more than it should: too many segments, or as many dropped rows as
        current ones (a full pull landed again, say)."""
        current_rows, dropped_rows = self.rows()
        return len(self.segments()) > MAX_SEGMENTS or 0 < dropped_rows >= current_rows

    def live_versions(self) -> set[tuple[str, str, str | None]]:
        """(type, id, lastUpdated) of every current resource, read on the driver (narrow columns only)."""
        dropped: set[tuple[str, int]] = set()
        if (listed := self.dropped()) is not None:
            table = pq.read_table(listed, columns=["seg", "row"])
            dropped = set(zip(table.column("seg").to_pylist(), table.column("row").to_pylist(), strict=True))
        versions = set()
        for segment in self.segments():
            table = pq.read_table(segment, columns=["resource_type", "id", "last_updated", "reason", "row"])
            name = segment.name.removeprefix("seg=")
            versions |= {(t, i, u) for t, i, u, reason, row in zip(*[c.to_pylist() for c in table.columns],
                                                                     strict=True)
                         if reason is None and (name, row) not in dropped}
        return versions

    def record_merged(self, run_ids: list[str]) -> None:
        """Record runs that changed nothing as merged, without writing a new version."""
        if not run_ids or not self.pointer.exists():
            return
        pointer = self._read()
        pointer.runs = sorted(set(pointer.runs) | set(run_ids))
        pointer.write(self.pointer)

    def unmerged(self, runs: list[LandedRun], schema_id: str, harmonisation: str) -> tuple[list[LandedRun], bool]:
        """Runs to merge, and whether the state is rebuilt from all of them (none yet, another schema, or codes
        or facts that mean something else now)."""
        pointer = self._read()
        rebuild = pointer.schema_id != schema_id or pointer.harmonisation != harmonisation
        done = set() if rebuild else set(pointer.runs)
        return [r for r in runs if r.run_id not in done], rebuild

    def switch(self, staged: Path, stamp: str, update: dict[str, Any], replace: bool) -> None:
        """Move the staged segment and dropped list in (either may be absent), point at them (beside the earlier
        segments unless they are replaced; with `update` to the pointer), then remove what the pointer no longer
        names."""
        pointer = self._read()
        self.folder.mkdir(parents=True, exist_ok=True)
        segments = [] if replace else list(pointer.segments)
        if (segment := staged / "segment" / f"centre_id={self.centre_id}").is_dir():
            segment.rename(self.folder / f"seg={stamp}")
            segments.append(f"seg={stamp}")
        dropped = None
        if (listed := staged / "dropped" / f"centre_id={self.centre_id}").is_dir():
            listed.rename(self.folder / f"dropped={stamp}")
            dropped = f"dropped={stamp}"
        pointer.model_copy(update={**update, "segments": segments, "dropped": dropped}).write(self.pointer)
        keep = {*segments, dropped}
        for entry in self.folder.iterdir():
            if entry.name.startswith(STORED) and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


class CurrentState:
    """The current resources of some centres of a zones root, and what a run does to them.

    Before Spark starts, a scheduled run asks `pending_changes` (is anything new landed?) and, when nothing is,
    `record_unchanged`; a transform `merge`s what landed and `read`s the current resources for its tables. Each
    centre's stored state is a `CentreFolder`."""

    def __init__(self, root: Path, centre_ids: Iterable[str]) -> None:
        self.root = Path(root)
        self.centres = {c: CentreFolder(self.root, c) for c in centre_ids}

    @property
    def centre_ids(self) -> tuple[str, ...]:
        return tuple(self.centres)

    def centre(self, centre_id: str) -> CentreFolder:
        return self.centres[centre_id]

    def unmerged_runs(self, centre_id: str) -> list[LandedRun]:
        """The centre's completed landing runs not merged yet, oldest first."""
        merged = set(self.centres[centre_id].merged_runs())
        return [r for r in completed_runs(self.root, centre_id) if r.run_id not in merged]

    def pending_changes(self, centre_id: str, resource_types: tuple[str, ...]) -> int:
        """Resource versions and deletions in the centre's unmerged runs that its state does not already reflect,
        counted on the driver without Spark: a scheduled run with nothing new stops in seconds (an incremental
        pull often lands only the versions at the watermark instant, which `_lastUpdated=ge` fetches again)."""
        runs = self.unmerged_runs(centre_id)
        if not runs:
            return 0
        known = self.centres[centre_id].live_versions()
        present = {(t, i) for t, i, _ in known}
        changes = 0
        for run in runs:
            for resource_type in resource_types:
                changes += sum(1 for key in _keys(run.path(resource_type), resource_type) if key not in known)
            changes += sum(1 for t, i, _ in _keys(run.path(TOMBSTONES), None) if (t, i) in present)
        return changes

    def record_unchanged(self) -> dict[str, list[str]]:
        """Mark each centre's unmerged runs as merged (they changed nothing); return their ids per centre."""
        recorded = {}
        for centre_id, folder in self.centres.items():
            recorded[centre_id] = [r.run_id for r in self.unmerged_runs(centre_id)]
            folder.record_merged(recorded[centre_id])
        return recorded

    def read(self, spark: SparkSession, facts: ResourceFacts) -> DataFrame:
        """The current resources of the centres: centre_id, resource_type, kind, id, version_id, last_updated,
        run_id, impossible, json (as landed), then their facts."""
        return _stored(spark, list(self.centres.values()), segment_schema(spark, facts)).drop("seg", "reason", "row")

    def merge(self, spark: SparkSession, resource_types: tuple[str, ...], lookup: CodeLookup, facts: ResourceFacts,
              transform_run: str) -> dict[str, MergeReport]:
        """Merge each centre's landed runs not merged yet into its current state, each resource with its kind and
        facts; write the quarantine; return the counts."""
        root, states = self.root, self.centres
        runs = {centre: completed_runs(root, centre) for centre in states}
        schema = segment_schema(spark, facts)
        layout = schema_id(schema)
        harmonisation = {centre: f"{lookup.fingerprint(centre)}-{facts.fingerprint(centre)}" for centre in states}
        plans = {centre: state.unmerged(runs[centre], layout, harmonisation[centre])
                 for centre, state in states.items()}
        reports = {centre: MergeReport(centre, [r.run_id for r in plans[centre][0]]) for centre in states}
        changing = [centre for centre in states if plans[centre][0]]
        if not changing:
            return reports
        new_runs = [r for c in changing for r in plans[c][0]]
        kept = [states[c] for c in changing if not plans[c][1]]  # states the new runs merge into (not rebuilt)
        stamp = _stamp()
        with staging_folder(Zones(root).resources_root, stamp) as staging:
            _parse(read_lines(spark, new_runs, list(resource_types)), lookup, facts).write.partitionBy(
                "centre_id").parquet(str(staging / "segment"))
            new_schema = StructType([*schema.fields, *_fields("centre_id string")])
            new = (spark.read.schema(new_schema).parquet(str(staging / "segment"))
                   if (staging / "segment").is_dir() else spark.createDataFrame([], new_schema))
            _fates(new.withColumn("seg", F.lit(stamp)), _stored(spark, kept, schema),
                   _tombstones(spark, new_runs)).write.parquet(
                str(staging / "fates"))  # narrow: read twice below
            fates = spark.read.parquet(str(staging / "fates"))
            observed = fates.groupBy("centre_id", "resource_type", "origin", "fate").count().collect()
            counts = _counts({(r["centre_id"], r["resource_type"], r["origin"], r["fate"]): r["count"]
                              for r in observed})
            dropped = fates.where(F.col("fate").isin("superseded", "deleted")).select("centre_id", "seg", "row")
            if kept:
                dropped = dropped.unionByName(_dropped(spark, kept))
            dropped.write.partitionBy("centre_id").parquet(str(staging / "dropped"))
            if any(counts.get(c, {}).get(t, {}).get("quarantined") for c in changing for t in resource_types):
                bad = new.where(F.col("reason").isNotNull())
                write_quarantine(bad.select("centre_id", F.col("run_id").alias("landing_run_id"), "resource_type",
                                            F.col("id").alias("resource_id"), "reason", "json"),
                                 root, "current", changing, transform_run)
            for centre in changing:
                report, state, rebuild = reports[centre], states[centre], plans[centre][1]
                report.counts = counts.get(centre, {})
                runs_in_force = set(report.merged_runs) | (set() if rebuild else set(state.merged_runs()))
                dropped_before = 0 if rebuild else state.rows()[1]
                state.switch(staging, stamp, {
                    "runs": sorted(runs_in_force), "counts": report.counts, "transform_run": transform_run,
                    "harmonisation": harmonisation[centre], "schema_id": layout,
                    "current_rows": sum(e["current"] + e["previous_kept"] for e in report.counts.values()),
                    "dropped_rows": dropped_before + sum(e["superseded"] + e["deleted"] + e["previous_replaced"]
                                                         + e["previous_deleted"] for e in report.counts.values())},
                    rebuild)
        crowded = [states[c] for c in changing if states[c].crowded()]
        if crowded:
            _compact(spark, crowded, schema)
        return reports


def segment_schema(spark: SparkSession, facts: ResourceFacts) -> StructType:
    """A segment's columns: the merge's (`SEGMENT_SCHEMA`), then the resources' facts."""
    return StructType([*_fields(SEGMENT_SCHEMA), *facts.schema(spark).fields])


def _fields(ddl: str) -> list[StructField]:
    schema = StructType.fromDDL(ddl)
    assert isinstance(schema, StructType)
    return schema.fields


def schema_id(schema: StructType) -> str:
    """What a pointer records of its segments' layout: another layout is rebuilt, not read."""
    return hashlib.sha256(schema.json().encode("utf-8")).hexdigest()[:16]


def _stored(spark: SparkSession, states: list[CentreFolder], schema: StructType) -> DataFrame:
    """The current rows of several centres in one scan of their segments (`schema`, a `segment_schema`):
    centre_id, seg, the segment's columns.

    One scan, not a union of one per centre: every table reads the states several times, and a scan per centre
    multiplied the plans Spark optimises and compiles. The schema is given, so nothing is inferred from footers
    and a centre id that looks like a number stays a string."""
    present = [s for s in states if s.segments()]
    if not present:
        return spark.createDataFrame([], StructType([*_fields("centre_id string, seg string"), *schema.fields]))
    base = str(present[0].zones.resources_root)
    folders = _fields("centre string, seg string")
    rows = (spark.read.schema(StructType([*schema.fields, *folders])).option("basePath", base)
            .parquet(*[str(p) for s in present for p in s.segments()])
            .where(F.col("reason").isNull()).withColumnRenamed("centre", "centre_id"))
    if not any(s.dropped() for s in present):
        return rows
    return rows.join(_dropped(spark, present), ["centre_id", "seg", "row"], "left_anti")


def _compact(spark: SparkSession, states: list[CentreFolder], schema: StructType) -> None:
    """Rewrite the states' current rows (their segments' `schema`) into one segment each, with no dropped list."""
    stamp = _stamp()
    with staging_folder(states[0].zones.resources_root, stamp) as staging:
        (_stored(spark, states, schema).drop("seg", "row").withColumn("row", F.monotonically_increasing_id())
         .write.partitionBy("centre_id").parquet(str(staging / "segment")))
        for state in states:
            state.switch(staging, stamp, {"dropped_rows": 0}, replace=True)


def _stamp() -> str:
    """A new segment's (and its staging folder's) name: later merges sort after earlier ones."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"


def _parse(lines: DataFrame, lookup: CodeLookup, facts: ResourceFacts) -> DataFrame:
    """Each landed line as it came, with its kind, why it is impossible (if it is), a number, and, for a line that
    is no resource of its stream, the reason; then its facts. The line is parsed (with the explicit schema) once,
    here: what the tables read of it are the facts, and the quarantine takes the line itself."""
    problem = (F.when(F.col("r.resourceType").isNull() | F.col("r.id").isNull(),
                      "unparseable JSON, or no resourceType or id")
               .when(F.col("r.resourceType") != F.col("resource_type"), "resourceType differs from its stream"))
    resources = (lines.select("centre_id", F.col("stream").alias("resource_type"), "run_id", "json",
                              parsed().alias("r")).withColumn("reason", problem).withColumn("kind", lookup.kind()))
    rows = (with_impossibility(resources)
            .select("centre_id", "resource_type", "kind", F.col("r.id").alias("id"),
                    F.col("r.meta.versionId").alias("version_id"), F.col("r.meta.lastUpdated").alias("last_updated"),
                    "run_id", "impossible", "reason", "json", F.monotonically_increasing_id().alias("row"), "r"))
    return rows.select(*[c for c in rows.columns if c != "r"], *facts.columns(lines.sparkSession))


def _fates(new: DataFrame, previous: DataFrame, tombstones: DataFrame) -> DataFrame:
    """The fate of every new row and every current row of the states merged into (centre_id, seg, row,
    resource_type, origin, fate), decided on their keys alone. A new line that is no resource (it has a reason)
    is quarantined and never outranks a version of the same id."""
    keys = ("centre_id", "seg", "row", "resource_type", "id", "version_id", "last_updated", "run_id", "reason")
    rows = new.select(*keys, F.lit("new").alias("origin")).unionByName(
        previous.select(*keys, F.lit("previous").alias("origin")))
    newest = Window.partitionBy("centre_id", "resource_type", "id").orderBy(
        F.col("reason").isNotNull(), F.col("last_updated").desc_nulls_last(), F.col("run_id").desc(),
        F.col("version_id").desc_nulls_last(), F.col("seg").desc(), F.col("row").desc())
    deleted = F.col("deleted_at").isNotNull() & (F.col("last_updated").isNull()
                                                 | (F.col("deleted_at") >= F.col("last_updated")))
    return (rows.withColumn("rank", F.row_number().over(newest))
            .join(F.broadcast(tombstones), ["centre_id", "resource_type", "id"], "left")
            .select("centre_id", "seg", "row", "resource_type", "origin",
                    F.when(F.col("reason").isNotNull(), "quarantined").when(F.col("rank") > 1, "superseded")
                    .when(deleted, "deleted").otherwise("current").alias("fate")))


def _dropped(spark: SparkSession, states: list[CentreFolder]) -> DataFrame:
    """The dropped lists in force of the states (centre_id, seg, row): dropped rows stay dropped."""
    listed = [str(p) for s in states if (p := s.dropped()) is not None]
    if not listed:
        return spark.createDataFrame([], "centre_id string, seg string, row bigint")
    return (spark.read.schema("seg string, row bigint, centre string, dropped string")
            .option("basePath", str(states[0].zones.resources_root)).parquet(*listed)
            .select(F.col("centre").alias("centre_id"), "seg", "row"))


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


def _keys(path: Path, resource_type: str | None) -> list[tuple[str, str, str | None]]:
    """(type, id, lastUpdated) of each landed line; unparseable lines count as changes (the merge quarantines
    them)."""
    keys = []
    for _, item in landed_items(path):
        try:
            meta = item.get("meta") or {}
            keys.append((resource_type or item["resourceType"], item["id"], meta.get("lastUpdated")))
        except (KeyError, TypeError, AttributeError):  # not JSON (None), not an object, no id
            keys.append(("", "", "unparseable"))
    return keys
