"""Land NDJSON lines (a bulk export file, a file on disk) resource by resource; what is not one is rejected.

Every line ends up somewhere: in its resource type's stream, or in the run's rejects with the reason, the
source and the line number, so the counts reconcile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from connectors import jsonio
from connectors.landing import REJECTED, LandingRun

BATCH = 1000
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id datatype; also keeps path characters out of ids


class Unreadable:
    """What stands in for input that could not be read at all (a truncated gzip): rejected with its reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def classify(item: Any, wanted: tuple[str, ...]) -> str | None:
    """Why a parsed JSON value cannot land as a resource, or None when it can."""
    if not isinstance(item, dict):
        return "not a JSON object"
    kind = item.get("resourceType")
    if not isinstance(kind, str) or not kind:
        return "no resourceType"
    if kind not in wanted:
        return f"resource type {kind} was not asked for"
    if not isinstance(item.get("id"), str) or not item["id"]:
        return "resource has no id"
    if not FHIR_ID.fullmatch(item["id"]):
        return "id is not a FHIR id (1 to 64 letters, digits, '-' or '.')"
    return None


def kept_of(item: Any, raw: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    """What a reject keeps of its input: a resource of a type not asked for (a whole hospital's Encounters, say)
    only its type and id, so an export of everything does not copy what is out of scope; anything else its text,
    to show what was wrong with it."""
    if isinstance(item, dict) and isinstance(item.get("resourceType"), str) and item["resourceType"] not in wanted:
        return {"resourceType": item["resourceType"], "id": item.get("id")}
    return {"raw": raw[:100_000]}


def land_items(run: LandingRun, items: Iterable[tuple[int, Any, str]], source: str, wanted: tuple[str, ...]
               ) -> dict[str, int]:
    """Land (line number, parsed value or None, raw text) items; return counts per stream written to."""
    batches: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}

    def flush(name: str) -> None:
        counts[name] = counts.get(name, 0) + run.stream(name).append(batches.pop(name, []))

    for number, item, raw in items:
        reason = ("not valid JSON" if item is None else item.reason if isinstance(item, Unreadable)
                  else classify(item, wanted))
        if reason:
            name, record = REJECTED, {"source": source, "line": number, "reason": reason, **kept_of(item, raw, wanted)}
        else:
            name, record = item["resourceType"], item
        batches.setdefault(name, []).append(record)
        if len(batches[name]) >= BATCH:
            flush(name)
    for name in list(batches):
        flush(name)
    return counts


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[int, Any, str]]:
    """(line number, parsed JSON or None, raw text) for every non-blank line; a leading BOM is tolerated."""
    for number, line in enumerate(lines, start=1):
        text = line.lstrip("\ufeff").strip()
        if not text:
            continue
        try:
            yield number, jsonio.loads(text), text
        except ValueError:
            yield number, None, text
