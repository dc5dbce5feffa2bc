"""FHIR ConceptMaps that translate a centre's local codes into canonical codings.

The synthetic generator builds them for its local-code centre; transforms load them (from files or a centre's
server) and translate before looking codings up in the canonical ValueSets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.terminology.valuesets import BASE_URL, Coding


def build_conceptmap(map_id: str, title: str, pairs: Iterable[tuple[Coding, Coding]]) -> dict[str, Any]:
    """A ConceptMap resource with one group per (source system, target system), `equivalent` mappings."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for source, target in pairs:
        element = {"code": source.code, "display": source.display,
                   "target": [{"code": target.code, "display": target.display, "equivalence": "equivalent"}]}
        groups.setdefault((source.system, target.system), []).append(element)
    return {
        "resourceType": "ConceptMap", "id": map_id, "url": f"{BASE_URL}/ConceptMap/{map_id}", "version": "1",
        "name": "".join(p.capitalize() for p in map_id.split("-")), "title": title, "status": "active",
        "group": [{"source": s, "target": t, "element": els} for (s, t), els in groups.items()],
    }


@dataclass(frozen=True)
class ConceptMapIndex:
    """Translation table of one or more ConceptMaps: (system, code) -> target codings."""

    targets: dict[tuple[str, str], tuple[Coding, ...]]

    def translate(self, system: str | None, code: str | None) -> tuple[Coding, ...]:
        return self.targets.get((system or "", code or ""), ())

    @classmethod
    def from_resources(cls, maps: Iterable[dict[str, Any]]) -> ConceptMapIndex:
        targets: dict[tuple[str, str], list[Coding]] = {}
        for cmap in maps:
            if cmap.get("resourceType") != "ConceptMap":
                raise ValueError(f"not a ConceptMap: resourceType {cmap.get('resourceType')!r}")
            for group in cmap.get("group", []):
                for element in group.get("element", []):
                    for target in element.get("target", []):
                        if target.get("equivalence") in ("unmatched", "disjoint"):
                            continue
                        targets.setdefault((group["source"], element["code"]), []).append(
                            Coding(group["target"], target["code"], target.get("display")))
        return cls({k: tuple(v) for k, v in targets.items()})

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> ConceptMapIndex:
        return cls.from_resources(json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)
