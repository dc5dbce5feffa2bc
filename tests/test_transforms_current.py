"""Current state: landed runs merge into the latest version of every resource, idempotently, deletions applied."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from connectors import LandingZone, RestSettings, RestSource, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from tests.landing_helpers import change_server, server_versions
from transforms import current
from transforms.codes import CodeLookup
from transforms.current import CurrentState, MergeReport
from transforms.facts import ResourceFacts
from transforms.landed import completed_runs
from transforms.views.catalogue import Catalogue

TYPES = ("Patient", "Condition", "Procedure", "Observation", "MedicationAdministration")
Consortium = tuple[Path, dict[str, Any]]


def _state(spark: SparkSession, root: Path, centre: str) -> dict[str, dict[str, str]]:
    rows = CurrentState(root, [centre]).read(spark, ResourceFacts()).select(
        "resource_type", "id", "version_id").collect()
    state: dict[str, dict[str, str]] = {t: {} for t in TYPES}
    for row in rows:
        assert row["id"] not in state[row["resource_type"]], "two current versions of one resource"
        state[row["resource_type"]][row["id"]] = row["version_id"]
    return state


def _merge(spark: SparkSession, root: Path, centre: str, types: tuple[str, ...], run: str) -> MergeReport:
    return CurrentState(root, [centre]).merge(spark, types, CodeLookup(), ResourceFacts(), run)[centre]


def _pull(server: FhirTestServer, root: Path) -> None:
    with RestSource(RestSettings(base_url=server.base)) as source:
        ingest(source, LandingZone(root, "aurora"), progress=LogProgress())


def test_merge_applies_updates_additions_and_deletions_and_reruns_change_nothing(
        spark: SparkSession, fhir_server: FhirTestServer, demo_consortium: Consortium, tmp_path: Path) -> None:
    fhir_server.load_centre(demo_consortium[0] / "aurora")
    state = CurrentState(tmp_path, ["aurora"]).centre("aurora")
    _pull(fhir_server, tmp_path)
    first = _merge(spark, tmp_path, "aurora", TYPES, "t1")
    assert _state(spark, tmp_path, "aurora") == server_versions(fhir_server.base)
    assert first.counts["Observation"]["in"] == first.counts["Observation"]["current"] == 526
    time.sleep(0.01)
    change_server(fhir_server)
    _pull(fhir_server, tmp_path)
    second = _merge(spark, tmp_path, "aurora", TYPES, "t2")
    assert len(second.merged_runs) == 1
    assert _state(spark, tmp_path, "aurora") == server_versions(fhir_server.base)
    assert second.counts["Observation"]["previous_replaced"] == 3
    pointer = state.pointer.read_text()
    again = _merge(spark, tmp_path, "aurora", TYPES, "t3")
    assert again.nothing_new and state.pointer.read_text() == pointer


def test_the_same_resource_landed_twice_is_one_current_row(spark: SparkSession, fhir_server: FhirTestServer,
                                                           demo_consortium: Consortium, tmp_path: Path) -> None:
    fhir_server.load_centre(demo_consortium[0] / "aurora")
    zone = LandingZone(tmp_path, "aurora")
    for _ in range(2):
        with RestSource(RestSettings(base_url=fhir_server.base)) as source:
            ingest(source, zone, incremental=False, progress=LogProgress())
    report = _merge(spark, tmp_path, "aurora", TYPES, "t")
    assert report.counts["Patient"] == {**report.counts["Patient"], "in": 82, "current": 41, "superseded": 41}
    assert _state(spark, tmp_path, "aurora") == server_versions(fhir_server.base)
    state = CurrentState(tmp_path, ["aurora"]).centre("aurora")  # half its rows were dropped: compacted
    assert len(state.segments()) == 1 and state.dropped() is None and state.rows()[1] == 0


def test_lines_that_are_not_resources_are_quarantined_and_counts_reconcile(spark: SparkSession,
                                                                          tmp_path: Path) -> None:
    run = tmp_path / "landing" / "centre=x" / "run=20260101T000000Z-aaaaaa"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "Patient.ndjson").write_text("\n".join([
        '{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"}}',
        '{"resourceType":"Patient","id":"p2"}',
        '{"resourceType":"Patient"',
        '{"resourceType":"Observation","id":"o1"}',
        '{"id":"p3"}']) + "\n")
    report = _merge(spark, tmp_path, "x", ("Patient",), "t")
    counts = report.counts["Patient"]
    assert counts["in"] == 5 and counts["current"] == 2 and counts["quarantined"] == 3
    assert counts["in"] == counts["current"] + counts["superseded"] + counts["deleted"] + counts["quarantined"]
    quarantined = spark.read.parquet(str(tmp_path / "quarantine" / "stage=current" / "centre=x" / "run=t")).collect()
    reasons = sorted(r["reason"] for r in quarantined)
    assert reasons == ["resourceType differs from its stream"] + ["unparseable JSON, or no resourceType or id"] * 2
    assert {r["landing_run_id"] for r in quarantined} == {"20260101T000000Z-aaaaaa"}
    assert json.loads(CurrentState(tmp_path, ["x"]).centre("x").pointer.read_text())["counts"]["Patient"] == counts


def test_increments_add_segments_until_they_are_compacted_into_one_holding_the_same_state(
        spark: SparkSession, fhir_server: FhirTestServer, demo_consortium: Consortium, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(current, "MAX_SEGMENTS", 2)
    fhir_server.load_centre(demo_consortium[0] / "aurora")
    state = CurrentState(tmp_path, ["aurora"]).centre("aurora")
    for n, segments in enumerate((1, 2, 1)):
        if n:
            time.sleep(0.01)
            change_server(fhir_server)
        _pull(fhir_server, tmp_path)
        assert CurrentState(tmp_path, ["aurora"]).pending_changes("aurora", TYPES) > 0
        _merge(spark, tmp_path, "aurora", TYPES, f"t{n}")
        assert _state(spark, tmp_path, "aurora") == server_versions(fhir_server.base)
        assert len(state.segments()) == segments
        assert (state.dropped() is not None) == (n == 1)  # the replaced and deleted versions of the increment
        _pull(fhir_server, tmp_path)  # nothing new: the versions at the watermark instant come again
        assert CurrentState(tmp_path, ["aurora"]).pending_changes("aurora", TYPES) == 0
    landed = [r.run_id for r in completed_runs(tmp_path, "aurora")]
    assert state.merged_runs() == landed[:-1]  # compacting kept the record of what is merged (not the last pull)
    assert sorted(p.name for p in state.folder.iterdir()) == sorted(["current.json", state.segments()[0].name])


def test_a_state_in_the_earlier_layout_is_rebuilt_and_its_folders_removed(spark: SparkSession,
                                                                          tmp_path: Path) -> None:
    run = tmp_path / "landing" / "centre=x" / "run=20260101T000000Z-aaaaaa"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"p1"}\n{"resourceType":"Patient","id":"p2"}\n')
    state = CurrentState(tmp_path, ["x"]).centre("x")
    state.folder.mkdir(parents=True)
    (state.folder / "v=20251101T000000Z" / "resource_type=Patient").mkdir(parents=True)
    state.pointer.write_text(json.dumps({"version": "v=20251101T000000Z", "runs": [run.name.removeprefix("run=")],
                                         "schema": "an earlier one", "harmonisation": "h"}))
    report = _merge(spark, tmp_path, "x", ("Patient",), "t")
    assert report.counts["Patient"]["current"] == 2  # the merged run was merged again, into the new layout
    assert sorted(p.name for p in state.folder.iterdir()) == sorted(["current.json", state.segments()[0].name])
    assert "version" not in json.loads(state.pointer.read_text())
    assert _state(spark, tmp_path, "x")["Patient"] == {"p1": None, "p2": None}


def test_a_state_merged_under_other_overrides_or_identifier_system_is_rebuilt_with_the_new_facts(
        spark: SparkSession, tmp_path: Path) -> None:
    run = tmp_path / "landing" / "centre=x" / "run=20260101T000000Z-aaaaaa"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "Patient.ndjson").write_text(json.dumps({
        "resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01",
        "identifier": [{"system": "urn:national", "value": "123"}],
        "extension": [{"url": "https://h.example/dob", "valueDate": "1951-02-02"}]}) + "\n")

    def facts_under(facts: ResourceFacts) -> tuple[MergeReport, Any]:
        report = CurrentState(tmp_path, ["x"]).merge(spark, ("Patient",), CodeLookup(), facts, "t")["x"]
        row = CurrentState(tmp_path, ["x"]).read(spark, facts).select(
            "patient__birth_date", "identity").collect()
        return report, row

    report, [row] = facts_under(ResourceFacts())
    assert (row["patient__birth_date"], row["identity"]) == ("1950-01-01", "x|Patient/p1")
    assert facts_under(ResourceFacts())[0].nothing_new
    overridden = ResourceFacts(Catalogue({"x": {"patient": {
        "birth_date": "extension('https://h.example/dob').value.ofType(date)"}}}))
    report, [row] = facts_under(overridden)
    assert report.merged_runs and row["patient__birth_date"] == "1951-02-02"  # merged again under the override
    report, [row] = facts_under(ResourceFacts(overridden.catalogue, "urn:national"))
    assert report.merged_runs and row["identity"] == "urn:national|123"
