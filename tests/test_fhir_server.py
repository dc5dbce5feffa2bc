"""The local FHIR server's own additions behave like the Medplum router they sit beside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.fhir_server import FhirTestServer


@pytest.mark.parametrize("query", ["Observation?_count=300&_offset=600", "Patient?_count=7",
                                   "Procedure?_count=50&_lastUpdated=ge2020-01-01",
                                   "Condition?_lastUpdated=gt2999-01-01"])
def test_plain_search_fast_path_agrees_with_the_router(
        fhir_server: FhirTestServer, demo_consortium: tuple[Path, dict[str, Any]], query: str) -> None:
    fhir_server.load_centre(demo_consortium[0] / "borealis")
    fast = httpx.get(f"{fhir_server.base}/{query}").json()
    routed = httpx.get(f"{fhir_server.base}/{query}&_total=accurate").json()  # any other parameter: the router
    assert fast["total"] == routed["total"]
    assert [e["resource"] for e in fast.get("entry", [])] == [e["resource"] for e in routed.get("entry", [])]


def test_type_history_reports_updates_and_deletions(fhir_server: FhirTestServer) -> None:
    with httpx.Client(base_url=fhir_server.base) as client:
        patient = {"resourceType": "Patient", "id": "p1", "gender": "female"}
        client.put("/Patient/p1", json=patient).raise_for_status()
        client.put("/Patient/p1", json={**patient, "gender": "male"}).raise_for_status()
        client.delete("/Patient/p1").raise_for_status()
        history = client.get("/Patient/_history").json()
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["POST", "PUT", "DELETE"] and history["total"] == 3
