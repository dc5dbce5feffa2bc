"""REST search and Bulk Data pulls against the real local FHIR server: complete, incremental, fault-tolerant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import (
    FilesSettings,
    FilesSource,
    LandingZone,
    ingest,
)
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from foundation.errors import SourceUnreachable
from tests.landing_helpers import (
    bulk,
    change_server,
    landed_lines,
    landed_versions,
    manifest,
    rest,
    server_versions,
)

Consortium = tuple[Path, dict[str, Any]]


@pytest.fixture
def loaded(fhir_server: FhirTestServer, demo_consortium: Consortium) -> FhirTestServer:
    fhir_server.load_centre(demo_consortium[0] / "aurora")
    fhir_server.configure(bulk={"pollsBeforeReady": 2, "retryAfter": 0, "linesPerFile": 150})
    return fhir_server


@pytest.mark.parametrize("centre", ["aurora", "borealis", "cascade"])
def test_rest_pull_lands_exactly_what_the_server_holds(fhir_server: FhirTestServer, demo_consortium: Consortium,
                                                       tmp_path: Path, centre: str) -> None:
    fhir_server.load_centre(demo_consortium[0] / centre)
    with rest(fhir_server, page_size=50) as source:
        run = ingest(source, LandingZone(tmp_path, centre), progress=LogProgress())
    assert landed_versions(run) == server_versions(fhir_server.base)
    described = manifest(run)
    assert described["outcome"] == "complete" and described["server"]["fhirVersion"] == "4.0.1"
    assert "Medplum" in described["server"]["software"]["name"]
    assert sum(f["count"] for f in described["files"].values()) == sum(len(v) for v in landed_versions(run).values())
    assert run.name.startswith("run=") and not list(run.parent.glob(".partial-*"))


@pytest.mark.parametrize("centre", ["aurora", "borealis", "cascade"])
def test_bulk_export_lands_the_same_as_rest(fhir_server: FhirTestServer, demo_consortium: Consortium,
                                            tmp_path: Path, centre: str) -> None:
    fhir_server.load_centre(demo_consortium[0] / centre)
    fhir_server.configure(bulk={"pollsBeforeReady": 2, "retryAfter": 0, "linesPerFile": 150, "gzip": True})
    with rest(fhir_server) as source:
        by_rest = ingest(source, LandingZone(tmp_path / "rest", centre), progress=LogProgress())
    with bulk(fhir_server) as source:
        by_bulk = ingest(source, LandingZone(tmp_path / "bulk", centre), progress=LogProgress())
    assert landed_versions(by_bulk) == landed_versions(by_rest) == server_versions(fhir_server.base)
    assert manifest(by_bulk)["export"]["files"] > 5  # several files per type (linesPerFile 150)
    assert fhir_server.stats()["bulkJobs"] == 0, "the export job was not deleted on the server"


@pytest.mark.parametrize("make_source", [rest, bulk], ids=["rest", "bulk"])
def test_incremental_run_lands_exactly_the_changes(loaded: FhirTestServer, tmp_path: Path, make_source: Any) -> None:
    zone = LandingZone(tmp_path, "aurora")
    with make_source(loaded) as source:
        first = ingest(source, zone, progress=LogProgress())
    time.sleep(0.01)
    changed = change_server(loaded)
    with make_source(loaded) as source:
        second = ingest(source, zone, progress=LogProgress())
    landed = landed_versions(second)
    now = server_versions(loaded.base)
    assert set(landed["Observation"]) == changed["Observation"]
    assert all(landed["Observation"][i] == now["Observation"][i] for i in changed["Observation"])
    assert set(landed["Condition"]) == changed["Condition"]
    assert landed["Patient"] == landed["Procedure"] == landed["MedicationAdministration"] == {}
    tombstones = landed_lines(second, "tombstones")
    assert {(t["resourceType"], t["id"]) for t in tombstones} == {("Procedure", i) for i in changed["deleted"]}
    assert manifest(second)["window"]["since"]["Observation"] == manifest(first)["watermarks"]["Observation"]
    with make_source(loaded) as source:
        third = ingest(source, zone, progress=LogProgress())
    assert all(f["count"] == 0 for f in manifest(third)["files"].values()), "a run with nothing new landed data"


@pytest.mark.parametrize("make_source", [rest, bulk], ids=["rest", "bulk"])
def test_pull_completes_through_throttling_errors_and_cut_connections(
        loaded: FhirTestServer, tmp_path: Path, make_source: Any) -> None:
    expected = server_versions(loaded.base)
    loaded.configure(faults={"every": 3, "kinds": ["429", "503", "cut", "500"], "retryAfter": "0"})
    with make_source(loaded, page_size=40) if make_source is rest else make_source(loaded) as source:
        run = ingest(source, LandingZone(tmp_path, "aurora"), progress=LogProgress())
    assert landed_versions(run) == expected
    assert manifest(run)["requests"]["retries"] >= 3
    assert loaded.stats()["faultsInjected"] >= 3


def test_retry_after_as_an_http_date_is_honoured(loaded: FhirTestServer, tmp_path: Path) -> None:
    expected = server_versions(loaded.base)
    loaded.configure(faults={"every": 4, "kinds": ["429"], "retryAfter": "date"})
    started = time.monotonic()
    with rest(loaded, page_size=200) as source:
        run = ingest(source, LandingZone(tmp_path, "aurora"), progress=LogProgress())
    assert landed_versions(run) == expected
    assert time.monotonic() - started >= 0.5  # the date said about a second ahead


def test_when_retries_run_out_the_error_names_server_type_and_page(loaded: FhirTestServer, tmp_path: Path) -> None:
    zone = LandingZone(tmp_path, "aurora")
    with rest(loaded, resource_types=("Observation",), max_attempts=2, backoff_initial_s=0.01,
              backoff_max_s=0.02) as source:
        source.client.capability()  # metadata is never faulted; the search is
        loaded.configure(faults={"every": 1, "kinds": ["503"]})
        with pytest.raises(SourceUnreachable) as failure:
            ingest(source, zone, progress=LogProgress())
    message = str(failure.value)
    assert loaded.base in message and "Observation search page 1" in message and "HTTP 503" in message
    assert failure.value.exit_code == 3
    assert zone.runs() == [] and zone.checkpoint_path.exists() and zone.watermarks() == {}


@pytest.mark.parametrize("flag", ["--rest", "--bulk"])
def test_killed_pull_resumes_and_lands_every_resource_once(loaded: FhirTestServer, tmp_path: Path, flag: str) -> None:
    expected = server_versions(loaded.base)
    loaded.configure(faults={"every": 1, "kinds": ["slow"], "delayMs": 150}, bulk={"linesPerFile": 50})
    command = [sys.executable, "-m", "ilp", "ingest", "--centre", "aurora", "--root", str(tmp_path),
               flag, loaded.base, "--page-size", "20"]
    zone = LandingZone(tmp_path, "aurora")
    pull = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _progressed(zone, 4):
        time.sleep(0.05)
    os.kill(pull.pid, signal.SIGKILL)
    pull.wait()
    assert _progressed(zone, 4) and zone.runs() == [], "the pull was not killed mid-run"
    loaded.configure(faults={})
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    (run,) = zone.runs()
    assert manifest(run)["resumed"] is True
    assert landed_versions(run) == expected


def _progressed(zone: LandingZone, steps: int) -> bool:
    """Whether the checkpoint records at least `steps` REST pages or bulk files landed."""
    import json

    try:
        saved = json.loads(zone.checkpoint_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    streams = saved["streams"].values()
    return sum(s["pages"] + len(s["state"].get("files_done", [])) for s in streams) >= steps


def test_files_source_lands_ndjson_and_bundles_alike(demo_consortium: Consortium, tmp_path: Path) -> None:
    folder = demo_consortium[0] / "cascade"
    with FilesSource(FilesSettings(folder=folder / "fhir")) as source:
        from_ndjson = ingest(source, LandingZone(tmp_path / "a", "cascade"), progress=LogProgress())
    with FilesSource(FilesSettings(folder=folder / "bundles")) as source:
        from_bundles = ingest(source, LandingZone(tmp_path / "b", "cascade"), progress=LogProgress())
    assert landed_versions(from_ndjson) == landed_versions(from_bundles)
    assert sum(len(v) for v in landed_versions(from_ndjson).values()) == 1254


def test_files_source_rejects_what_is_not_a_resource_and_counts_reconcile(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    lines = ['{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"}}',
             '\ufeff{"resourceType":"Patient","id":"p2"}',
             '{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"}}',  # same version again: lands once
             '{"resourceType":"Patient"', '[1, 2]', '{"id":"x"}', '{"resourceType":"Encounter","id":"e1"}',
             '{"resourceType":"Observation"}', '']
    (folder / "Patient.ndjson").write_text("\n".join(lines), encoding="utf-8")
    with FilesSource(FilesSettings(folder=folder)) as source:
        run = ingest(source, LandingZone(tmp_path / "zones", "x"), progress=LogProgress())
    assert sorted(landed_versions(run)["Patient"]) == ["p1", "p2"]
    reasons = {r["line"]: r["reason"] for r in landed_lines(run, "rejected")}
    assert reasons == {4: "not valid JSON", 5: "not a JSON object", 6: "no resourceType",
                       7: "resource type Encounter was not asked for", 8: "resource has no id"}
    kept = {r["line"]: {k: v for k, v in r.items() if k not in ("source", "line", "reason")}
            for r in landed_lines(run, "rejected")}
    assert kept[7] == {"resourceType": "Encounter", "id": "e1"}  # out of scope: its type and id, not a copy
    assert kept[4] == {"raw": '{"resourceType":"Patient"'}  # what was wrong with it, to see
    files = manifest(run)["files"]
    assert files["Patient"]["count"] + files["rejected"]["count"] + 1 == 8  # the repeated version


def test_cohort_scoping_keeps_ilp_patients_and_catches_up_new_ones(loaded: FhirTestServer, tmp_path: Path) -> None:

    cohort = server_versions(loaded.base)
    ilp = next(r for r in landed_lines_of(loaded, "Procedure") if r["code"]["coding"][0]["code"] == "4019656")
    with httpx.Client(base_url=loaded.base, timeout=30) as client:
        for n in range(2):  # patients without an ILP: out of the cohort, with a condition each
            client.put(f"/Patient/outsider-{n}", json={"resourceType": "Patient", "id": f"outsider-{n}"})
            client.put(f"/Condition/outsider-{n}", json={
                "resourceType": "Condition", "id": f"outsider-{n}", "subject": {"reference": f"Patient/outsider-{n}"},
                "code": {"text": "something else"}})
    zone = LandingZone(tmp_path, "aurora")
    settings = {"cohort_only": True, "page_size": 500}
    with rest(loaded, **settings) as source:
        first = ingest(source, zone, progress=LogProgress())
    assert landed_versions(first) == cohort
    assert len(landed_lines(first, "cohort")) == 41
    with httpx.Client(base_url=loaded.base, timeout=30) as client:  # outsider-0 now has an ILP
        late = {**ilp, "id": "late-ilp", "subject": {"reference": "Patient/outsider-0"}}
        client.put("/Procedure/late-ilp", json=late)
    with rest(loaded, **settings) as source:
        second = ingest(source, zone, progress=LogProgress())
    landed = landed_versions(second)
    assert set(landed["Patient"]) == {"outsider-0"} and set(landed["Condition"]) == {"outsider-0"}
    assert set(landed["Procedure"]) == {"late-ilp"} and landed["Observation"] == {}


def landed_lines_of(server: FhirTestServer, resource_type: str) -> list[dict[str, Any]]:
    bundle = httpx.get(f"{server.base}/{resource_type}", params={"_count": 10_000}).json()
    return [e["resource"] for e in bundle["entry"]]
