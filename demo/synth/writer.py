"""Write a synthetic consortium to disk, streaming: patients are simulated, rendered and written one at a time.

Per centre: `fhir/<ResourceType>.ndjson` (as a Bulk Data export would give it), `bundles/bundle-NNNNN.json`
(transaction Bundles to load a FHIR server), `conceptmaps/*.json` and `views.toml` (the configuration's view
overrides) where the dialect needs them, and
`truth/<table>.parquet` (the canonical tables the pipeline must recover). `consortium.json` at the top says what
was generated, from which seed, with counts and a sha256 per file. Same seed and sizes: same bytes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from demo.synth.case import simulate
from demo.synth.dialects import renderer_for, views_toml
from demo.synth.fhir import Resource
from demo.synth.population import population as general_population
from demo.synth.profiles import CentreProfile
from demo.synth.truth import Row, TruthBuilder
from foundation.fileio import sha256_file
from foundation.model import BY_NAME, RESOURCE_TYPES, TABLES

GENERATOR_VERSION = "1"


def _json_line(resource: Resource) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class _TruthWriter:
    """Buffers canonical rows and writes them as Parquet row groups, so memory stays flat at any size."""

    folder: Path
    batch_rows: int = 20_000
    buffers: dict[str, list[Row]] = field(default_factory=dict)
    writers: dict[str, pq.ParquetWriter] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, tables: dict[str, list[Row]]) -> None:
        for name, rows in tables.items():
            self.buffers.setdefault(name, []).extend(rows)
            if len(self.buffers[name]) >= self.batch_rows:
                self._flush(name)

    def _flush(self, name: str) -> None:
        rows = self.buffers.pop(name, [])
        schema = BY_NAME[name].arrow_schema()
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", schema, compression="zstd")
        self.writers[name].write_table(pa.Table.from_pylist(rows, schema=schema))
        self.counts[name] = self.counts.get(name, 0) + len(rows)

    def close(self) -> None:
        for table in TABLES:
            self._flush(table.name)
        for writer in self.writers.values():
            writer.close()


def generate_centre(profile: CentreProfile, seed: int, out: Path, bundle_patients: int = 50,
                    population: int = 0) -> dict[str, Any]:
    """Simulate, render and write one centre; return its counts. `bundle_patients` 0 writes no Bundles.
    `population`: as many of the hospital's other patients beside the cohort (`demo.synth.population`), in the
    same files; the truth is the cohort's alone."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("fhir", "bundles", "truth"):
        (out / sub).mkdir(parents=True)
    renderer = renderer_for(profile, seed)
    truth = TruthBuilder(renderer)
    resources = dict.fromkeys(RESOURCE_TYPES, 0)
    truth_writer = _TruthWriter(out / "truth")
    bundle: list[dict[str, Any]] = []
    bundles = 0
    with ExitStack() as stack:
        ndjson: dict[str, IO[str]] = {
            t: stack.enter_context((out / "fhir" / f"{t}.ndjson").open("w", encoding="utf-8", newline="\n"))
            for t in RESOURCE_TYPES}
        patients = profile.patients + population

        def write(index: int, records: list[Resource]) -> None:
            nonlocal bundle, bundles
            for resource in records:
                ndjson[resource["resourceType"]].write(_json_line(resource))
                resources[resource["resourceType"]] += 1
                if bundle_patients:
                    bundle.append(renderer.transaction_entry(resource))
            if bundle and ((index + 1) % bundle_patients == 0 or index + 1 == patients):
                bundles += 1
                _write_bundle(out / "bundles" / f"bundle-{bundles:05d}.json", bundle)
                bundle = []

        for index in range(profile.patients):
            case = simulate(profile, index, seed)
            rendered = renderer.render(case)
            write(index, rendered.resources)
            truth_writer.add(truth.rows(case, rendered))
        for index, records in enumerate(general_population(renderer, population, seed), profile.patients):
            write(index, records)
    truth_writer.close()
    if (cmap := renderer.conceptmap()) is not None:
        (out / "conceptmaps").mkdir()
        (out / "conceptmaps" / f"ConceptMap-{cmap['id']}.json").write_text(
            json.dumps(cmap, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if views := renderer.views():
        (out / "views.toml").write_text(views_toml(views), encoding="utf-8")
    return {"patients": profile.patients, "population": population, "resources": resources, "bundles": bundles,
            "truth_rows": truth_writer.counts}


def _write_bundle(path: Path, entries: list[dict[str, Any]]) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    path.write_text(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def generate(profiles: Iterable[CentreProfile], seed: int, out: Path, bundle_patients: int = 50,
             population: int = 0) -> dict[str, Any]:
    """Write the consortium under `out` and its description to `out/consortium.json`; return the description.
    `population`: general patients beside each centre's cohort, as a whole hospital's data holds them."""
    out.mkdir(parents=True, exist_ok=True)
    centres = []
    for profile in profiles:
        folder = out / profile.centre_id
        counts = generate_centre(profile, seed, folder, bundle_patients, population)
        files = {str(p.relative_to(out)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        centres.append({"centre_id": profile.centre_id, "name": profile.name, "dialect": profile.dialect,
                        "calibrated_to": profile.calibrated_to, **counts, "files": files})
    description = {"generator_version": GENERATOR_VERSION, "seed": seed, "centres": centres}
    (out / "consortium.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return description
