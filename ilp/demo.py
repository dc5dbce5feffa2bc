"""The demo: the built-in consortium behind real FHIR servers, run through every stage that exists.

Each demo centre gets its own local FHIR server loaded with its synthetic data in its own dialect; the first two
centres are pulled by REST search and the third by Bulk Data $export, as a consortium would run it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import connectors
from ilp import synth
from ilp.fhir_server import FhirTestServer


@dataclass(frozen=True)
class DemoResult:
    synthetic: Path
    landing: dict[str, Path]
    seconds: float


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
    return DemoResult(out / "synthetic", landing, time.perf_counter() - started)
