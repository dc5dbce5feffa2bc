"""Quarantine: every resource or row a stage could not use, with the reason, the stage, the centre and the run.

Written as Parquet under `quarantine/stage=<stage>/centre=<id>/run=<transform run>/`: a rerun of the same
transform run replaces its own quarantine, never another's.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

COLUMNS = ("centre_id", "stage", "landing_run_id", "resource_type", "resource_id", "reason", "json")


def write_quarantine(rows: DataFrame, root: Path, stage: str, centre_id: str, transform_run: str) -> Path:
    """Write rows having centre_id, landing_run_id, resource_type, resource_id, reason and json."""
    target = root / "quarantine" / f"stage={stage}" / f"centre={centre_id}" / f"run={transform_run}"
    rows.select(*[F.lit(stage).alias("stage") if c == "stage" else F.col(c) for c in COLUMNS]) \
        .write.mode("overwrite").parquet(str(target))
    return target
