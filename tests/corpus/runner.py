"""Run the corpus: every case lands as its own centre (files source), then one transform over all of them.

The outcome of a case is what a reviewer needs to judge it: what was rejected at landing and why, what was
quarantined by the transform and why, the table rows, the error if the pull stopped, and whether the counts
reconcile (landing: lines in = landed + duplicates + rejected; merge: in = current + superseded + deleted +
quarantined; tables: resources = used + quarantined + out of scope).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from connectors import RESOURCE_TYPES, FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from foundation.errors import IlpError
from foundation.secrets import Secret
from tests.corpus.cases import CASES, Case, Resource, is_ilp
from transforms.pipeline import CentreSettings, TransformOptions, transform

SECRET = Secret("corpus-consortium-secret-0123456789")
STAGES = ("current", "harmonise")


@dataclass
class Outcome:
    case: Case
    error: str | None = None
    rejected: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # resource id -> reason
    rows: dict[str, int] = field(default_factory=dict)
    unreconciled: list[str] = field(default_factory=list)  # counts that do not add up, with where


def base_record(folder: Path) -> list[Resource]:
    """Every resource of the first patient of a synthetic centre who had an ILP: the record the cases break."""
    resources = [json.loads(line) for t in RESOURCE_TYPES
                 for line in (folder / "fhir" / f"{t}.ndjson").read_text(encoding="utf-8").splitlines()]
    ilp = next(r for r in resources if is_ilp(r))
    patient = ilp["subject"]["reference"]
    return [r for r in resources if f"{r['resourceType']}/{r['id']}" == patient
            or (r.get("subject") or {}).get("reference") == patient]


def run_corpus(spark: SparkSession, record: list[Resource], root: Path,
               cases: tuple[Case, ...] = CASES) -> dict[str, Outcome]:
    outcomes = {case.name: Outcome(case) for case in cases}
    landed = []
    for case in cases:
        folder = root / "inputs" / case.name
        folder.mkdir(parents=True)
        for name, content in case.files(record).items():
            (folder / name).write_bytes(content)
        try:
            with FilesSource(FilesSettings(folder=folder)) as source:
                run = ingest(source, LandingZone(root, case.name), progress=LogProgress())
        except IlpError as error:
            outcomes[case.name].error = str(error)
            continue
        landed.append(case.name)
        _landing_outcome(outcomes[case.name], run, folder)
    reports = transform(spark, root, [CentreSettings(c, cohort_may_be_empty=True) for c in landed], SECRET, "corpus",
                        TransformOptions())
    for centre, report in reports.items():
        outcome = outcomes[centre]
        outcome.rows = dict(report.rows)
        for stage in STAGES:
            folder = root / "quarantine" / f"stage={stage}" / f"centre={centre}" / "run=corpus"
            if folder.is_dir():
                for row in pq.read_table(folder, columns=["resource_id", "reason"]).to_pylist():
                    outcome.quarantined[str(row["resource_id"])] = str(row["reason"])
        for resource_type, counts in report.snapshot.manifest(centre).merge_counts.items():
            if counts["in"] != counts["current"] + counts["superseded"] + counts["deleted"] + counts["quarantined"]:
                outcome.unreconciled.append(f"merge {resource_type}: {counts}")
        for resource_type, entry in report.reconciliation.items():
            if entry.resources != entry.used + entry.quarantined + entry.out_of_scope:
                outcome.unreconciled.append(f"tables {resource_type}: {entry}")
    return outcomes


def _landing_outcome(outcome: Outcome, run: Path, folder: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    rejects = run / "rejected.ndjson"
    if rejects.exists():
        outcome.rejected = [json.loads(line)["reason"] for line in rejects.read_text(encoding="utf-8").splitlines()]
    files: dict[str, Any] = manifest["files"]
    landed = sum(f["count"] + f.get("duplicates", 0) for name, f in files.items() if name[:1].isupper())
    lines_in = manifest["source"].get("items")
    if lines_in is not None and lines_in != landed + len(outcome.rejected):
        outcome.unreconciled.append(f"landing: {lines_in} in, {landed} landed (with duplicates), "
                                    f"{len(outcome.rejected)} rejected")
