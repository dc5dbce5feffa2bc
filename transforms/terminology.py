"""The ConceptMaps a centre's codes are read through: files named in its configuration, and the ConceptMaps its
source publishes, landed with its data.

Landed ConceptMaps follow the same rule as resources: the newest version of each id wins (by `meta.lastUpdated`,
then by landing run), and a deletion removes it unless a newer version exists. They are configuration-sized, so
they are read here in Python and become literals in the Spark plan (`transforms.codes`). A landed ConceptMap that
cannot be read is left out and reported in the manifest with why, never half-used: the codes it would have
mapped then show up in the unmapped-codes report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transforms.landed import TOMBSTONES, LandedRun, landed_items

CONCEPTMAP = "ConceptMap"


@dataclass
class CentreConceptMaps:
    """A centre's ConceptMaps, where each came from, and the landed ones that could not be used."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # file names, and `ConceptMap/<id>` for landed ones
    rejected: list[str] = field(default_factory=list)


def centre_conceptmaps(files: Iterable[Path], runs: list[LandedRun], from_source: bool) -> CentreConceptMaps:
    """The ConceptMaps from `files`, plus (when `from_source`) the newest landed version of each."""
    maps = CentreConceptMaps()
    for path in files:
        maps.resources.append(json.loads(Path(path).read_text(encoding="utf-8")))
        maps.sources.append(Path(path).name)
    if from_source:
        landed, maps.rejected = _landed(runs)
        for resource_id, resource in sorted(landed.items()):
            maps.resources.append(resource)
            maps.sources.append(f"{CONCEPTMAP}/{resource_id}")
    return maps


def _landed(runs: list[LandedRun]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    newest: dict[str, tuple[tuple[str, int], dict[str, Any]]] = {}
    rejected: list[str] = []
    deleted: dict[str, str] = {}
    for order, run in enumerate(runs):
        for number, item in landed_items(run.path(CONCEPTMAP)):
            problem = "not JSON" if item is None else _problem(item)
            if problem:
                rejected.append(f"run {run.run_id} line {number}: {problem}")
                continue
            key = (str((item.get("meta") or {}).get("lastUpdated") or ""), order)
            if item["id"] not in newest or key >= newest[item["id"]][0]:
                newest[item["id"]] = (key, item)
        for _, tombstone in landed_items(run.path(TOMBSTONES)):
            if isinstance(tombstone, dict) and tombstone.get("resourceType") == CONCEPTMAP:
                deleted[str(tombstone.get("id"))] = max(deleted.get(str(tombstone.get("id")), ""),
                                                        str(tombstone.get("deleted_at") or "9999"))
    return {i: item for i, ((updated, _), item) in newest.items()
            if i not in deleted or (updated and updated > deleted[i])}, rejected


def _problem(item: Any) -> str | None:
    """Why a landed ConceptMap cannot be used, or None."""
    if not isinstance(item, dict) or item.get("resourceType") != CONCEPTMAP or not item.get("id"):
        return "not a ConceptMap with an id"
    for group in item.get("group") or []:
        if not isinstance(group, dict) or not group.get("source") or not group.get("target"):
            return f"ConceptMap/{item['id']}: a group without source or target system"
        for element in group.get("element") or []:
            if not isinstance(element, dict) or not element.get("code") or not all(
                    isinstance(t, dict) and (t.get("code") or t.get("equivalence") in ("unmatched", "disjoint"))
                    for t in element.get("target") or []):
                return f"ConceptMap/{item['id']}: an element without a source or target code"
    return None
