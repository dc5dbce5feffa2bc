"""Finding the cohort inside a whole hospital: a local-code centre (borealis) beside the hospital's other patients
(vital signs, laboratory results, other diagnoses, deaths, a melanoma perfused, a sarcoma never perfused), pulled by
REST, by Bulk and as files. Each publishes exactly the tables of the cohort alone, row for row, with the other
patients' resources counted as out of scope, and never quarantined or reported unmapped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from connectors import CohortSearch, FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from demo.synth import DEMO_SEED, generate
from demo.synth.profiles import BOREALIS
from foundation.errors import CohortNotFound
from foundation.model import RESOURCE_TYPES, TABLES, TERMINOLOGY_TYPES
from foundation.publication import published_snapshot
from foundation.secrets import Secret
from ilp.config import load_config
from ilp.run import run_consortium
from tests.conftest import read_ndjson
from tests.landing_helpers import bulk, rest
from transforms import CentreSettings, TransformOptions, TransformReport, transform

SECRET = Secret("test-consortium-secret-0123456789")
POPULATION = 120
Consortium = tuple[Path, dict[str, Any]]
Tables = dict[str, list[tuple[str, ...]]]


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Borealis (208 ILP patients, local codes) and 120 of the hospital's other patients, in one export."""
    out = tmp_path_factory.mktemp("hospital")
    generate([BOREALIS], DEMO_SEED, out, population=POPULATION)
    return out / "borealis"


def _land_files(folder: Path, root: Path) -> None:
    with FilesSource(FilesSettings(folder=folder / "fhir")) as source:
        ingest(source, LandingZone(root, "borealis"), progress=LogProgress())


def _transform(spark: SparkSession, root: Path, maps: Path | None, from_source: bool = False) -> TransformReport:
    files = tuple(sorted(maps.glob("*.json"))) if maps else ()
    return transform(spark, root, [CentreSettings("borealis", files, from_source)], SECRET, "r1",
                     TransformOptions())["borealis"]


def _tables(spark: SparkSession, report: TransformReport) -> Tables:
    return {t.name: sorted(tuple(map(str, r)) for r in spark.read.parquet(str(report.snapshot.table(t.name)))
                           .drop("run_id").collect()) for t in TABLES}


@pytest.fixture(scope="module")
def cohort_alone(spark: SparkSession, demo_consortium: Consortium,
                 tmp_path_factory: pytest.TempPathFactory) -> Tables:
    folder = demo_consortium[0] / "borealis"
    root = tmp_path_factory.mktemp("cohort-alone")
    _land_files(folder, root)
    return _tables(spark, _transform(spark, root, folder / "conceptmaps"))


def _others(hospital: Path) -> Counter[str]:
    """Resources of the hospital's other patients, per type."""
    return Counter(r["resourceType"] for t in RESOURCE_TYPES for r in read_ndjson(hospital / "fhir" / f"{t}.ndjson")
                   if "-population-" in r["id"])


def _assert_cohort_found(spark: SparkSession, report: TransformReport, cohort_alone: Tables,
                         out_of_scope: Counter[str]) -> None:
    assert _tables(spark, report) == cohort_alone
    assert {t: c.out_of_scope for t, c in report.reconciliation.items() if c.out_of_scope} == dict(out_of_scope)
    for resource_type, counts in report.reconciliation.items():
        assert counts.resources == counts.used + counts.quarantined + counts.out_of_scope, resource_type
        assert counts.quarantined == 0, f"{resource_type}: {counts}"
    assert report.unmapped_codes == 0  # the others' heart rates and glucose are not codes to map
    manifest = report.snapshot.manifest("borealis")
    assert manifest.cohort["definition"]["procedure_kinds"] == ["ilp"] and manifest.cohort["patients"] == 208
    assert sum(manifest.cohort["codes"].values()) >= 208 and manifest.reconciliation == report.reconciliation


def test_a_whole_hospital_export_as_files_publishes_the_cohort_alone(
        spark: SparkSession, hospital: Path, cohort_alone: Tables, tmp_path: Path) -> None:
    _land_files(hospital, tmp_path)
    report = _transform(spark, tmp_path, hospital / "conceptmaps")
    _assert_cohort_found(spark, report, cohort_alone, _others(hospital))


def test_a_whole_hospital_server_searched_by_the_cohort_s_codes_lands_only_the_cohort(
        spark: SparkSession, fhir_server: FhirTestServer, hospital: Path, cohort_alone: Tables,
        tmp_path: Path) -> None:
    """cohort_only: the ILP code is borealis's own, known only from the ConceptMap its server publishes (pulled
    first); the melanoma patients perfused with the same code land, and the transform leaves them out."""
    fhir_server.load_centre(hospital)
    fhir_server.load_conceptmaps(hospital)
    with rest(fhir_server, RESOURCE_TYPES + TERMINOLOGY_TYPES, cohort_only=True, page_size=500) as source:
        run = ingest(source, LandingZone(tmp_path, "borealis"), progress=LogProgress())
    landed = read_ndjson(run / "Patient.ndjson")
    melanoma = {r["id"].removesuffix("-melanoma-ilp") for r in read_ndjson(hospital / "fhir" / "Procedure.ndjson")
                if r["id"].endswith("-melanoma-ilp")}
    assert len(landed) == 208 + len(melanoma) and {p["id"] for p in landed} >= melanoma
    report = _transform(spark, tmp_path, None, from_source=True)
    melanoma_resources = Counter(r["resourceType"] for t in RESOURCE_TYPES
                                 for r in read_ndjson(hospital / "fhir" / f"{t}.ndjson")
                                 if any(r["id"] == m or r["id"].startswith(f"{m}-") for m in melanoma))
    _assert_cohort_found(spark, report, cohort_alone, melanoma_resources)


def test_a_system_level_bulk_export_of_the_whole_hospital_publishes_the_cohort_alone(
        spark: SparkSession, fhir_server: FhirTestServer, hospital: Path, cohort_alone: Tables,
        tmp_path: Path) -> None:
    fhir_server.load_centre(hospital)
    fhir_server.configure(bulk={"pollsBeforeReady": 0, "retryAfter": 0})
    with bulk(fhir_server) as source:
        ingest(source, LandingZone(tmp_path, "borealis"), progress=LogProgress())
    report = _transform(spark, tmp_path, hospital / "conceptmaps")
    _assert_cohort_found(spark, report, cohort_alone, _others(hospital))


def test_a_cohort_search_that_finds_nothing_stops_with_the_codes_it_searched(
        fhir_server: FhirTestServer, hospital: Path, tmp_path: Path) -> None:
    """Borealis's server without its ConceptMap: no code the search knows means ILP there."""
    fhir_server.load_centre(hospital)
    with pytest.raises(CohortNotFound, match=r"searched Procedure\?code= with 2 codes .*4019656"), \
            rest(fhir_server, cohort_only=True, cohort=CohortSearch()) as source:
        ingest(source, LandingZone(tmp_path, "borealis"), progress=LogProgress())
    done = subprocess.run([sys.executable, "-m", "ilp", "ingest", "--centre", "borealis", "--root",
                           str(tmp_path / "cli"), "--rest", fhir_server.base, "--cohort-only"],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 9, done.stderr
    assert "the cohort search found no patient" in done.stderr and "Traceback" not in done.stderr
    assert "http://fhir.ohdsi.org/CodeSystem/concepts|4019656" in done.stderr


def test_a_centre_with_no_patient_of_the_study_publishes_when_its_configuration_says_it_may(
        hospital: Path, demo_consortium: Consortium, tmp_path: Path) -> None:
    """A newly joined centre whose export holds only other patients (an error by default: see
    test_transforms_pipeline) is published empty with `cohort_may_be_empty`, and the analyses run beside the other
    centre."""
    others = tmp_path / "others"
    (others / "fhir").mkdir(parents=True)
    for resource_type in RESOURCE_TYPES:
        lines = [json.dumps(r) for r in read_ndjson(hospital / "fhir" / f"{resource_type}.ndjson")
                 if "-population-" in r["id"]]
        (others / "fhir" / f"{resource_type}.ndjson").write_text("\n".join(lines) + "\n")
    (tmp_path / "key").write_text(SECRET.reveal())
    aurora = demo_consortium[0] / "aurora" / "fhir"

    config = tmp_path / "consortium.toml"
    config.write_text(f'name = "t"\nroot = "zones"\nsecret = {{ file = "key" }}\n'
                      f'[[centres]]\nid = "aurora"\nsource = {{ kind = "files", folder = "{aurora}" }}\n'
                      f'[[centres]]\nid = "newcomer"\nsource = {{ kind = "files", folder = "{others / "fhir"}" }}\n'
                      'cohort_may_be_empty = true\n')
    outcome = run_consortium(load_config(config), echo=print)
    assert outcome.report is not None and outcome.report.is_file()
    snapshot = published_snapshot(tmp_path / "zones")
    manifest = snapshot.manifest("newcomer")
    assert manifest.rows["cohort"] == 0 and manifest.reconciliation["Patient"].out_of_scope == POPULATION
