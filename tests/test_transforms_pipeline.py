"""The transform of a centre end to end: staging tables, quarantine, reconciliation, reruns."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from foundation.errors import CohortNotFound
from foundation.model import TABLES
from foundation.publication import publish
from foundation.secrets import Secret
from foundation.terminology import valueset
from foundation.zones import Snapshot
from tests.conftest import read_ndjson
from tests.test_transforms_roundtrip import LINKAGE, assert_same_table, truth
from transforms.pipeline import CentreSettings, TransformOptions, TransformReport, transform

SECRET = Secret("test-consortium-secret-0123456789")
Consortium = tuple[Path, dict[str, Any]]


def _land(folder: Path, root: Path, centre: str) -> None:
    with FilesSource(FilesSettings(folder=folder / "fhir")) as source:
        ingest(source, LandingZone(root, centre), progress=LogProgress())


def _transform(spark: SparkSession, root: Path, folder: Path, centre: str, run_id: str, with_maps: bool = True,
               shift_dates: bool = False) -> TransformReport:
    maps = tuple(sorted((folder / "conceptmaps").glob("*.json"))) if with_maps else ()
    return transform(spark, root, [CentreSettings(centre, maps)], SECRET, run_id,
                     TransformOptions(LINKAGE, shift_dates))[centre]


def _rows(spark: SparkSession, snapshot: Path | Snapshot, table: str) -> list[tuple[Any, ...]]:
    df = spark.read.parquet(str(Snapshot.at(snapshot).table(table))).drop("run_id")
    return sorted(tuple(map(str, r)) for r in df.collect())


def test_every_resource_is_used_and_tables_match_the_truth_counts(spark: SparkSession, demo_consortium: Consortium,
                                                                  tmp_path: Path) -> None:
    """All three centres (every dialect) in one transform, as `ilp run` does them."""
    centres = ("aurora", "borealis", "cascade")
    for centre in centres:
        _land(demo_consortium[0] / centre, tmp_path, centre)
    settings = [CentreSettings(c, tuple(sorted((demo_consortium[0] / c / "conceptmaps").glob("*.json"))))
                for c in centres]
    reports = transform(spark, tmp_path, settings, SECRET, "r1", TransformOptions(LINKAGE))
    for centre, report in reports.items():
        folder = demo_consortium[0] / centre
        for table in TABLES:
            assert report.rows[table.name] == pq.read_metadata(folder / "truth" / f"{table.name}.parquet").num_rows
        for resource_type, counts in report.reconciliation.items():
            assert counts.resources == counts.used + counts.quarantined, resource_type
            assert counts.quarantined == 0, f"{centre} {resource_type}: synthetic resources left unused"
        assert report.unmapped_codes == 0
        manifest = report.snapshot.manifest(centre)
        assert manifest.rows == report.rows
        steps = ["merge", *(t.name for t in TABLES), "reconcile"]  # where the run's time went, step by step
        assert sorted(manifest.timings) == sorted(f"{step}_seconds" for step in steps)
        assert all(seconds > 0 for seconds in manifest.timings.values())
    snapshot = reports["aurora"].snapshot
    for table in TABLES:
        assert set(spark.read.parquet(str(snapshot.table(table.name))).columns) == set(table.column_names)


def test_a_withheld_conceptmap_is_an_empty_cohort_whose_error_names_the_codes(
        spark: SparkSession, demo_consortium: Consortium, tmp_path: Path) -> None:
    """Borealis codes everything locally: without its ConceptMap no procedure means ILP, so no patient is in the
    cohort. That stops the transform, naming the codes to map, instead of publishing an empty centre."""
    folder = demo_consortium[0] / "borealis"
    _land(folder, tmp_path, "borealis")
    with pytest.raises(CohortNotFound) as raised:
        _transform(spark, tmp_path, folder, "borealis", "r1", with_maps=False)
    message = str(raised.value)
    assert "selects none of its 208 patients" in message and "a procedure of kind ilp" in message
    assert "http://borealis.example.org/fhir/CodeSystem/local-codes|B" in message
    assert not Snapshot.at(tmp_path / "cohort" / "snapshots" / "run=r1").table("patients").exists()


def test_codes_a_conceptmap_leaves_out_are_quarantined_and_reported(spark: SparkSession, demo_consortium: Consortium,
                                                                   tmp_path: Path) -> None:
    """A ConceptMap that maps borealis's procedures and conditions (the cohort is found) but nothing else."""
    folder = demo_consortium[0] / "borealis"
    _land(folder, tmp_path, "borealis")
    kept = {(c.system, c.code) for name in ("procedure", "condition") for cs in valueset(name).codings.values()
            for c in cs}
    maps = tmp_path / "maps"
    maps.mkdir()
    for path in sorted((folder / "conceptmaps").glob("*.json")):
        cmap = json.loads(path.read_text())
        for group in cmap["group"]:
            group["element"] = [e for e in group["element"]
                                if any((group["target"], t["code"]) in kept for t in e["target"])]
        (maps / path.name).write_text(json.dumps(cmap))
    report = transform(spark, tmp_path, [CentreSettings("borealis", tuple(sorted(maps.glob("*.json"))))], SECRET,
                       "r1", TransformOptions(LINKAGE))["borealis"]
    assert report.rows["patients"] == 208 and report.rows["perfusions"] > 0
    observations = report.reconciliation["Observation"]
    assert observations.used == 0 and observations.quarantined == observations.resources > 0
    quarantined = spark.read.parquet(str(tmp_path / "quarantine" / "stage=harmonise" / "centre=borealis" / "run=r1"))
    reasons = {r["reason"] for r in quarantined.select("reason").distinct().collect()}
    assert "code not in the canonical ValueSets or the centre's ConceptMaps" in reasons
    (report_file,) = (tmp_path / "quarantine" / "unmapped_codes" / "centre=borealis" / "run=r1").glob("*.csv")
    lines = list(csv.DictReader(report_file.open()))
    assert len(lines) == report.unmapped_codes > 5
    assert all(line["system"] == "http://borealis.example.org/fhir/CodeSystem/local-codes" for line in lines)
    own = ("Observation", "MedicationAdministration")  # of no kind: every one quarantined for its own code
    assert sum(int(line["resources"]) for line in lines if line["resource_type"] in own
               and line["element"] in ("code", "medicationCodeableConcept")) == sum(
        report.reconciliation[t].quarantined for t in own)
    assert {line["resource_type"] for line in lines} > set(own)  # used resources' unmapped elements are listed too


def test_a_cohort_less_than_half_the_published_one_stops_the_transform(
        spark: SparkSession, demo_consortium: Consortium, tmp_path: Path) -> None:
    """A ConceptMap that lost the lower-limb sarcoma codes (most of borealis's patients) after a publication."""
    folder = demo_consortium[0] / "borealis"
    _land(folder, tmp_path, "borealis")
    first = _transform(spark, tmp_path, folder, "borealis", "r1")
    publish(tmp_path, first.snapshot, tmp_path / "validation", 0, 0)
    maps = tmp_path / "maps"
    maps.mkdir()
    for path in sorted((folder / "conceptmaps").glob("*.json")):
        cmap = json.loads(path.read_text())
        for group in cmap["group"]:
            group["element"] = [e for e in group["element"] if not e["target"][0]["code"].startswith("C49.2")]
        (maps / path.name).write_text(json.dumps(cmap))
    with pytest.raises(CohortNotFound, match=r"borealis: the cohort has \d+ patients where .* published 208"):
        transform(spark, tmp_path, [CentreSettings("borealis", tuple(sorted(maps.glob("*.json"))))], SECRET, "r2",
                  TransformOptions(LINKAGE))


def test_reruns_leave_identical_tables(spark: SparkSession, demo_consortium: Consortium, tmp_path: Path) -> None:
    folder = demo_consortium[0] / "cascade"
    _land(folder, tmp_path, "cascade")
    first = _transform(spark, tmp_path, folder, "cascade", "r1")
    before = {t.name: _rows(spark, first.snapshot, t.name) for t in TABLES}
    again = _transform(spark, tmp_path, folder, "cascade", "r1")
    assert again.merged_runs == [] and {t.name: _rows(spark, again.snapshot, t.name) for t in TABLES} == before


@pytest.mark.cluster
def test_the_transform_runs_unchanged_on_separate_executor_jvms(spark: SparkSession, demo_consortium: Consortium,
                                                                tmp_path: Path) -> None:
    """local-cluster[2,1,1024] runs two executor JVMs: nothing may rely on state held by the driver."""
    folder = demo_consortium[0] / "cascade"
    _land(folder, tmp_path / "local", "cascade")
    shutil.copytree(tmp_path / "local", tmp_path / "cluster")
    local = _transform(spark, tmp_path / "local", folder, "cascade", "r1")
    key, linkage_key = tmp_path / "key", tmp_path / "linkage-key"
    key.write_text(SECRET.reveal())
    linkage_key.write_text(LINKAGE.secret.reveal())
    command = [sys.executable, "-m", "ilp", "transform", "--centre", "cascade", "--root", str(tmp_path / "cluster"),
               "--secret-file", str(key), "--identifier-system", LINKAGE.identifier_system,
               "--linkage-secret-file", str(linkage_key),
               "--spark-conf", "spark.master=local-cluster[2,1,1024]", "--spark-conf", "spark.executor.memory=768m"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (snapshot,) = (tmp_path / "cluster" / "cohort" / "snapshots").glob("run=*")
    for table in TABLES:
        assert _rows(spark, snapshot, table.name) == _rows(spark, local.snapshot, table.name), table.name


def test_shifted_dates_keep_every_interval_and_endpoint(spark: SparkSession, demo_consortium: Consortium,
                                                        tmp_path: Path) -> None:
    folder = demo_consortium[0] / "aurora"
    for variant in ("plain", "shifted"):
        _land(folder, tmp_path / variant, "aurora")
    plain = _transform(spark, tmp_path / "plain", folder, "aurora", "r1")
    shifted = _transform(spark, tmp_path / "shifted", folder, "aurora", "r1", shift_dates=True)
    a = {r["patient_id"]: r for r in spark.read.parquet(str(plain.snapshot.table("cohort"))).collect()}
    b = {r["patient_id"]: r for r in spark.read.parquet(str(shifted.snapshot.table("cohort"))).collect()}
    offsets = {p: (b[p]["diagnosis_date"] - a[p]["diagnosis_date"]).days for p in a}
    assert len(set(offsets.values())) > 20 and all(-365 <= d <= 365 for d in offsets.values())
    for p, row in a.items():
        for column in ("first_ilp_date", "resection_date", "death_date", "last_contact_date"):
            if row[column] is not None:
                assert (b[p][column] - row[column]).days == offsets[p], (p, column)
        for endpoint in ("os", "rfs", "lrfs", "mfs"):
            assert b[p][f"{endpoint}_months"] == row[f"{endpoint}_months"]
            assert b[p][f"{endpoint}_event"] == row[f"{endpoint}_event"]
    events = spark.read.parquet(str(shifted.snapshot.table("events"))).collect()
    plain_rows = spark.read.parquet(str(plain.snapshot.table("events"))).collect()
    plain_events = {r["event_id"]: r["event_date"] for r in plain_rows}
    assert all((e["event_date"] - plain_events[e["event_id"]]).days == offsets[e["patient_id"]] for e in events)


def test_a_transform_killed_mid_write_reruns_to_identical_tables(spark: SparkSession, demo_consortium: Consortium,
                                                                  tmp_path: Path) -> None:
    """SIGKILL the CLI (and its Spark JVM) while it writes the new state; nothing half-written is left visible,
    the next transform removes the killed one's staging folder, and its tables equal the ground truth."""
    folder = demo_consortium[0] / "cascade"
    _land(folder, tmp_path / "killed", "cascade")
    (tmp_path / "maps").mkdir()
    if (folder / "conceptmaps").is_dir():
        shutil.copytree(folder / "conceptmaps", tmp_path / "maps" / "cascade")
    key, linkage_key = tmp_path / "key", tmp_path / "linkage-key"
    key.write_text(SECRET.reveal())
    linkage_key.write_text(LINKAGE.secret.reveal())
    root = tmp_path / "killed"
    command = [sys.executable, "-m", "ilp", "transform", "--centre", "cascade", "--root", str(root),
               "--secret-file", str(key), "--identifier-system", LINKAGE.identifier_system,
               "--linkage-secret-file", str(linkage_key),
               "--conceptmaps", str(tmp_path / "maps")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not any((root / "resources").glob(".staging-*/*")) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the transform ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (root / "resources" / "centre=cascade" / "current.json").exists()  # the old state (none) holds
    assert list((root / "resources").glob(".staging-*.owner"))  # the killed run's staging, with its owner
    rerun = _transform(spark, root, folder, "cascade", "after-the-kill").snapshot  # in this JVM: no second start
    assert not list((root / "resources").glob(".staging-*"))  # the rerun removed what the killed run left
    for table in TABLES:
        assert_same_table(spark.read.parquet(str(rerun.table(table.name))).select(*table.column_names),
                          truth(folder, table.name, "cascade"), table.name)


def _revise(resource: dict[str, Any], change: Any) -> dict[str, Any]:
    """A newer version of `resource`, changed in place by `change`."""
    revised = json.loads(json.dumps(resource))
    change(revised)
    revised["meta"] = {"versionId": "2", "lastUpdated": "2030-01-01T00:00:00Z"}
    return revised


def test_internally_impossible_resources_are_quarantined_with_why(spark: SparkSession, demo_consortium: Consortium,
                                                                  tmp_path: Path) -> None:
    """An update that makes a resource impossible takes it out of the tables and into quarantine with the reason,
    not into the tables as nulls."""
    folder = demo_consortium[0] / "aurora"
    _land(folder, tmp_path, "aurora")
    procedures, observations = read_ndjson(folder / "fhir" / "Procedure.ndjson"), read_ndjson(
        folder / "fhir" / "Observation.ndjson")
    ilp = next(p for p in procedures if p["code"]["coding"][0]["code"] == "4019656" and "performedPeriod" in p)
    size = next(o for o in observations if o.get("component") and "valueQuantity" in o["component"][0])
    dated = next(o for o in observations if o.get("effectiveDateTime") and o["id"] != size["id"])
    revised = {
        ilp["id"]: _revise(ilp, lambda p: p["performedPeriod"].update(end="2000-01-01T10:00:00Z")),
        size["id"]: _revise(size, lambda o: o["component"][0]["valueQuantity"].update(value=-17.4)),
        dated["id"]: _revise(dated, lambda o: o.update(effectiveDateTime="2011-02-30")),
    }
    changes = tmp_path / "changes"
    changes.mkdir()
    (changes / "Procedure.ndjson").write_text(json.dumps(revised[ilp["id"]]) + "\n")
    (changes / "Observation.ndjson").write_text("".join(json.dumps(revised[i]) + "\n"
                                                        for i in (size["id"], dated["id"])))
    with FilesSource(FilesSettings(folder=changes)) as source:
        ingest(source, LandingZone(tmp_path, "aurora"), progress=LogProgress())
    report = _transform(spark, tmp_path, folder, "aurora", "r1")
    quarantined = {r["resource_id"]: r["reason"] for r in spark.read.parquet(
        str(tmp_path / "quarantine" / "stage=harmonise" / "centre=aurora" / "run=r1")).collect()}
    assert quarantined[ilp["id"]] == "internally impossible: performedPeriod ends before it starts"
    assert quarantined[size["id"]] == "internally impossible: component.valueQuantity.value is negative"
    assert quarantined[dated["id"]] == "internally impossible: effectiveDateTime is not a valid date"
    assert report.rows["perfusions"] == pq.read_metadata(folder / "truth" / "perfusions.parquet").num_rows - 1
    for resource_type, counts in report.reconciliation.items():
        assert counts.resources == counts.used + counts.quarantined, resource_type
    assert sum(c.quarantined for c in report.reconciliation.values()) == len(quarantined)
