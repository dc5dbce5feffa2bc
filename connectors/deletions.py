"""Deletions of a type since the last pull, found the way the server allows: its type-level `_history`, or an
id reconciliation: every id the server still serves (from a search that read everything, or an id-only listing
with `_elements=id`) compared with every id that landed and was not deleted since. Ids no longer served become
tombstones; ids served that never landed are read and landed (a resource an incremental window missed).

A listing whose total moved while it was paged may have skipped an id, so it deletes nothing (the run warns and
the next reconciliation tries again). The manifest says, per type, which way deletions were found.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.landing import LISTED, REJECTED, TOMBSTONES, LandingRun, StreamProgress, iter_lines
from connectors.ndjson import classify
from connectors.paging import Pager
from foundation.errors import AuthenticationFailed, SourceProtocolError

log = logging.getLogger(__name__)
REFUSED = frozenset({400, 403, 404, 405, 410, 501})  # statuses of a server that does not serve a request at all


def refused(error: Exception) -> bool:
    """Whether the error is the server declining a kind of request (not a failure worth retrying the run for)."""
    return isinstance(error, SourceProtocolError | AuthenticationFailed) and error.status in REFUSED


def listed_stream(resource_type: str) -> str:
    return f"{LISTED}{resource_type}"


def list_ids(run: LandingRun, resource_type: str, bundle: dict[str, Any]) -> None:
    """Note every id of the type a page served (valid resource or not: it is on the server)."""
    ids = [{"id": r["id"]} for e in bundle.get("entry") or [] if isinstance(e, dict)
           and isinstance(r := e.get("resource"), dict) and r.get("resourceType") == resource_type and r.get("id")]
    run.stream(listed_stream(resource_type)).append(ids)


def rejected_ids(run: LandingRun, resource_type: str) -> set[str]:
    """Ids of the type's resources that this run's searches served but rejected (they are on the server)."""
    return {str(r["id"]) for line in iter_lines(run.folder / f"{REJECTED}.ndjson")
            if line.get("source") == f"{resource_type} search" and isinstance(line.get("entry"), dict)
            and isinstance(r := line["entry"].get("resource"), dict) and r.get("resourceType") == resource_type
            and r.get("id")}


def history(pager: Pager, run: LandingRun, resource_type: str, since: str) -> int:
    """Tombstones from the type's `_history` since `since`; how many. Resumes at its checkpointed page."""
    cursor = run.progress.setdefault(f"history-{resource_type}", StreamProgress())
    first = f"{pager.client.base_url}/{resource_type}/_history?{urlencode({'_since': since, '_count': 500})}"

    def land(_: httpx.Response, bundle: dict[str, Any]) -> None:
        cursor.count += run.stream(TOMBSTONES).append([
            {"resourceType": resource_type, "id": e["request"]["url"].rsplit("/", 1)[-1],
             "deleted_at": (e.get("response") or {}).get("lastModified")}
            for e in bundle.get("entry") or [] if (e.get("request") or {}).get("method") == "DELETE"])

    pager.walk_all([first], cursor, f"{resource_type} history", land)
    return cursor.count


def reconciliation_due(run: LandingRun, resource_type: str, every_days: float) -> str | None:
    """When the next id reconciliation of the type is due, or None when it is due now."""
    last = run.zone.reconciliations().get(resource_type)
    if last is None:
        return None
    due = datetime.fromisoformat(last) + timedelta(days=every_days)
    return None if due <= datetime.now(UTC) else due.isoformat()


def reconcile(pager: Pager, run: LandingRun, resource_type: str, listed_at: str, whole: bool) -> dict[str, int]:
    """Compare the ids the server serves with those landed; land tombstones and what was missed; the counts.

    `whole`: this run's search read the type whole and landed (or rejected) all it served, so what it served is
    what landed; otherwise the served ids are the run's listing."""
    landed: dict[str, str] = {}
    for item in iter_lines(run.folder / f"{resource_type}.ndjson"):
        landed[str(item.get("id"))] = max(landed.get(str(item.get("id")), ""),
                                          str((item.get("meta") or {}).get("lastUpdated") or ""))
    if whole:
        listed = set(landed) | rejected_ids(run, resource_type)
    else:
        listed = {str(line["id"]) for line in iter_lines(run.folder / f"{listed_stream(resource_type)}.ndjson")}
    known = run.zone.live_ids(resource_type)
    for rid, last in landed.items():
        known[rid] = max(known.get(rid, ""), last)
    gone = sorted(set(known) - listed)
    # Deleted after its last landed version, whatever the two clocks' resolutions: max() keeps that true.
    if gone:
        run.stream(TOMBSTONES).append([{"resourceType": resource_type, "id": i, "deleted_at": max(listed_at, known[i]),
                                        "found_by": "id reconciliation"} for i in gone])
    missed = sorted(listed - set(known))
    for rid in missed:
        try:
            _, resource = pager.client.get_json(f"{resource_type}/{rid}", f"{resource_type}/{rid} (listed, not landed)")
        except (SourceProtocolError, AuthenticationFailed) as error:
            if not refused(error):
                raise
            continue  # deleted since it was listed
        reason = classify(resource, (resource_type,))
        if reason is None:
            run.stream(resource_type).append([resource])
        else:
            run.stream(REJECTED).append([{"source": f"{resource_type} read", "line": f"{resource_type}/{rid}",
                                          "reason": reason, "entry": {"resource": resource}}])
    if gone:
        log.info("%s: %d ids no longer served: landed as deletions", resource_type, len(gone))
    return {"listed": len(listed), "deleted": len(gone), "recovered": len(missed)}
