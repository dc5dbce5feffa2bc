"""Servers that misbehave, as the real local FHIR server is switched to: every case either lands everything the
server holds or stops with an error that names it, publishes no half run, and never sends credentials where they
were not meant to go."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from connectors import RESOURCE_TYPES, AuthSettings, LandingZone, SecretRef, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from foundation.errors import AuthenticationFailed, SourceProtocolError
from tests.landing_helpers import bulk, landed_lines, landed_versions, manifest, rest, server_versions


def _pull(source: Any, root: Path) -> Path:
    with source:
        return ingest(source, LandingZone(root, "aurora"), progress=LogProgress())


def _published(root: Path) -> list[Path]:
    return list((root / "landing").glob("centre=*/run=*"))


def test_pages_smaller_than_asked_for_are_followed_as_given(aurora: FhirTestServer, tmp_path: Path) -> None:
    """The server caps `_count` at 7 whatever we ask, and its next links say so."""
    aurora.configure(paging={"maxCount": 7})
    run = _pull(rest(aurora, page_size=200), tmp_path)
    aurora.configure(paging={})
    assert landed_versions(run) == server_versions(aurora.base)
    patients = len(landed_versions(run, ("Patient",))["Patient"])
    assert manifest(run)["requests"]["count"] > patients / 7


def test_operation_outcomes_in_the_middle_of_a_search_are_rejected_and_the_search_goes_on(
        aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(paging={"outcomes": True})
    run = _pull(rest(aurora, page_size=50, resource_types=("Observation",)), tmp_path)
    rejects = landed_lines(run, "rejected")
    assert rejects and {r["reason"] for r in rejects} == {"OperationOutcome in a search page"}
    pages = -(-manifest(run)["files"]["Observation"]["count"] // 50)
    assert len(rejects) == pages - 1  # one per page after the first
    aurora.configure(paging={})
    assert landed_versions(run, ("Observation",)) == server_versions(aurora.base, ("Observation",))


def test_an_empty_server_is_an_empty_run_not_an_error(fhir_server: FhirTestServer, tmp_path: Path) -> None:
    run = _pull(rest(fhir_server), tmp_path)
    assert {name: f["count"] for name, f in manifest(run)["files"].items()} == {t: 0 for t in RESOURCE_TYPES}
    assert landed_versions(run) == {t: {} for t in RESOURCE_TYPES}


def test_a_next_link_that_loops_is_refused_and_the_rerun_completes(aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(paging={"loop": True})
    with pytest.raises(SourceProtocolError, match="paging loops back to"):
        _pull(rest(aurora, page_size=50, resource_types=("Observation",)), tmp_path)
    assert not _published(tmp_path)
    aurora.configure(paging={})
    run = _pull(rest(aurora, page_size=50, resource_types=("Observation",)), tmp_path)
    assert landed_versions(run, ("Observation",)) == server_versions(aurora.base, ("Observation",))


def test_a_next_link_to_another_host_is_not_followed(aurora: FhirTestServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`localhost` reaches the same server as `127.0.0.1`, but it is another host: our token must not go there."""
    aurora.configure(paging={"nextHost": "localhost"}, auth={"mode": "bearer", "token": "next-link-token"})
    monkeypatch.setenv("ILP_TEST_TOKEN", "next-link-token")
    auth = AuthSettings(kind="bearer", token=SecretRef(env="ILP_TEST_TOKEN"))
    before = aurora.stats()["requests"]
    with pytest.raises(SourceProtocolError, match=r"next link points to another server \(localhost:\d+\)") as refused:
        _pull(rest(aurora, page_size=50, resource_types=("Observation",), auth=auth), tmp_path)
    assert aurora.stats()["requests"] == before + 3  # metadata, the first page, our stats call: nothing more
    assert not _published(tmp_path)
    assert re.search(r'same_server_hosts = \["localhost:\d+"\]', str(refused.value))  # says how to allow it


def test_a_server_known_under_another_name_is_followed_when_configured(
        aurora: FhirTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared as the same server, `localhost` gets the pages and the token, and the pull is complete; another
    name that was not declared still gets nothing."""
    held = server_versions(aurora.base, ("Observation",))  # read before the server asks for a token
    aurora.configure(paging={"nextHost": "localhost"}, auth={"mode": "bearer", "token": "alias-token"})
    monkeypatch.setenv("ILP_TEST_TOKEN", "alias-token")
    auth = AuthSettings(kind="bearer", token=SecretRef(env="ILP_TEST_TOKEN"))
    run = _pull(rest(aurora, page_size=50, resource_types=("Observation",), auth=auth,
                     same_server_hosts=("localhost",)), tmp_path)
    assert landed_versions(run, ("Observation",)) == held
    with pytest.raises(SourceProtocolError, match="another server"):
        _pull(rest(aurora, page_size=50, resource_types=("Observation",), auth=auth,
                   same_server_hosts=("fhir.elsewhere.example",)), tmp_path / "other")


def test_a_resource_deleted_while_paging_does_not_hide_another(aurora: FhirTestServer, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The first Observation is deleted when page 2 is asked for: every later one moves up a place, one of them
    slides onto page 1 unseen, and the total drops. The search runs again and lands the one it would have
    missed; the deleted one arrives as a tombstone with the next incremental run."""
    caplog.set_level(logging.WARNING)
    aurora.configure(paging={"deleteDuring": {"type": "Observation"}})
    run = _pull(rest(aurora, page_size=50, resource_types=("Observation",)), tmp_path)
    held = server_versions(aurora.base, ("Observation",))["Observation"]
    landed = landed_versions(run, ("Observation",))["Observation"]
    assert held.items() <= landed.items() and len(landed) == len(held) + 1
    assert "the total changed while paging" in caplog.text
    assert manifest(run)["files"]["Observation"]["duplicates"] > 0 and manifest(run)["warnings"] == []
    deleted = set(landed) - set(held)
    later = _pull(rest(aurora, page_size=50, resource_types=("Observation",)), tmp_path)
    assert {t["id"] for t in landed_lines(later, "tombstones")} == deleted


def test_a_bulk_sources_conceptmap_search_knows_the_servers_other_names(aurora: FhirTestServer, tmp_path: Path) -> None:
    """ConceptMaps are searched beside the export, over the bulk source's connection: a next link naming the
    server by a declared other name is followed there too."""
    aurora.post({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "ConceptMap", "id": f"map-{n}", "status": "active"},
         "request": {"method": "PUT", "url": f"ConceptMap/map-{n}"}} for n in range(3)]})
    aurora.configure(paging={"maxCount": 1, "nextHost": "localhost"})
    run = _pull(bulk(aurora, resource_types=("Patient", "ConceptMap"), same_server_hosts=("localhost",)), tmp_path)
    assert sorted(landed_versions(run, ("ConceptMap",))["ConceptMap"]) == ["map-0", "map-1", "map-2"]


@pytest.mark.parametrize("kind", ["rest", "bulk"])
def test_a_search_whose_total_keeps_moving_lands_with_a_warning_in_the_manifest(
        aurora: FhirTestServer, tmp_path: Path, kind: str) -> None:
    """A ConceptMap is deleted during each of three searches: after searching again twice the run lands what it
    saw, and its manifest says which search may miss a resource until the next run, whether a REST source
    searched or a bulk source (whose ConceptMaps are not exportable, so searched beside the export)."""
    aurora.post({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "ConceptMap", "id": f"map-{n}", "status": "active"},
         "request": {"method": "PUT", "url": f"ConceptMap/map-{n}"}} for n in range(6)]})
    aurora.configure(paging={"maxCount": 2, "deleteDuring": {"type": "ConceptMap", "times": 3}})
    source = (rest(aurora, resource_types=("ConceptMap",)) if kind == "rest"
              else bulk(aurora, resource_types=("Patient", "ConceptMap")))
    run = _pull(source, tmp_path)
    assert manifest(run)["warnings"] == [
        "ConceptMap search: the total changed while paging (4 then 3), still after 2 searches again"]
    assert len(landed_versions(run, ("ConceptMap",))["ConceptMap"]) == 6  # each was seen before its deletion


def test_a_static_token_revoked_mid_run_stops_with_401_and_a_new_token_resumes(
        aurora: FhirTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bearer token cannot be renewed by us: the run stops (exit code 4) and keeps what it landed; given the new
    token, the same run resumes and lands every resource once."""
    aurora.configure(auth={"mode": "bearer", "token": "first-token"}, faults={"every": 6, "kinds": ["expire"]})
    token = tmp_path / "token"
    token.write_text("first-token\n")
    auth = AuthSettings(kind="bearer", token=SecretRef(file=token))
    with pytest.raises(AuthenticationFailed, match=r"refused .* page \d+: HTTP 401") as refused:
        _pull(rest(aurora, page_size=50, auth=auth), tmp_path)
    assert refused.value.exit_code == 4 and "first-token" not in str(refused.value)
    assert not _published(tmp_path)
    aurora.configure(auth={"mode": "bearer", "token": "second-token"}, faults={})
    token.write_text("second-token\n")
    run = _pull(rest(aurora, page_size=50, auth=auth), tmp_path)
    assert manifest(run)["resumed"] is True
    aurora.configure(auth={"mode": "none"})
    assert landed_versions(run) == server_versions(aurora.base)


@pytest.mark.parametrize("requires_token", [False, True])
def test_export_files_on_an_allowed_other_host_get_our_token_only_if_the_manifest_asks(
        aurora: FhirTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, requires_token: bool) -> None:
    aurora.configure(auth={"mode": "bearer", "token": "bulk-token"},
                     bulk={"fileHost": "localhost", "requiresAccessToken": requires_token})
    monkeypatch.setenv("ILP_TEST_TOKEN", "bulk-token")
    auth = AuthSettings(kind="bearer", token=SecretRef(env="ILP_TEST_TOKEN"))
    run = _pull(bulk(aurora, auth=auth, file_hosts=("localhost",)), tmp_path)
    downloads = aurora.stats()["fileRequests"]
    assert downloads and {d["authorization"] for d in downloads} == {requires_token}
    aurora.configure(auth={"mode": "none"})
    assert landed_versions(run) == server_versions(aurora.base)


def test_export_files_on_a_host_nobody_allowed_are_refused(aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(bulk={"fileHost": "localhost"})
    with pytest.raises(SourceProtocolError, match=r"file on another host \(localhost:\d+\).*file_hosts"):
        _pull(bulk(aurora), tmp_path)
    assert aurora.stats()["fileRequests"] == []
    assert not _published(tmp_path)


def test_a_huge_error_file_is_streamed_and_its_broken_line_rejected(aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(bulk={"errorLines": 30_000})
    run = _pull(bulk(aurora), tmp_path)
    errors = manifest(run)["files"]["export-errors"]
    assert errors["count"] == 30_000 and errors["bytes"] > 8_000_000
    assert [r["reason"] for r in landed_lines(run, "rejected")] == ["not valid JSON"]
    assert landed_versions(run) == server_versions(aurora.base)


def test_names_from_the_server_cannot_escape_the_landing_zone(aurora: FhirTestServer, tmp_path: Path) -> None:
    """The manifest lists a file `../../../escape.ndjson` of type `../../../escape`, holding a resource of that
    type and a Patient whose id is a path: both are rejected, and nothing is written outside the zone."""
    aurora.configure(bulk={"hostileNames": True})
    root = tmp_path / "zones"
    run = _pull(bulk(aurora), root)
    reasons = sorted(r["reason"] for r in landed_lines(run, "rejected"))
    assert reasons == ["id is not a FHIR id (1 to 64 letters, digits, '-' or '.')",
                       "resource type ../../../escape was not asked for"]
    written = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    assert all(p.parts[:2] in {("landing", "centre=aurora"), ("state", "centre=aurora")} for p in written)
    assert {p.name for p in run.iterdir()} <= {f"{t}.ndjson" for t in landed_versions(run)} | {
        "manifest.json", "rejected.ndjson", "tombstones.ndjson", "export-errors.ndjson"}
    assert [p.name for p in tmp_path.iterdir()] == ["zones"]
    assert landed_versions(run) == server_versions(aurora.base)
