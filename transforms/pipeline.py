"""The transform: landing -> current state -> canonical tables in a staging snapshot, for one or many centres.

All centres of a run go through one Spark plan per step (merge, each table, reconciliation) and are written
partitioned by centre: a Spark job's fixed cost, not the data, is most of a small centre's transform, so doing
the centres together is what makes the transform fast. Nothing in the plan is specific to one centre except
through the rows' `centre_id` (the ConceptMaps too), so the same code runs on a cluster.

Every current resource about a patient of the cohort (`transforms.scope`) ends up used by some canonical row or
quarantined with a reason (its code means nothing in the canonical ValueSets or its centre's ConceptMaps, or it
means something no table uses); the rest is out of the cohort's scope, so per centre and type
`resources = used + quarantined + out_of_scope`; the counts, with the merge's, go to each centre's manifest in the
snapshot. The unmapped-codes report lists system, code, display and how many resources each cost.

Snapshots are written under `cohort/snapshots/run=<id>/` (validation and publication are the expectations
stage's); a rerun of the same run id rewrites the same snapshot, so crashes leave nothing half-used.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from foundation.cohort import REFERENCE_STUDY, CohortDefinition
from foundation.completeness import WrittenCompleteness, gap_warning, gaps
from foundation.errors import CohortNotFound, ConfigError
from foundation.manifests import Reconciled, SnapshotManifest
from foundation.model import BY_NAME, DEFAULT_ENDPOINTS, RESOURCE_TYPES, Endpoint
from foundation.progress import steps as progress_steps
from foundation.publication import read_pointer
from foundation.secrets import Secret
from foundation.terminology import ConceptMapIndex
from foundation.zones import Snapshot, Zones
from transforms.codes import KIND_VALUESETS, CodeLookup
from transforms.current import CurrentState
from transforms.facts import FACT_KEYS, TRACE_KEYS, ResourceFacts
from transforms.landed import LandedRun, completed_runs
from transforms.pseudonym import Linkage, check_secrets, date_shift_days
from transforms.quarantine import write_quarantine
from transforms.scope import cohort_found, describe_procedures, near_misses, qualifying_codes
from transforms.tables import BASE_TABLES
from transforms.tables.cohort import build_cohort
from transforms.tables.links import linked
from transforms.terminology import centre_conceptmaps
from transforms.traces import unknown_extensions, unmapped_element_codes
from transforms.view import ResourceView
from transforms.views.catalogue import Catalogue, CentreOverrides

UNMAPPED = "code not in the canonical ValueSets or the centre's ConceptMaps"
IMPOSSIBLE = "internally impossible: "
UNUSED = "no canonical table uses this resource"
# The unmapped-codes report: `element` is the resource's own code (`code`, `medicationCodeableConcept`) or the
# view column a code was read from (`observation.disease_status`).
UNMAPPED_COLUMNS = ("resource_type", "element", "system", "code", "display", "resources", "resources_left_unmapped")


@dataclass(frozen=True)
class CentreSettings:
    centre_id: str
    conceptmaps: tuple[Path, ...] = ()  # ConceptMap JSON files
    conceptmaps_from_source: bool = False  # also the ConceptMaps landed from the centre's source
    views: CentreOverrides = field(default_factory=dict)  # view -> column -> FHIRPath, where the centre differs
    # A centre none of whose patients the cohort definition selects is an error (a code it cannot map, say),
    # unless it is expected: a centre that has no patient of the study yet.
    cohort_may_be_empty: bool = False


@dataclass(frozen=True)
class TransformOptions:
    linkage: Linkage | None = None  # opt-in: one pseudonym for a person at every centre (see transforms.pseudonym)
    shift_dates: bool = False  # move each patient's dates by a keyed offset (intervals and endpoints unchanged)
    endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS
    cohort: CohortDefinition = REFERENCE_STUDY  # who is in the study; resources of other patients are out of scope
    # A centre's cohort less than half the published one's is an error (a ConceptMap lost, a code changed) unless
    # this says it is expected (patients withdrawn, a narrower definition).
    accept_smaller_cohort: bool = False


@dataclass
class TransformReport:
    centre_id: str
    run_id: str
    snapshot: Snapshot
    merged_runs: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, Reconciled] = field(default_factory=dict)
    unmapped_codes: int = 0
    unknown_extensions: int = 0
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the transform made of the centre, for the log: one line, then a line per warning."""
        quarantined = sum(c.quarantined for c in self.reconciliation.values())
        outside = sum(c.out_of_scope for c in self.reconciliation.values())
        return [f"{self.centre_id}: transformed {self.rows.get('cohort', 0)} patients, {quarantined} resources "
                f"quarantined, {outside} out of the cohort's scope, {self.unmapped_codes} unmapped codes, "
                f"{self.unknown_extensions} extensions no view reads -> {self.snapshot.folder}",
                *[f"warning: {w}" for w in self.warnings]]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def check_landed(root: Path, centre_ids: list[str]) -> dict[str, list[LandedRun]]:
    """Each centre's completed landed runs; a usage error, before any Spark work, where a centre has neither
    landed data nor a merged state to transform."""
    zones = Zones(root)
    landed = {c: completed_runs(root, c) for c in centre_ids}
    missing = [c for c in centre_ids if not landed[c] and not zones.current_pointer(c).exists()]
    if missing:
        raise ConfigError(f"nothing landed yet for {', '.join(missing)} under {zones.landing_root}: run `ilp "
                          "ingest` (or `ilp run`) for them first")
    return landed


def transform(spark: SparkSession, root: Path, centres: list[CentreSettings], secret: Secret, run_id: str,
              options: TransformOptions = TransformOptions()) -> dict[str, TransformReport]:
    """Transform the centres into the run's snapshot; return each centre's report."""
    check_secrets(secret, options.linkage)
    zones = Zones(root)
    ids = [c.centre_id for c in centres]
    landed = check_landed(root, ids)
    maps = {c.centre_id: centre_conceptmaps(c.conceptmaps, landed[c.centre_id], c.conceptmaps_from_source)
            for c in centres}
    lookup = CodeLookup({c: ConceptMapIndex.from_resources(m.resources) for c, m in maps.items()})
    with progress_steps(f"transform {run_id}", len(BASE_TABLES) + 3, spark) as steps:
        facts = ResourceFacts(Catalogue({c.centre_id: c.views for c in centres}),
                              options.linkage.identifier_system if options.linkage else None)
        state = CurrentState(root, ids)
        with steps.step("merge"):
            merges = state.merge(spark, RESOURCE_TYPES, lookup, facts, run_id)
        with ResourceView.load(spark, state, lookup, secret, facts, options.cohort, options.linkage) as view:
            scope = view.scope_counts()
            inside = sum(n for counts in scope.values() for (_, in_scope), n in counts.items() if in_scope)
            if sum(n for counts in scope.values() for n in counts.values()) > 2 * inside:
                view.keep_in_scope_in_memory()  # most of what is stored is out of scope: read the cohort once
            _check_cohort(view, centres, scope, options)
            _check_not_shrunk(zones, scope, options)
            missed = near_misses(view.marked, options.cohort, view.members)
            codes = qualifying_codes(view.resources, options.cohort, view.members)
            snapshot = zones.snapshot(run_id)
            completeness = WrittenCompleteness(ids)
            written: dict[str, DataFrame] = {}
            for name, build in BASE_TABLES.items():
                with steps.step(name):
                    table = build(view, run_id)
                    if options.shift_dates:
                        table = _shift_dates(table, name, secret)
                    written[name] = _write(spark, table, snapshot, name, completeness)
            with steps.step("cohort"):
                written["cohort"] = _write(spark, build_cohort(written, options.endpoints, run_id), snapshot, "cohort",
                                           completeness)
            reports = {c: TransformReport(c, run_id, snapshot, merges[c].merged_runs) for c in ids}
            with steps.step("reconcile"):
                reconciliation, unmapped, extensions = _reconcile(zones, view, written, run_id)
                counts = completeness.counts()
                missing_columns = gaps(counts)
    for settings in centres:
        centre, report = settings.centre_id, reports[settings.centre_id]
        report.rows = {name: counts.get(centre, {}).get(name, {}).get("rows", 0) for name in written}
        report.reconciliation = _with_out_of_scope(reconciliation.get(centre, {}), scope[centre])
        report.unmapped_codes = unmapped.get(centre, 0)
        report.unknown_extensions = _write_extensions(zones, centre, run_id,
                                                      [r for r in extensions if r["centre_id"] == centre])
        report.warnings = [gap_warning(centre, c, counts) for c in missing_columns.get(centre, [])]
        found = cohort_found(centre, options.cohort, scope[centre], missed.get(centre, 0), codes.get(centre, {}))
        SnapshotManifest(
            run_id=run_id, centre_id=centre, merged_landing_runs=report.merged_runs,
            merge_counts=state.centre(centre).counts(), rows=report.rows,
            reconciliation=report.reconciliation, unmapped_codes=report.unmapped_codes,
            unknown_extensions=report.unknown_extensions,
            endpoints=[e.name for e in options.endpoints], cohort=found, dates_shifted=options.shift_dates,
            conceptmaps=maps[centre].sources,
            conceptmaps_rejected=maps[centre].rejected,
            completeness={t: dict(c) for t, c in counts.get(centre, {}).items()},
            gaps=missing_columns.get(centre, []), warnings=report.warnings,
            timings={f"{step}_seconds": round(seconds, 3) for step, seconds in steps.timings.items()},
            finished_at=datetime.now(UTC).isoformat()).write(snapshot.manifest_path(centre))
        if "warning" in found:  # in the log, beside the gaps (the manifest keeps it with the cohort)
            report.warnings.append(found["warning"])
    return reports


def _check_cohort(view: ResourceView, centres: list[CentreSettings], scope: dict[str, dict[tuple[str, bool], int]],
                  options: TransformOptions) -> None:
    """Stop before any table is written when the definition selects none of a centre's patients (unless that is
    expected of the centre): an empty publication would hide a code nobody mapped."""
    cohort = options.cohort
    for settings in centres:
        counts = scope[settings.centre_id]
        if counts.get(("Patient", True)) or settings.cohort_may_be_empty:
            continue
        patients = counts.get(("Patient", False), 0)
        raise CohortNotFound(f"{settings.centre_id}: the cohort definition ({cohort.describe()}) selects none of its "
                             f"{patients} patients. {describe_procedures(view.marked, settings.centre_id)} Map the "
                             "centre's code for the procedure to its kind in the centre's ConceptMap "
                             "(docs/onboarding.md), or set cohort_may_be_empty = true for a centre that has no "
                             "patient of the study yet")


def _check_not_shrunk(zones: Zones, scope: dict[str, dict[tuple[str, bool], int]], options: TransformOptions) -> None:
    """Stop when a centre's cohort is less than half of what is published for it under the same definition: what
    changed is more likely a lost ConceptMap or a recoded procedure than half the patients withdrawn."""
    pointer = read_pointer(zones.root)
    if pointer is None or options.accept_smaller_cohort:
        return
    published = Snapshot(zones.cohort / pointer.snapshot)
    for centre, counts in scope.items():
        if not published.manifest_path(centre).exists():
            continue
        before = published.manifest(centre)
        previous, now = before.rows.get("cohort", 0), counts.get(("Patient", True), 0)
        same = before.cohort.get("definition", options.cohort.as_record()) == options.cohort.as_record()
        if same and now * 2 < previous:
            raise CohortNotFound(
                f"{centre}: the cohort has {now} patients where {pointer.snapshot} published {previous} under the "
                f"same definition ({options.cohort.describe()}); {counts.get(('Patient', False), 0)} of the centre's "
                "patients are now out of its scope. A ConceptMap that no longer maps the procedure, or a recoded "
                "procedure, would do this: check the centre's landed ConceptMaps and codes (ilp profile). If the "
                "patients were withdrawn, rerun with --accept-smaller-cohort")


def _with_out_of_scope(reconciled: dict[str, Reconciled],
                       scope: dict[tuple[str, bool], int]) -> dict[str, Reconciled]:
    """The reconciliation of the resources in scope, with those out of scope added: resources = used +
    quarantined + out_of_scope per type."""
    counts = dict(reconciled)
    for (resource_type, in_scope), count in scope.items():
        if in_scope:
            continue
        entry = counts.get(resource_type, Reconciled(resources=0, used=0, quarantined=0))
        counts[resource_type] = entry.model_copy(update={"resources": entry.resources + count,
                                                         "out_of_scope": count})
    return dict(sorted(counts.items()))


def _write(spark: SparkSession, table: DataFrame, snapshot: Snapshot, name: str,
           completeness: WrittenCompleteness) -> DataFrame:
    """Conform a table to the model's types, write the centres' partitions (replacing them on a rerun), count
    its values from the files written, and read them back, so the next step reads what this one wrote."""
    model, centres = BY_NAME[name], completeness.centres
    for centre in centres:
        shutil.rmtree(snapshot.partition(name, centre), ignore_errors=True)
    conformed = table.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in model])
    conformed.write.mode("overwrite").partitionBy("centre_id").parquet(str(snapshot.table(name)))
    parts = {c: p for c in centres if (p := snapshot.partition(name, c)).is_dir()}
    if not parts:  # no centre has a row
        return spark.createDataFrame([], model.spark_ddl())
    written = (spark.read.option("basePath", str(snapshot.table(name))).parquet(*map(str, parts.values()))
               .select(*model.column_names))
    completeness.count(name, parts, written)
    return written


def _shift_dates(table: DataFrame, name: str, secret: Secret) -> DataFrame:
    """Every date column moved by the patient's keyed offset (the cohort, built from these, follows)."""
    offset = date_shift_days(secret, F.col("patient_id"))
    dates = [c.name for c in BY_NAME[name] if c.type == "date"]
    return table.select(*[F.date_add(F.col(c), offset).alias(c) if c in dates else F.col(c) for c in table.columns])


def _reconcile(zones: Zones, view: ResourceView, tables: dict[str, DataFrame],
               run_id: str) -> tuple[dict[str, dict[str, Reconciled]], dict[str, int], list[Any]]:
    """Quarantine every current resource no table used, with why; return per-centre, per-type counts, the
    number of unmapped codes per centre (whose report is written here) and the extension URLs no view reads."""
    used = (tables["cohort"].select("centre_id", F.explode("source_resource_ids").alias("ref")).distinct()
            .withColumn("used", F.lit(True)))
    unmapped = F.col("resource_type").isin(*KIND_VALUESETS) & F.col("kind").isNull()
    # A reason of its own: no table reads an impossible resource or one of no kind, so it holds used or not.
    own_reason = (F.when(F.col("impossible").isNotNull(), F.concat(F.lit(IMPOSSIBLE), F.col("impossible")))
                  .when(unmapped, UNMAPPED))
    # Every resource's stored facts in one scan (a union of a scan per type cost 4 s more at 20,000 patients). Not
    # cached: each scan below reads only the flat columns it needs, cheaper than caching them (caching the narrow
    # read and the labels cost 3 s of the step's 5 at 20,000 patients).
    read = view.read_all().select(*FACT_KEYS, *TRACE_KEYS).withColumn("own_reason", own_reason)
    resources = _with_reasons(read.join(used, ["centre_id", "ref"], "left"), "quarantined_whole",
                              _parts_of_quarantined(view, read))
    unused = view.unused_reasons()  # few: the resources a link could not place
    resources = _with_reasons(resources, "unused_reason", None if unused is None else F.broadcast(unused))
    reason = F.when(F.col("used"), None).otherwise(F.coalesce("own_reason", F.when(
        F.col("quarantined_whole").isNotNull(),
        F.concat(F.lit("part of "), F.col("quarantined_whole"), F.lit(", which is quarantined")))
        .when(F.col("unused_reason").isNotNull(), F.col("unused_reason")).otherwise(UNUSED)))
    labelled = resources.withColumn("reason", reason).select(
        "centre_id", "resource_type", "kind", "id", "run_id", "reason", unmapped.alias("unmapped"))
    counts: dict[str, dict[str, Reconciled]] = {}
    quarantined: set[tuple[str, str | None]] = set()  # (type, kind) of the resources quarantined
    any_unmapped = False
    for row in labelled.groupBy("centre_id", "resource_type", "kind", F.col("reason").isNull().alias("ok"),
                                "unmapped").count().collect():
        entry = counts.setdefault(row["centre_id"], {}).setdefault(
            row["resource_type"], Reconciled(resources=0, used=0, quarantined=0))
        entry.resources += row["count"]
        any_unmapped = any_unmapped or row["unmapped"]
        if row["ok"]:
            entry.used += row["count"]
        else:
            entry.quarantined += row["count"]
            quarantined.add((row["resource_type"], row["kind"]))
    _quarantine_unused(zones.root, view, labelled.where(F.col("reason").isNotNull()), quarantined, run_id)
    unmapped_codes = unmapped_element_codes(view)
    if any_unmapped:
        unmapped_codes = unmapped_codes.unionByName(_unmapped_kind_codes(read.where(unmapped)))
    codes = unmapped_codes.collect()  # one row per unmapped code: small
    extensions = unknown_extensions(view).collect()
    return counts, {c: _write_unmapped(zones, c, run_id, [r for r in codes if r["centre_id"] == c])
                    for c in view.centres}, extensions


def _with_reasons(resources: DataFrame, column: str, reasons: DataFrame | None) -> DataFrame:
    """`resources` with `column` from `reasons` (centre_id, ref, column), null where it has none (or there are
    none at all: no join)."""
    if reasons is None:
        return resources.withColumn(column, F.lit(None).cast("string"))
    return resources.join(reasons, ["centre_id", "ref"], "left")


def _unmapped_kind_codes(unmapped: DataFrame) -> DataFrame:
    """The unmapped-codes report's rows for the codes that give resources their kind, from the resources of no
    kind (their `own_codings`)."""
    element = F.create_map(*[F.lit(x) for t, (_, e) in KIND_VALUESETS.items() for x in (t, e)])
    return (unmapped.select("centre_id", "resource_type", "id", F.explode_outer("own_codings").alias("c"))
            .groupBy("centre_id", "resource_type", F.try_element_at(element, F.col("resource_type")).alias("element"),
                     F.col("c.system").alias("system"), F.col("c.code").alias("code"))
            .agg(F.max("c.display").alias("display"), F.countDistinct("id").alias("resources"))
            .withColumn("resources_left_unmapped", F.col("resources")))


def _parts_of_quarantined(view: ResourceView, resources: DataFrame) -> DataFrame | None:
    """(centre_id, ref, quarantined_whole): resources that point (`partOf`, `focus`) at a resource quarantined for
    a reason of its own, and which one. The drugs of an impossible ILP are unused because of it: say so. None when
    no resource is quarantined for a reason of its own (the usual case: the links' join cost 3 s of 8 at 20,000
    patients)."""
    wholes = resources.where(F.col("own_reason").isNotNull()).select(
        F.col("local_id").alias("target_id"), F.col("ref").alias("quarantined_whole"))
    if wholes.isEmpty():
        return None
    observations = view.facts("Observation").select("centre_id", "ref", F.concat("part_of", "focus").alias("to"))
    drugs = view.facts("MedicationAdministration").select("centre_id", "ref", F.col("part_of").alias("to"))
    links = linked(observations.unionByName(drugs), "to")
    return (links.join(wholes, "target_id").groupBy("centre_id", "ref")
            .agg(F.min("quarantined_whole").alias("quarantined_whole")))


def _quarantine_unused(root: Path, view: ResourceView, unused: DataFrame, partitions: set[tuple[str, str | None]],
                       run_id: str) -> None:
    """Quarantine the unused resources with their JSON as landed, reading it only from the rows of the types and
    kinds (`partitions`) that hold one (most resources are used)."""
    where = reduce(Column.__or__, [(F.col("resource_type") == t) & F.col("kind").eqNullSafe(F.lit(k))
                                   for t, k in sorted(partitions, key=str)], F.lit(False))
    landed = view.resources.where(where).select("centre_id", "resource_type", "id", "json")
    write_quarantine(unused.join(landed, ["centre_id", "resource_type", "id"]).select(
        "centre_id", F.col("run_id").alias("landing_run_id"), "resource_type", F.col("id").alias("resource_id"),
        "reason", "json"), root, "harmonise", view.centres, run_id)


def _write_extensions(zones: Zones, centre_id: str, run_id: str, rows: list[Any]) -> int:
    """The centre's list of extension URLs no view reads (CSV, commonest first); returns how many it lists."""
    folder = zones.unknown_extensions(centre_id, run_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with (folder / "unknown_extensions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["resource_type", "url", "resources"])
        writer.writerows([r["resource_type"], r["url"], r["resources"]]
                         for r in sorted(rows, key=lambda r: (-r["resources"], r["resource_type"], r["url"])))
    return len(rows)


def _write_unmapped(zones: Zones, centre_id: str, run_id: str, rows: list[Any]) -> int:
    """The centre's unmapped-codes report (CSV, costliest code first); returns how many codes it lists."""
    folder = zones.unmapped_codes(centre_id, run_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ordered = sorted(rows, key=lambda r: (-r["resources_left_unmapped"], -r["resources"], r["resource_type"],
                                          r["element"], r["system"] or "", r["code"] or ""))
    with (folder / "unmapped_codes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(UNMAPPED_COLUMNS)
        writer.writerows([r[c] for c in UNMAPPED_COLUMNS] for r in ordered)
    return len(ordered)

