"""Bulk Data specifics against the real local FHIR server: levels, error files, bounded waits, progress."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from connectors import LandingZone, ingest
from connectors.progress import LogProgress, pull_progress
from demo.fhir_server import FhirTestServer
from foundation.errors import SourceUnreachable
from tests.landing_helpers import (
    bulk,
    change_server,
    landed_lines,
    landed_versions,
    manifest,
    server_versions,
    serving,
)

Consortium = tuple[Path, dict[str, Any]]


@pytest.fixture
def cascade(fhir_server: FhirTestServer, demo_consortium: Consortium) -> FhirTestServer:
    return serving(fhir_server, demo_consortium[0] / "cascade")


def _export(server: FhirTestServer, root: Path, **settings: Any) -> Path:
    with bulk(server, **settings) as source:
        return ingest(source, LandingZone(root, "cascade"), progress=LogProgress())


def test_group_export_lands_only_the_group_members_resources(cascade: FhirTestServer, tmp_path: Path) -> None:
    members = sorted(server_versions(cascade.base, ("Patient",))["Patient"])[:5]
    group = {"resourceType": "Group", "id": "ilp-cohort", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members]}
    assert httpx.put(f"{cascade.base}/Group/ilp-cohort", json=group).status_code in (200, 201)
    run = _export(cascade, tmp_path, level="group", group_id="ilp-cohort")
    landed = landed_versions(run)
    assert sorted(landed["Patient"]) == members
    subjects = {r["subject"]["reference"] for t in ("Observation", "Procedure") for r in landed_lines(run, t)}
    assert subjects == {f"Patient/{m}" for m in members}
    assert manifest(run)["source"]["level"] == "group"


def test_patient_export_and_error_file(cascade: FhirTestServer, tmp_path: Path) -> None:
    run = _export(cascade, tmp_path, level="patient", resource_types=("Patient", "Condition", "Encounter"))
    assert len(landed_versions(run, ("Patient",))["Patient"]) == 54
    (error,) = landed_lines(run, "export-errors")
    assert error["resourceType"] == "OperationOutcome" and "Encounter" in error["issue"][0]["diagnostics"]
    assert manifest(run)["export"]["error_files"] == 1


@pytest.mark.parametrize("history", [True, False], ids=["with _history", "without _history"])
def test_deletions_an_export_does_not_list_are_found_as_a_rest_pull_finds_them(
        cascade: FhirTestServer, tmp_path: Path, history: bool) -> None:
    cascade.configure(bulk={"listsDeleted": False, "pollsBeforeReady": 0, "retryAfter": 0},
                      features={"history": history})
    first = _export(cascade, tmp_path)
    assert manifest(first)["deletions"]["Procedure"]["method"] == "first pull: nothing landed before"
    deleted = change_server(cascade)["deleted"]
    second = _export(cascade, tmp_path, reconcile_every_days=0)
    found = manifest(second)["deletions"]["Procedure"]
    assert found["method"] == ("history" if history else "id reconciliation with the full export"), found
    assert {t["id"] for t in landed_lines(second, "tombstones") if t["resourceType"] == "Procedure"} == deleted
    assert (manifest(second)["source"]["since"] is None) is not history  # without _history: a full export
    if not history:  # reconciled now: the next run within the period exports incrementally again
        third = _export(cascade, tmp_path, reconcile_every_days=7)
        assert manifest(third)["source"]["since"] is not None
        assert manifest(third)["deletions"]["Procedure"]["method"] == "the export's deleted entries"


def test_an_export_that_never_finishes_is_a_bounded_wait_with_a_clear_error(cascade: FhirTestServer,
                                                                            tmp_path: Path) -> None:
    cascade.configure(bulk={"neverFinish": True, "retryAfter": 0})
    with pytest.raises(SourceUnreachable, match=r"did not finish within 0 s \(last progress: .*%"):
        _export(cascade, tmp_path, max_wait_s=0.3)


def test_progress_shows_a_bar_per_resource_type_on_a_terminal(cascade: FhirTestServer, tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with pull_progress(interactive=True, console=console) as bars, \
            bulk(cascade) as source:
        ingest(source, LandingZone(tmp_path, "cascade"), progress=bars)
    text = screen.getvalue()
    for resource_type in ("Patient", "Condition", "Procedure", "Observation", "MedicationAdministration"):
        assert resource_type in text
    assert "54/54" in text and "837/837" in text
