"""Benchmark: what a whole hospital's other patients cost the transform, in CPU-seconds.

The same ILP centre (borealis, 208 patients, local codes) is landed twice from files: alone, and as a whole-hospital
export with `--population` general patients beside it (vital signs, laboratory results, other diagnoses, deaths).
Each is transformed in the same warm JVM, and each landing is also read and written by a plain explicit-schema
Spark job (the ceiling: what merely reading the data costs). Printed per landing: resources, CPU-seconds of the
driver (Python) and of the JVM, wall seconds, and the transform's cost beyond the ceiling. CPU-seconds, not wall
time, because a shared machine's load moves wall times.

    .venv/bin/python benchmarks/cohort_scope.py [--population 2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from demo.synth import DEMO_SEED, generate
from demo.synth.profiles import BOREALIS
from foundation.secrets import Secret
from foundation.zones import Zones
from ilp.spark import get_spark
from transforms import CentreSettings, TransformOptions, transform
from transforms.schema import RESOURCE

TICKS = os.sysconf("SC_CLK_TCK")


def jvm_cpu_s(pid: int) -> float:
    """User + system CPU-seconds of the JVM so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def driver_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(jvm: int, work: Callable[[], object]) -> tuple[float, float, float]:
    """(driver CPU-s, JVM CPU-s, wall s) of `work`."""
    driver, java, wall = driver_cpu_s(), jvm_cpu_s(jvm), time.perf_counter()
    work()
    return driver_cpu_s() - driver, jvm_cpu_s(jvm) - java, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ilp-cohort-bench-"))
    try:
        landings = {}
        for name, population in (("ILP centre alone", 0), (f"whole hospital (+{args.population})", args.population)):
            generate([BOREALIS], DEMO_SEED, work / name, bundle_patients=0, population=population)
            folder = work / name / "borealis"
            with FilesSource(FilesSettings(folder=folder / "fhir")) as source:
                run = ingest(source, LandingZone(work / name / "zones", "borealis"), progress=LogProgress())
            landings[name] = (folder, sum(f.count for f in Zones.landing_manifest(run).files.values()))
        spark = get_spark({"spark.driver.memory": "4g"})
        jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        secret = Secret("benchmark-consortium-secret-0123456789")
        print(f"{'landing':<28} {'resources':>9} {'step':<10} {'driver CPU-s':>12} {'JVM CPU-s':>10} {'wall s':>7}")
        totals = {}
        for sitting in ("warm-up", "measured"):  # the JVM's first transform also compiles: it is not compared
            for name, (folder, resources) in landings.items():
                zones = work / name / sitting
                shutil.copytree(work / name / "zones" / "landing", zones / "landing")  # a fresh state each time
                files = [str(p) for p in Zones(zones).landing_root.rglob("*.ndjson") if p.stem[:1].isupper()]
                ceiling = measured(jvm, lambda files=files, zones=zones: spark.read.schema(RESOURCE).json(files)
                                   .select("resourceType", "id", "meta.lastUpdated", "subject.reference",
                                           "code.coding", "valueQuantity.value")
                                   .write.mode("overwrite").parquet(str(zones / "ceiling")))
                maps = tuple(sorted((folder / "conceptmaps").glob("*.json")))
                cost = measured(jvm, lambda zones=zones, maps=maps: transform(
                    spark, zones, [CentreSettings("borealis", maps)], secret, "bench",
                    TransformOptions()))
                for step, (driver, java, wall) in (("ceiling", ceiling), ("transform", cost)):
                    print(f"{name:<28} {resources:>9} {step:<10} {driver:>12.1f} {java:>10.1f} {wall:>7.1f}"
                          + ("  (warm-up)" if sitting == "warm-up" else ""))
                timings = Zones(zones).snapshot("bench").manifest("borealis").timings
                print(f"{'':<28} {'':>9} wall s by step: "
                      + ", ".join(f"{k.removesuffix('_seconds')} {v:.1f}" for k, v in timings.items()))
                totals[name] = (resources, ceiling[0] + ceiling[1], cost[0] + cost[1])
        (alone_n, alone_ceiling, alone), (whole_n, whole_ceiling, whole) = totals.values()
        extra, reading = whole - alone, whole_ceiling - alone_ceiling
        print(f"out-of-scope resources: {whole_n - alone_n}; transform {alone:.1f} -> {whole:.1f} CPU-s "
              f"({extra:+.1f}); ceiling {alone_ceiling:.1f} -> {whole_ceiling:.1f} CPU-s ({reading:+.1f})"
              + (f"; the other patients cost the transform {extra / reading:.1f}x what reading them costs"
                 if extra > 0 and reading > 0 else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
