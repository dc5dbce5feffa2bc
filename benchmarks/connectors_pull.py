"""Benchmark: REST and bulk pulls of a 10,000-patient centre from the local FHIR server.

Prints resources/s for each pull, and where the time went: the client's CPU (this process) and the server's CPU
(the Node process) as shares of the wall time. A client share well below 1 core means the client is not the
bottleneck; REST is run with one type at a time and with types overlapping to show the overlap pays, and against
a server without `_history`, whose rerun finds deletions by listing every id (its rate counts the ids listed).

    .venv/bin/python benchmarks/connectors_pull.py [--patients 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import BulkSettings, BulkSource, LandingZone, RestSettings, RestSource, Source, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from demo.synth import generate
from demo.synth.profiles import AURORA
from tests.landing_helpers import manifest

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(label: str, server: FhirTestServer, make: Callable[[], Source], root: Path, fresh: bool = True) -> None:
    """One pull into `root` (emptied first unless `fresh` is False: then a rerun over what landed before)."""
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    wall, cpu, srv = time.perf_counter(), time.process_time(), server_cpu(server.process.pid)
    with make() as source:
        run = ingest(source, LandingZone(root, "bench"), progress=LogProgress())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    srv = server_cpu(server.process.pid) - srv
    count = sum(f["count"] for f in manifest(run)["files"].values())
    if not fresh:  # a rerun lands little: its rate is of what it read, the resources it reconciled
        count = sum(d.get("listed", 0) for d in manifest(run).get("deletions", {}).values())
    print(f"{label:<38} {count:>8} resources {wall:7.1f} s {count / wall:>9,.0f} resources/s   "
          f"client CPU {cpu / wall:4.2f} cores   server CPU {srv / wall:4.2f} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ilp-bench-"))
    try:
        started = time.perf_counter()
        generate([AURORA.scaled(args.patients)], 1, work / "synthetic", bundle_patients=20)
        print(f"generated {args.patients} patients in {time.perf_counter() - started:.1f} s")
        server = FhirTestServer()
        try:
            started = time.perf_counter()
            loaded = server.load_centre(work / "synthetic" / "aurora")
            print(f"loaded {loaded} resources into the server in {time.perf_counter() - started:.1f} s")
            server.configure(bulk={"pollsBeforeReady": 1, "retryAfter": 0, "linesPerFile": 10_000})
            measure("REST, one type at a time", server,
                    lambda: RestSource(RestSettings(base_url=server.base, page_size=1000, concurrency=1)), work / "z1")
            measure("REST, 3 types overlapping", server,
                    lambda: RestSource(RestSettings(base_url=server.base, page_size=1000, concurrency=3)), work / "z2")
            # A server without _history: a rerun lists every id (_elements=id) and reconciles it with what landed.
            server.configure(features={"history": False})
            without_history = RestSettings(base_url=server.base, page_size=1000, reconcile_every_days=0)
            measure("REST, no _history: first pull", server, lambda: RestSource(without_history), work / "z4")
            measure("REST, no _history: id reconciliation", server, lambda: RestSource(without_history), work / "z4",
                    fresh=False)
            server.configure(features={})
            measure("Bulk $export", server,
                    lambda: BulkSource(BulkSettings(base_url=server.base, poll_interval_s=0.1)), work / "z3")
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
