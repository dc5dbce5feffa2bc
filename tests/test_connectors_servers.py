"""Servers as hospitals run them, as the real local FHIR server is switched to: without type-level `_history`,
without `_lastUpdated`, with a page size of its own, with opaque page tokens, searching clinical types only within
a patient compartment, and with a CapabilityStatement that does or does not say so. Each pulls, reruns, and picks
up a change and a deletion, and what landed over the runs is exactly what the server holds."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from connectors import AuthSettings, LandingZone, SecretRef, ingest
from connectors.capabilities import plan_types
from connectors.progress import LogProgress
from connectors.settings import ServerFeatures
from demo.fhir_server import FhirTestServer
from foundation.errors import AuthenticationFailed, SourceProtocolError, SourceUnreachable
from tests.landing_helpers import (
    Versions,
    change_server,
    landed_lines,
    landed_versions,
    manifest,
    rest,
    server_versions,
)

MODES: dict[str, dict[str, Any]] = {
    "no _history": {"history": False},
    "no _lastUpdated": {"lastUpdated": False},
    "ignores _count": {"count": False, "pageSize": 7},
    "opaque page tokens": {"opaquePaging": True},
    "patient compartment only": {"systemSearch": False},
    "all of these": {"history": False, "lastUpdated": False, "count": False, "pageSize": 30, "opaquePaging": True,
                     "systemSearch": False},
    "strict: refuses _count and _elements": {"history": False, "count": False, "strict": True},
    "no _history, advertised anyway": {"history": False, "honest": False},
    "no _lastUpdated, advertised anyway": {"lastUpdated": False, "honest": False},
}


def _pull(server: FhirTestServer, root: Path, full: bool = False, **settings: Any) -> Path:
    with rest(server, **{"page_size": 50, **settings}) as source:
        return ingest(source, LandingZone(root, "aurora"), incremental=not full, progress=LogProgress())


def current(root: Path) -> Versions:
    """What the landed runs say the server holds now: each run's versions over the earlier ones, less its
    deletions (each one later than the version it deletes)."""
    held: dict[str, dict[str, tuple[str, str]]] = {}
    for run in LandingZone(root, "aurora").runs():
        for resource_type in manifest(run)["window"]["since"]:
            for resource in landed_lines(run, resource_type):
                meta = resource["meta"]
                held.setdefault(resource_type, {})[resource["id"]] = (meta["versionId"], meta["lastUpdated"])
        for tombstone in landed_lines(run, "tombstones"):
            version = held.get(tombstone["resourceType"], {}).get(tombstone["id"])
            if version and tombstone["deleted_at"] >= version[1]:
                del held[tombstone["resourceType"]][tombstone["id"]]
    return {t: {i: v for i, (v, _) in ids.items()} for t, ids in held.items()}


def _resources(run: Path) -> int:
    return sum(f["count"] for name, f in manifest(run)["files"].items() if name[:1].isupper())


@pytest.mark.parametrize("features", MODES.values(), ids=MODES.keys())
def test_each_kind_of_server_pulls_reruns_and_picks_up_changes_and_deletions(
        aurora: FhirTestServer, tmp_path: Path, features: dict[str, Any]) -> None:
    aurora.configure(features=features)
    first = _pull(aurora, tmp_path, reconcile_every_days=0)
    assert landed_versions(first) == server_versions(aurora.base)
    plan = manifest(first)["plan"]
    honest = features.get("honest", True)
    assert plan["Observation"]["history"] is ((features.get("history", True) and features.get("systemSearch", True))
                                              or not honest)
    assert plan["Observation"]["last_updated"] is (features.get("lastUpdated", True) or not honest)
    assert plan["Observation"]["system_search"] is features.get("systemSearch", True)
    # _count is asked for whatever the statement lists, and dropped where the server refuses it (a strict one)
    assert plan["Observation"]["count"] is not features.get("strict", False)

    rerun = _pull(aurora, tmp_path, reconcile_every_days=0)
    assert _resources(rerun) == 0 and not landed_lines(rerun, "tombstones"), "a rerun with nothing new landed data"

    changed = change_server(aurora)
    third = _pull(aurora, tmp_path, reconcile_every_days=0)
    landed = landed_versions(third)
    assert set(landed["Observation"]) == changed["Observation"] and set(landed["Condition"]) == changed["Condition"]
    assert {(t["resourceType"], t["id"]) for t in landed_lines(third, "tombstones")} == {
        ("Procedure", i) for i in changed["deleted"]}
    assert current(tmp_path) == server_versions(aurora.base)
    found = manifest(third)["deletions"]["Procedure"]
    by_history = all(features.get(f, True) for f in ("history", "systemSearch", "lastUpdated"))
    assert found["method"] == "history" if by_history else found["method"].startswith("id reconciliation"), found
    if features.get("strict"):
        assert found["method"] == "id reconciliation (ids of whole resources: _elements refused)"
    assert found["deleted"] == 2


def test_the_page_size_is_asked_for_when_the_statement_does_not_list_count_and_dropped_where_refused(
        aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(features={"listsCount": False, "pageSize": 10})
    before = aurora.stats()["requests"]
    run = _pull(aurora, tmp_path, page_size=200)
    served = sum(len(ids) for ids in server_versions(aurora.base).values())
    assert landed_versions(run) == server_versions(aurora.base)
    assert aurora.stats()["requests"] - before < served / 10 / 4, "pages of the server's 10, not of the 200 asked"

    aurora.configure(features={"strict": True, "count": False})  # refuses _count with HTTP 400
    refused = _pull(aurora, tmp_path, full=True)
    assert landed_versions(refused) == server_versions(aurora.base)
    assert any("refused _count" in w for w in manifest(refused)["warnings"])


def test_without_history_deletions_are_reconciled_periodically_and_on_every_full_pull(
        aurora: FhirTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    aurora.configure(features={"history": False})
    _pull(aurora, tmp_path)
    changed = change_server(aurora)
    with caplog.at_level(logging.INFO, logger="connectors.rest"):
        incremental = _pull(aurora, tmp_path)
    not_yet = manifest(incremental)["deletions"]["Procedure"]
    assert not_yet["method"] == "not checked this run" and "next_id_reconciliation" in not_yet
    # the log says so: a deleted resource stays published until the reconciliation, which is when
    assert f"Procedure: deletions not checked this run (the server lists no _history); the next id reconciliation " \
           f"is due {not_yet['next_id_reconciliation']}" in caplog.text
    assert not landed_lines(incremental, "tombstones")
    full = _pull(aurora, tmp_path, full=True)
    assert manifest(full)["deletions"]["Procedure"] == {
        "method": "id reconciliation with the full search", "listed": len(server_versions(aurora.base)["Procedure"]),
        "deleted": 2, "recovered": 0}
    assert {t["id"] for t in landed_lines(full, "tombstones")} == changed["deleted"]
    assert current(tmp_path) == server_versions(aurora.base)
    assert not list(full.glob("listed-*")), "the id listings are working state, not landed data"


def test_an_id_only_listing_finds_deletions_and_lands_what_a_window_missed(
        aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(features={"history": False})
    first = _pull(aurora, tmp_path)
    observations = (first / "Observation.ndjson").read_text(encoding="utf-8").splitlines()
    missed = json.loads(observations[0])["id"]
    (first / "Observation.ndjson").write_text("\n".join(observations[1:]) + "\n", encoding="utf-8")
    changed = change_server(aurora)
    second = _pull(aurora, tmp_path, reconcile_every_days=0)
    deletions = manifest(second)["deletions"]
    assert deletions["Procedure"]["method"] == "id reconciliation (_elements=id)"
    assert deletions["Procedure"]["deleted"] == 2
    assert deletions["Observation"]["recovered"] == 1 and missed in landed_versions(second)["Observation"]
    assert set(landed_versions(second)["Observation"]) == changed["Observation"] | {missed}
    assert current(tmp_path) == server_versions(aurora.base)


def test_a_full_pull_starts_afresh_instead_of_resuming_an_incremental_partial_run(
        aurora: FhirTestServer, tmp_path: Path) -> None:
    _pull(aurora, tmp_path)
    change_server(aurora)
    aurora.configure(faults={"every": 1, "kinds": ["503"]})
    with pytest.raises(SourceUnreachable, match="HTTP 503"):
        _pull(aurora, tmp_path, max_attempts=1)
    zone = LandingZone(tmp_path, "aurora")
    (partial,) = zone.zones.landing("aurora").glob(".partial-*")
    aurora.configure(faults={})
    full = _pull(aurora, tmp_path, full=True)
    assert manifest(full)["resumed"] is False and not any(manifest(full)["window"]["since"].values())
    assert not partial.exists() and not zone.zones.abandoned_runs("aurora"), "kept only until a pull completes"
    assert current(tmp_path) == server_versions(aurora.base)


def test_a_resume_that_fails_twice_the_same_way_is_abandoned_and_kept_for_inspection(
        aurora: FhirTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server's next links name another host: every attempt stops at the same link."""
    aurora.configure(paging={"nextHost": "localhost"})
    zone = LandingZone(tmp_path, "aurora")
    for _ in range(2):
        with pytest.raises(SourceProtocolError, match="points to another server"):
            _pull(aurora, tmp_path, concurrency=1)
    (stuck,) = zone.zones.landing("aurora").glob(".partial-*")
    with caplog.at_level(logging.WARNING), pytest.raises(SourceProtocolError, match="points to another server"):
        _pull(aurora, tmp_path, concurrency=1)
    assert "failed 2 times in a row the same way" in caplog.text and "starting a fresh pull" in caplog.text
    (kept,) = zone.zones.abandoned_runs("aurora")
    assert kept.name == stuck.name.replace(".partial-", ".abandoned-") and (kept / "Patient.ndjson").stat().st_size
    aurora.configure(paging={})
    done = _pull(aurora, tmp_path, concurrency=1)
    assert manifest(done)["resumed"] is True, "the fresh pull that failed once is resumed"
    assert not zone.zones.abandoned_runs("aurora")
    assert landed_versions(done) == server_versions(aurora.base)


def test_a_server_refusing_system_search_without_saying_so_gets_an_error_that_says_what_to_set(
        aurora: FhirTestServer, tmp_path: Path) -> None:
    aurora.configure(features={"systemSearch": False, "honest": False})
    with pytest.raises(SourceProtocolError, match=r"set server_features = \{ system_search = false \}"):
        _pull(aurora, tmp_path)
    run = _pull(aurora, tmp_path, server_features={"system_search": False})
    assert landed_versions(run) == server_versions(aurora.base)
    assert manifest(run)["plan"]["Observation"] == {"last_updated": True, "count": True, "history": False,
                                                    "system_search": False, "described": True}


@pytest.mark.parametrize(("case", "error", "advice"), [
    ("not the FHIR base", SourceProtocolError, "check that base_url is the FHIR base"),
    ("wrong token", AuthenticationFailed, "Check the source's auth settings"),
    ("server failing", SourceUnreachable, "then rerun: the pull resumes where it stopped"),
])
def test_connector_errors_say_what_to_do_next(aurora: FhirTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              case: str, error: type[Exception], advice: str) -> None:
    settings: dict[str, Any] = {"max_attempts": 1}
    if case == "not the FHIR base":
        settings["base_url"] = aurora.root + "/elsewhere"
    elif case == "wrong token":
        aurora.configure(auth={"mode": "bearer", "token": "the-right-one"})
        monkeypatch.setenv("ILP_TEST_TOKEN", "a-wrong-one")
        settings["auth"] = AuthSettings(kind="bearer", token=SecretRef(env="ILP_TEST_TOKEN"))
    else:
        aurora.configure(faults={"every": 1, "kinds": ["503"]})
    with pytest.raises(error) as failure:
        _pull(aurora, tmp_path, **settings)
    assert advice in str(failure.value) and "a-wrong-one" not in str(failure.value)


def test_a_type_the_statement_leaves_out_is_searched_without_counting_on_its_history(
        fhir_server: FhirTestServer) -> None:
    """A hospital's CapabilityStatement that lists its clinical types but not ConceptMap says nothing of ConceptMap's
    `_history`: the plan finds its deletions by ids instead of trying `_history` on every incremental run. A
    statement that lists no type at all leaves every type as the server may have it."""
    statement = fhir_server.admin.get("/fhir/metadata").json()
    for entry in statement["rest"]:
        entry["resource"] = [r for r in entry["resource"] if r["type"] != "ConceptMap"]
    plans = plan_types(statement, ("Patient", "ConceptMap"), ServerFeatures())
    assert plans["Patient"].history and plans["Patient"].described
    assert not plans["ConceptMap"].history and not plans["ConceptMap"].described
    assert plan_types({"resourceType": "CapabilityStatement"}, ("ConceptMap",), ServerFeatures())["ConceptMap"].history
