"""Benchmark: landing -> staged cohort for a consortium of 20,000 patients, against a raw Spark read.

Prints resources/s and peak memory for the transform (all centres), and, in the same run, the ceiling: Spark
reading the same landed NDJSON with the explicit schema, flattening a few fields and writing Parquet; then the
ratio of the two. Then the audit of the staged cohort (every great_expectations suite, Data Docs included) and
its time against the transform's.

    .venv/bin/python benchmarks/transform.py [--patients 20000]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from demo.synth import generate, scaled_consortium
from expectations import validate_snapshot
from foundation.model import TABLES
from foundation.secrets import Secret
from foundation.zones import Zones
from ilp.spark import get_spark
from transforms.pipeline import CentreSettings, TransformOptions, transform
from transforms.schema import RESOURCE


def jvm_peak_mb(spark_pid: int) -> float:
    for line in Path(f"/proc/{spark_pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ilp-transform-bench-"))
    try:
        profiles = scaled_consortium(args.patients)
        started = time.perf_counter()
        generate(profiles, 7, work / "synthetic", bundle_patients=0)
        print(f"generated {args.patients} patients in {time.perf_counter() - started:.1f} s")
        zones = work / "zones"
        total = 0
        started = time.perf_counter()
        for profile in profiles:
            with FilesSource(FilesSettings(folder=work / "synthetic" / profile.centre_id / "fhir")) as source:
                run = ingest(source, LandingZone(zones, profile.centre_id), progress=LogProgress())
            total += sum(f.count for f in Zones.landing_manifest(run).files.values())
        landing_s = time.perf_counter() - started
        print(f"landed {total} resources in {landing_s:.1f} s ({total / landing_s:,.0f} resources/s)")

        spark = get_spark({"spark.driver.memory": "4g"})
        jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        files = [str(p) for p in Zones(zones).landing_root.rglob("*.ndjson") if p.stem[:1].isupper()]
        started = time.perf_counter()
        raw = spark.read.schema(RESOURCE).json(files)
        raw.select("resourceType", "id", "meta.lastUpdated", "subject.reference", "code.coding",
                   "valueQuantity.value").write.mode("overwrite").parquet(str(work / "ceiling"))
        ceiling_s = time.perf_counter() - started
        print(f"ceiling: explicit-schema read + flatten + Parquet write: {ceiling_s:.1f} s "
              f"({total / ceiling_s:,.0f} resources/s)")

        secret = Secret("benchmark-consortium-secret-0123456789")
        started = time.perf_counter()
        centres = [CentreSettings(p.centre_id, tuple(sorted((work / "synthetic" / p.centre_id / "conceptmaps")
                                                            .glob("*.json")))) for p in profiles]
        transform(spark, zones, centres, secret, "bench", TransformOptions())
        transform_s = time.perf_counter() - started
        rate = total / transform_s
        print(f"transform: landing -> staged cohort: {transform_s:.1f} s ({rate:,.0f} resources/s), "
              f"{rate / (total / ceiling_s):.2f} of the ceiling")
        timings = Zones(zones).snapshot("bench").manifest(profiles[0].centre_id).timings
        steps = ["merge", *(table.name for table in TABLES), "reconcile"]
        print("  steps: " + ", ".join(f"{step} {timings[f'{step}_seconds']:.1f} s" for step in steps))
        started = time.perf_counter()
        report = validate_snapshot(spark, zones, Zones(zones).snapshot("bench"))
        validate_s = time.perf_counter() - started
        print(f"validation: {report.evaluated} expectations, {len(report.blocking)} critical failures, "
              f"{validate_s:.1f} s = {validate_s / transform_s:.2f} of the transform's {transform_s:.1f} s")
        print(f"peak memory: Spark JVM {jvm_peak_mb(jvm):,.0f} MB, Python driver "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
