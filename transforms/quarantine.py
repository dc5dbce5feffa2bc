"""Quarantine: every resource or row a stage could not use, with the reason, the stage, the centre and the run.

Written as Parquet under `quarantine/stage=<stage>/centre=<id>/run=<transform run>/` (no folder when a centre
had nothing to quarantine): a rerun of the same transform run replaces its own quarantine, never another's.
All centres of a transform are written by one Spark job, then each centre's part is moved into place.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from foundation.staging import staging_folder
from foundation.zones import Zones

COLUMNS = ("centre_id", "stage", "landing_run_id", "resource_type", "resource_id", "reason", "json")


def write_quarantine(rows: DataFrame, root: Path, stage: str, centres: Iterable[str], transform_run: str) -> None:
    """Write rows having centre_id, landing_run_id, resource_type, resource_id, reason and json, replacing what
    this run quarantined before at the same stage for these centres."""
    zones = Zones(root)
    with staging_folder(zones.quarantine_stage(stage), f"run={transform_run}") as staging:
        rows.select(*[F.lit(stage).alias("stage") if c == "stage" else F.col(c) for c in COLUMNS]) \
            .withColumn("partition", F.col("centre_id")).write.partitionBy("partition").parquet(str(staging))
        for centre_id in centres:
            target = zones.quarantine(stage, centre_id, transform_run)
            shutil.rmtree(target, ignore_errors=True)
            part = staging / f"partition={centre_id}"
            if part.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                part.rename(target)
