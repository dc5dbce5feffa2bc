"""The demo: the built-in consortium behind real FHIR servers, run through every stage that exists.

Each demo centre gets its own local FHIR server loaded with its synthetic data in its own dialect; the first two
centres are pulled by REST search and the third by Bulk Data $export, as a consortium would run it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import connectors
from analytics import analyse, read_snapshot
from expectations import audit_and_publish
from ilp import synth
from ilp.fhir_server import FhirTestServer
from ilp.publication import published_snapshot
from ilp.secrets import Secret, SecretRef
from ilp.spark import get_spark
from ilp.synth.fhir import NATIONAL_ID_SYSTEM
from transforms.pipeline import CentreSettings, new_run_id, transform_centre


@dataclass(frozen=True)
class DemoResult:
    synthetic: Path
    landing: dict[str, Path]
    snapshot: Path
    data_docs: Path
    report: Path
    seconds: float


def demo_secret(out: Path) -> Secret:
    """The demo's consortium key: random, kept in the demo's output folder (never a key built into the code)."""
    path = out / "secrets" / "consortium.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return SecretRef(file=path).resolve()


def run_demo(out: Path, echo: Callable[[str], None] = print) -> DemoResult:
    started = time.perf_counter()
    description = synth.generate(synth.DEMO_CONSORTIUM, synth.DEMO_SEED, out / "synthetic")
    echo(f"synthetic consortium: {out / 'synthetic'} (seed {description['seed']})")
    zones = out / "zones"
    landing: dict[str, Path] = {}
    for n, centre in enumerate(synth.DEMO_CONSORTIUM):
        server = FhirTestServer()
        try:
            loaded = server.load_centre(out / "synthetic" / centre.centre_id)
            source: connectors.Source
            if n < 2:
                source = connectors.RestSource(connectors.RestSettings(server.base))
                how = "REST search"
            else:
                server.configure(bulk={"pollsBeforeReady": 1, "retryAfter": 0})
                source = connectors.BulkSource(connectors.BulkSettings(server.base, poll_interval_s=0.2))
                how = "Bulk $export"
            with source:
                run = connectors.ingest(source, connectors.LandingZone(zones, centre.centre_id))
        finally:
            server.stop()
        files = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["files"]
        landed = sum(f["count"] for name, f in files.items() if name[:1].isupper())
        echo(f"{centre.centre_id:<10} {centre.dialect:<12} server loaded with {loaded} resources; "
             f"{how} landed {landed} in {run}")
        landing[centre.centre_id] = run
    spark = get_spark()
    run_id = new_run_id()
    for centre in synth.DEMO_CONSORTIUM:
        maps = tuple(sorted((out / "synthetic" / centre.centre_id / "conceptmaps").glob("*.json")))
        report = transform_centre(spark, zones, CentreSettings(centre.centre_id, maps, NATIONAL_ID_SYSTEM),
                                  demo_secret(out), run_id)
        quarantined = sum(c["quarantined"] for c in report.reconciliation.values())
        echo(f"{centre.centre_id:<10} transformed: {report.rows['cohort']} patients, {report.rows['perfusions']} "
             f"perfusions, {quarantined} resources quarantined")
    snapshot = zones / "cohort" / "snapshots" / f"run={run_id}"
    publication = audit_and_publish(spark, zones, snapshot)
    echo(f"validated: {publication.report.evaluated} expectations, {len(publication.report.findings)} warnings; "
         f"published {snapshot.name}")
    published = published_snapshot(zones)
    result = analyse(read_snapshot(published), zones / "reports" / published.name, title="ILP demo consortium")
    echo(f"analysed: {len(result.tables)} tables, {len(result.figures)} figure files, report {result.report}")
    return DemoResult(out / "synthetic", landing, snapshot, publication.report.data_docs, result.report,
                      time.perf_counter() - started)
