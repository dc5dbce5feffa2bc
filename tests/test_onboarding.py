"""Onboarding a centre coded where the views do not look (dorado): before its overrides, every value the views
miss leaves a named trace, in the transform's outputs, the audit and `ilp profile`, never a silent null.

Dorado keeps ILP level and limb sparing in its own extensions, sends tumour size without focus, and codes the
kind of progression in `Observation.method` with a local code. Here its configuration reads `method` (so the
code is looked up) but has no ConceptMap for it, and one patient gets a second primary tumour (so the size
without focus cannot be linked by subject). Aurora, coded as the views expect, is transformed beside it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from demo.synth import DEMO_SEED, generate
from demo.synth.profiles import DORADO
from expectations.validate import validate_snapshot
from foundation.completeness import WrittenCompleteness, filled
from foundation.manifests import SnapshotManifest
from foundation.model import TABLES
from foundation.secrets import Secret
from foundation.zones import Zones
from tests.conftest import read_ndjson
from transforms.pipeline import CentreSettings, TransformOptions, transform
from transforms.profile import profile_centres

SECRET = Secret("test-consortium-secret-0123456789")
SITE = "https://dorado.example.org/fhir"
READ_METHOD = {"observation": {"disease_status": "value.ofType(CodeableConcept).coding | method.coding"}}


@pytest.fixture(scope="module")
def dorado(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dorado's synthetic FHIR, with a second primary tumour for its first patient and its first drug (which has
    no partOf, as all dorado's) given on a day without ILP."""
    out = tmp_path_factory.mktemp("dorado")
    generate([DORADO], DEMO_SEED, out)
    folder = out / "dorado" / "fhir"
    conditions = read_ndjson(folder / "Condition.ndjson")
    second = {**conditions[0], "id": f"{conditions[0]['id']}-second"}
    with (folder / "Condition.ndjson").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(second) + "\n")
    drugs = read_ndjson(folder / "MedicationAdministration.ndjson")
    drugs[0]["effectiveDateTime"] = "2001-02-03T10:00:00Z"
    (folder / "MedicationAdministration.ndjson").write_text("".join(json.dumps(d) + "\n" for d in drugs))
    return folder


@pytest.fixture(scope="module")
def zones(spark: SparkSession, dorado: Path, demo_consortium: tuple[Path, dict[str, Any]],
          tmp_path_factory: pytest.TempPathFactory) -> Zones:
    root = tmp_path_factory.mktemp("zones")
    for centre, folder in (("aurora", demo_consortium[0] / "aurora" / "fhir"), ("dorado", dorado)):
        with FilesSource(FilesSettings(folder=folder)) as source:
            ingest(source, LandingZone(root, centre), progress=LogProgress())
    transform(spark, root, _centres(), SECRET, "r1")
    return Zones(root)


def _centres() -> list[CentreSettings]:
    return [CentreSettings("aurora"), CentreSettings("dorado", views=READ_METHOD)]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _reasons(zones: Zones) -> dict[str, str]:
    """Quarantined resource -> reason, for dorado's transform."""
    table = pq.read_table(zones.quarantine("harmonise", "dorado", "r1")).to_pylist()
    return {f"{r['resource_type']}/{r['resource_id']}": r["reason"] for r in table}


def test_extensions_no_view_reads_are_listed_with_type_and_count(zones: Zones, dorado: Path) -> None:
    rows = _csv(zones.unknown_extensions("dorado", "r1") / "unknown_extensions.csv")
    procedures = read_ndjson(dorado / "Procedure.ndjson")
    urls = (f"{SITE}/StructureDefinition/perfusion-level", f"{SITE}/StructureDefinition/limb-preserved")
    carrying = {url: sum(any(e["url"] == url for e in p.get("extension", [])) for p in procedures) for url in urls}
    listed = {(r["resource_type"], r["url"]): int(r["resources"]) for r in rows}
    assert {key: n for key, n in listed.items() if key[1].startswith(SITE)} == {
        ("Procedure", url): n for url, n in carrying.items()}
    assert all(carrying.values())
    # The standard centre's unread extensions (mCODE ones no canonical column needs) are dorado's too.
    aurora = {(r["resource_type"], r["url"]) for r in _csv(zones.unknown_extensions("aurora", "r1") /
                                                             "unknown_extensions.csv")}
    assert aurora and aurora <= set(listed)


def test_columns_empty_here_and_filled_elsewhere_warn_in_the_manifest_and_the_audit(
        spark: SparkSession, zones: Zones) -> None:
    manifest = SnapshotManifest.read(zones.snapshot("r1").manifest_path("dorado"))
    warned = set(manifest.gaps)
    assert len(manifest.warnings) == len(warned)
    assert {"perfusions.ilp_level", "treatments.limb_sparing", "cohort.local_relapse_date"} <= warned
    assert manifest.completeness["perfusions"]["ilp_level"] == 0 < manifest.completeness["perfusions"]["rows"]
    aurora = SnapshotManifest.read(zones.snapshot("r1").manifest_path("aurora"))
    assert aurora.completeness["perfusions"]["ilp_level"] == aurora.completeness["perfusions"]["rows"]
    report = validate_snapshot(spark, zones.root, zones.snapshot("r1"))
    findings = [f for f in report.findings if f.suite == "completeness"]
    assert len(findings) == 1, [f.line() for f in findings]
    (finding,) = findings
    assert finding.column == "empty_at_dorado" and finding.severity == "warning"
    assert finding.unexpected_count == len(warned)  # a warning: it does not block publication


def test_the_counts_read_from_the_written_files_are_those_spark_counts_in_the_tables(
        spark: SparkSession, zones: Zones) -> None:
    snapshot = zones.snapshot("r1")
    written = filled({t.name: spark.read.parquet(str(snapshot.table(t.name))) for t in TABLES})
    for centre in ("aurora", "dorado"):
        assert SnapshotManifest.read(snapshot.manifest_path(centre)).completeness == written[centre]
    assert written["dorado"]["perfusions"]["rows"] > 0


def test_files_that_keep_no_null_counts_are_counted_by_spark(spark: SparkSession, zones: Zones,
                                                              tmp_path: Path) -> None:
    table = zones.snapshot("r1").table("tumours")
    parts = {}
    for centre in ("aurora", "dorado"):  # the same rows, written without column statistics
        parts[centre] = tmp_path / "tumours" / f"centre_id={centre}"
        parts[centre].mkdir(parents=True)
        pq.write_table(pq.read_table(table / f"centre_id={centre}"), parts[centre] / "part.parquet",
                       write_statistics=False)
    assert pq.read_metadata(parts["aurora"] / "part.parquet").row_group(0).column(0).statistics is None
    counted = WrittenCompleteness(["aurora", "dorado"])
    counted.count("tumours", parts, spark.read.parquet(str(tmp_path / "tumours")))
    expected = filled({"tumours": spark.read.parquet(str(table))})
    assert counted.counts() == expected and expected["dorado"]["tumours"]["rows"] > 0


def test_a_code_the_views_look_up_that_means_nothing_is_reported_with_its_element(zones: Zones) -> None:
    rows = _csv(zones.unmapped_codes("dorado", "r1") / "unmapped_codes.csv")
    (method,) = [r for r in rows if r["code"] == "LOC"]
    assert method["element"] == "observation.disease_status"
    assert method["system"] == f"{SITE}/CodeSystem/progression"
    assert int(method["resources"]) > 0 and method["resources_left_unmapped"] == "0"  # "worsened" still means


def test_quarantine_reasons_say_what_link_or_value_was_missing(zones: Zones, dorado: Path) -> None:
    reasons = _reasons(zones)
    observations = read_ndjson(dorado / "Observation.ndjson")
    relapses = [o for o in observations if "method" in o and o["method"]["coding"][0]["code"] == "LOC"]
    assert relapses
    for relapse in relapses:
        assert reasons[f"Observation/{relapse['id']}"].startswith(
            "disease status worsened is not a local recurrence in what the observation view's disease_status "
            "column reads"), reasons[f"Observation/{relapse['id']}"]
    first = read_ndjson(dorado / "Condition.ndjson")[0]["subject"]["reference"]
    (size,) = [o for o in observations if o["subject"]["reference"] == first and "focus" not in o
               and o.get("valueQuantity", {}).get("unit") == "mm"]
    assert reasons[f"Observation/{size['id']}"].startswith(
        "not linked to a tumour: it has no focus, and its patient has 2 primary tumour Conditions")
    drug = read_ndjson(dorado / "MedicationAdministration.ndjson")[0]
    assert reasons[f"MedicationAdministration/{drug['id']}"].startswith(
        "not linked to an ILP: it has no partOf, and its patient has 0 ILP Procedures on 2001-02-03")


def test_sizes_and_drugs_without_links_are_linked_by_the_rules_and_say_so(spark: SparkSession, zones: Zones) -> None:
    tumours = spark.read.parquet(str(zones.snapshot("r1").partition("tumours", "dorado"))).collect()
    linked = [t for t in tumours if t["facts_linked_by_subject"]]
    assert len(linked) == len(tumours) - 2  # the patient with two tumours: neither gets the size
    assert all(t["size_cm"] is not None for t in linked)
    assert all(ref.startswith("Observation/") for t in linked for ref in t["facts_linked_by_subject"])
    perfusions = spark.read.parquet(str(zones.snapshot("r1").partition("perfusions", "dorado"))).collect()
    by_date = [p for p in perfusions if p["parts_linked_by_date"]]
    assert len(by_date) == len(perfusions)  # every ILP's drugs, found by patient and day
    assert sum(p["tnf_dose_mg"] is None for p in perfusions) == 1  # the drug moved to another day


def test_profile_lists_each_trace_with_what_would_fix_it(spark: SparkSession, zones: Zones) -> None:
    profiles = profile_centres(spark, zones.root, _centres(), SECRET, TransformOptions())
    dorado = profiles["dorado"]
    gaps = {g.column: g.feeders for g in dorado.gaps}
    assert ("procedure.ilp_level", "extension('http://ilp-cohort.org/fhir/StructureDefinition/ilp-level')"
            ".value.ofType(Coding)") in gaps["perfusions.ilp_level"]
    paths = {e.path() for e in dorado.extensions}
    assert f"extension('{SITE}/StructureDefinition/perfusion-level').value.ofType(CodeableConcept)" in paths
    assert any(r["code"] == "LOC" for r in dorado.unmapped)
    assert any(reason.startswith("not linked to a tumour") for reason in dorado.unused)
    report = (zones.profile("dorado", dorado.run_id) / "profile.md").read_text(encoding="utf-8")
    assert "perfusion-level" in report and "perfusions.ilp_level" in report
    assert dorado.cohort["patients"] == DORADO.patients and dorado.cohort["other_patients"] == 0
    assert dorado.cohort_line().startswith(f"cohort: {DORADO.patients} of {DORADO.patients} patients qualify, by the "
                                           "procedure codes ")
    assert f"{DORADO.patients} of {DORADO.patients} patients qualify" in report
    assert not zones.snapshot(dorado.run_id).folder.exists()  # the scratch snapshot is gone
