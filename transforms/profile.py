"""`ilp profile`: what the views make of a centre's landed data, before any of its transforms is trusted.

A data manager onboarding a centre needs to see where the centre's data and the project's views disagree, and
what to write in the configuration to fix it. The profile runs the transform into a scratch snapshot (same code,
same plan: what it reports is what a transform would do), summarises it, and removes it:

- coverage per canonical column, and the columns the centre leaves empty where others fill them, with the view
  columns that feed each (their `feeds` tags) and what they read now;
- extension URLs in the landed resources (at any depth, with their value type) that no view reads;
- codes that mean nothing, from any element the views read;
- resources no table used, by reason (the reason says what link or value was missing).

Each finding comes with the override or ConceptMap entry that would fix it, as the configuration spells it.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from foundation.manifests import SnapshotManifest
from foundation.model import RESOURCE_TYPES
from foundation.secrets import Secret
from foundation.zones import Zones
from transforms.landed import completed_runs, landed_items
from transforms.pipeline import CentreSettings, TransformOptions, new_run_id, transform
from transforms.views.catalogue import Catalogue, default_views

VIEW_OF_TYPE = {v.resource: v.name for v in default_views().values()}


@dataclass
class Extension:
    resource_type: str
    url: str
    element: str  # where it sits: `Procedure.extension`, `Condition.bodySite.extension`
    value: str  # its value[x] key: `valueCodeableConcept`
    resources: int

    def path(self) -> str:
        """The FHIRPath a view column would read it with."""
        kind = self.value.removeprefix("value")
        kind = kind[:1].lower() + kind[1:] if kind in ("Boolean", "String", "Code", "DateTime", "Integer",
                                                       "Decimal", "Date") else kind
        inner = self.element.split(".")[1:-1]
        prefix = ".".join(inner) + "." if inner else ""
        return f"{prefix}extension('{self.url}').value.ofType({kind})" if kind else f"{prefix}extension('{self.url}')"


@dataclass
class Gap:
    column: str  # table.column
    warning: str
    feeders: list[tuple[str, str]]  # (view.column, what it reads now)


@dataclass
class CentreFindings:
    centre_id: str
    run_id: str
    resources: dict[str, int]
    coverage: dict[str, dict[str, int]]
    gaps: list[Gap] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    unused: dict[str, int] = field(default_factory=dict)  # reason -> resources
    cohort: dict[str, Any] = field(default_factory=dict)  # the cohort found (`SnapshotManifest.cohort`)

    def cohort_line(self) -> str:
        """How many of the centre's patients the cohort definition selects, and by which codes."""
        found = self.cohort
        if not found:
            return "cohort: not recorded"
        total = found["patients"] + found["other_patients"]
        codes = ", ".join(f"{code} ({n})" for code, n in found["codes"].items()) or "none"
        line = f"cohort: {found['patients']} of {total} patients qualify, by the procedure codes {codes}"
        return line + (f"; {found['warning']}" if found.get("warning") else "")

    def markdown(self) -> str:
        return "\n".join(_markdown(self)) + "\n"


def _walk(node: Any, element: str) -> Iterator[tuple[str, str, str]]:
    """(element, url, value key) of every extension under `node`, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for extension in value:
                    if isinstance(extension, dict) and isinstance(extension.get("url"), str):
                        kind = next((k for k in extension if k.startswith("value")), "")
                        yield f"{element}.{key}", extension["url"], kind
            yield from _walk(value, f"{element}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, element)


def landed_extensions(root: Path, centre_id: str) -> list[Extension]:
    """Every extension in the centre's landed resources (every run), counted in distinct resources."""
    seen: dict[tuple[str, str, str, str], set[str]] = {}
    for run in completed_runs(root, centre_id):
        for resource_type in RESOURCE_TYPES:
            for _, resource in landed_items(run.path(resource_type)):
                if not isinstance(resource, dict):
                    continue
                for element, url, kind in set(_walk(resource, resource_type)):
                    seen.setdefault((resource_type, url, element, kind), set()).add(str(resource.get("id")))
    return [Extension(t, url, element, kind, len(ids)) for (t, url, element, kind), ids in sorted(seen.items())]


def _feeders(column: str, catalogue: Catalogue, centre_id: str) -> list[tuple[str, str]]:
    """The view columns whose `feeds` tags name the canonical column (or, for a cohort column, the base
    column of the same name), with the path each reads at the centre."""
    table, name = column.split(".")
    found = []
    for view in default_views().values():
        overrides = catalogue.overrides.get(centre_id, {}).get(view.name, {})
        for view_column in view.columns():
            spec = view.column(view_column)
            feeds = {t["value"] for t in spec.get("tag", []) if t.get("name") == "feeds"}
            if column in feeds or (table == "cohort" and any(f.endswith(f".{name}") for f in feeds)):
                found.append((f"{view.name}.{view_column}", overrides.get(view_column, spec["path"])))
    return found


def profile_centres(spark: SparkSession, root: Path, centres: list[CentreSettings], secret: Secret,
                    options: TransformOptions, reported: Sequence[str] | None = None) -> dict[str, CentreFindings]:
    """Transform the centres together, as a transform would, and profile the `reported` ones (all by default):
    each report is written under `profiles/centre=<id>/run=<id>/` (profile.md and profile.json)."""
    zones = Zones(root)
    run_id = f"profile-{new_run_id()}"
    catalogue = Catalogue({c.centre_id: c.views for c in centres})
    transform(spark, root, centres, secret, run_id, options)
    snapshot = zones.snapshot(run_id)
    profiles = {}
    try:
        for centre in reported or [c.centre_id for c in centres]:
            manifest = SnapshotManifest.read(snapshot.manifest_path(centre))
            read = catalogue.extension_urls(centre)
            extensions = [e for e in landed_extensions(root, centre) if e.url not in read.get(e.resource_type, set())]
            profile = CentreFindings(
                centre, run_id, {t: c.resources for t, c in manifest.reconciliation.items()}, manifest.completeness,
                extensions=extensions,
                unmapped=_csv_rows(zones.unmapped_codes(centre, run_id) / "unmapped_codes.csv"),
                unused=_unused(zones.quarantine("harmonise", centre, run_id)), cohort=manifest.cohort)
            profile.gaps = [Gap(c, w, _feeders(c, catalogue, centre))
                            for c, w in zip(manifest.gaps, manifest.warnings, strict=True)]
            folder = zones.profile(centre, run_id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "profile.md").write_text(profile.markdown(), encoding="utf-8")
            (folder / "profile.json").write_text(json.dumps(asdict(profile), indent=1), encoding="utf-8")
            profiles[centre] = profile
    finally:
        shutil.rmtree(snapshot.folder, ignore_errors=True)
        for settings in centres:
            for folder in (zones.quarantine("harmonise", settings.centre_id, run_id),
                           zones.unmapped_codes(settings.centre_id, run_id),
                           zones.unknown_extensions(settings.centre_id, run_id)):
                shutil.rmtree(folder, ignore_errors=True)
    return profiles


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _unused(folder: Path) -> dict[str, int]:
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        return {}
    reasons = pq.read_table(folder, columns=["reason"]).column("reason").to_pylist()
    return dict(Counter(reasons).most_common())


def _markdown(profile: CentreFindings) -> Iterator[str]:
    view_name = VIEW_OF_TYPE
    yield f"# Profile of centre {profile.centre_id}"
    yield ""
    yield "Resources landed and current: " + ", ".join(f"{t} {n}" for t, n in sorted(profile.resources.items()))
    yield ""
    yield "## Cohort"
    yield ""
    yield profile.cohort_line().removeprefix("cohort: ").capitalize() + "."
    yield ""
    yield f"## Columns empty here that other centres fill ({len(profile.gaps)})"
    for gap in profile.gaps:
        yield ""
        yield f"- **{gap.column}**: {gap.warning}"
        for feeder, path in gap.feeders:
            yield f"  - fed by `{feeder}`, which reads `{path}`"
    yield ""
    yield f"## Extensions no view reads ({len(profile.extensions)})"
    yield ""
    if profile.extensions:
        yield "| resource type | where | URL | value | resources | a view column would read it with |"
        yield "|---|---|---|---|---|---|"
        for e in profile.extensions:
            yield (f"| {e.resource_type} | {e.element} | {e.url} | {e.value or '-'} | {e.resources} | "
                   f"`{e.path()}` |")
        yield ""
        yield ("To read one, override the column of the type's view that should hold it, e.g. "
               f"`[centres.views.{view_name.get(profile.extensions[0].resource_type, 'observation')}]` "
               f"`<column> = \"{profile.extensions[0].path()}\"`.")
    yield ""
    yield f"## Codes that mean nothing ({len(profile.unmapped)})"
    yield ""
    if profile.unmapped:
        yield "| resource type | element | system | code | display | resources | left unmapped |"
        yield "|---|---|---|---|---|---|---|"
        for r in profile.unmapped:
            yield (f"| {r['resource_type']} | {r['element']} | {r['system']} | {r['code']} | {r['display']} | "
                   f"{r['resources']} | {r['resources_left_unmapped']} |")
        yield ""
        yield ("To map one, add it to a ConceptMap of the centre (`conceptmaps` in its configuration): source "
               "system and code, target the canonical coding it means (the ValueSets in foundation/terminology/ "
               "list them).")
    yield ""
    yield f"## Resources no table used ({sum(profile.unused.values())})"
    yield ""
    for reason, count in profile.unused.items():
        yield f"- {count}: {reason}"
