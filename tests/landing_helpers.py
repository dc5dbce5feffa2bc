"""Pull from the test FHIR server quickly, and compare what it holds with what a landing run holds, as
{type: {id: versionId}}."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from connectors import RESOURCE_TYPES, BulkSettings, BulkSource, CohortSearch, RestSettings, RestSource
from demo.fhir_server import FhirTestServer

Versions = dict[str, dict[str, str]]
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 20}  # retries without the waits


def serving(server: FhirTestServer, folder: Path) -> FhirTestServer:
    """The (emptied) test server loaded with a synthetic centre, its exports ready at the first poll."""
    server.load_centre(folder)
    server.configure(bulk={"pollsBeforeReady": 1, "retryAfter": 0})
    return server


def rest(server: FhirTestServer, resource_types: tuple[str, ...] = RESOURCE_TYPES, cohort: CohortSearch | None = None,
         **kw: Any) -> RestSource:
    return RestSource(RestSettings(**{"base_url": server.base, **FAST, **kw}), resource_types, cohort=cohort)


def bulk(server: FhirTestServer, resource_types: tuple[str, ...] = RESOURCE_TYPES, **kw: Any) -> BulkSource:
    return BulkSource(BulkSettings(base_url=server.base, **{**FAST, "poll_interval_s": 0.05, **kw}), resource_types)


def server_versions(base: str, types: tuple[str, ...] = RESOURCE_TYPES) -> Versions:
    """Every resource the server holds now (read through its admin API: no auth, faults or missing features)."""
    held: Versions = {}
    with httpx.Client(timeout=60) as client:
        for resource_type in types:
            bundle = client.get(f"{base.removesuffix('/fhir')}/_admin/fhir/{resource_type}",
                                params={"_count": 100_000}).json()
            held[resource_type] = {e["resource"]["id"]: e["resource"]["meta"]["versionId"]
                                   for e in bundle.get("entry", [])}
    return held


def landed_lines(run: Path, name: str) -> list[dict[str, Any]]:
    path = run / f"{name}.ndjson"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def landed_versions(run: Path, types: tuple[str, ...] = RESOURCE_TYPES) -> Versions:
    """What a run landed; fails if any (id, versionId) landed twice."""
    landed: Versions = {}
    for resource_type in types:
        lines = landed_lines(run, resource_type)
        pairs = [(r["id"], (r.get("meta") or {}).get("versionId")) for r in lines]
        assert len(pairs) == len(set(pairs)), f"{resource_type}: a resource version landed twice"
        assert all(r["resourceType"] == resource_type for r in lines)
        landed[resource_type] = dict(pairs)
    return landed


def manifest(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "manifest.json").read_text(encoding="utf-8")))


def change_server(server: FhirTestServer) -> dict[str, set[str]]:
    """Update 3 Observations, add 2 Conditions, delete 2 Procedures; return what changed."""
    held = server_versions(server.base)
    with httpx.Client(base_url=server.base, timeout=30) as client:
        updated = sorted(held["Observation"])[:3]
        for rid in updated:
            resource = client.get(f"/Observation/{rid}").json()
            resource["status"] = "amended"
            assert client.put(f"/Observation/{rid}", json=resource).status_code == 200
        template = client.get(f"/Condition/{sorted(held['Condition'])[0]}").json()
        added = set()
        for n in range(2):
            fresh = copy.deepcopy(template)
            fresh["id"] = f"new-condition-{n}"
            assert client.put(f"/Condition/{fresh['id']}", json=fresh).status_code in (200, 201)
            added.add(fresh["id"])
        deleted = set(sorted(held["Procedure"])[:2])
        for rid in deleted:
            assert client.delete(f"/Procedure/{rid}").status_code == 200
    return {"Observation": set(updated), "Condition": added, "deleted": deleted}
