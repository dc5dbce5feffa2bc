"""The analytics' input: the cohort snapshot's tables as pandas frames, with the snapshot's provenance.

Analytics work on one row per patient (a consortium of 100,000 patients is a few tens of MB), so they read the
Parquet with pyarrow instead of starting Spark. Only the tables the outputs need are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from foundation.manifests import SnapshotManifest
from foundation.model import BY_NAME
from foundation.zones import Snapshot

INPUT_TABLES = ("cohort", "toxicities")


@dataclass
class CohortData:
    """The pooled cohort and the per-event tables the outputs need; `manifests` say where each centre came from."""

    cohort: pd.DataFrame
    toxicities: pd.DataFrame
    source: str
    manifests: list[SnapshotManifest] = field(default_factory=list)

    @property
    def centres(self) -> list[str]:
        return sorted(self.cohort["centre_id"].unique())

    def for_centre(self, centre_id: str) -> CohortData:
        return CohortData(self.cohort[self.cohort["centre_id"] == centre_id],
                          self.toxicities[self.toxicities["centre_id"] == centre_id], self.source,
                          [m for m in self.manifests if m.centre_id == centre_id])


def read_snapshot(snapshot: Path | Snapshot) -> CohortData:
    """Read a cohort snapshot written by the transforms (`<table>/centre_id=<c>/*.parquet` + manifests)."""
    snapshot = Snapshot.at(snapshot)
    frames = {name: _read_table(snapshot.table(name), name) for name in INPUT_TABLES}
    return CohortData(frames["cohort"], frames["toxicities"], str(snapshot.folder), snapshot.manifests())


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    if not folder.is_dir():
        raise FileNotFoundError(f"the cohort snapshot has no {name!r} table at {folder}")
    table = pq.read_table(folder, partitioning="hive")
    if "centre_id" not in table.column_names:  # no centre has a row: the table was written with no partition
        table = BY_NAME[name].arrow_schema().empty_table()
    frame = table.to_pandas()
    frame["centre_id"] = frame["centre_id"].astype(str)
    return frame[[c for c in BY_NAME[name].column_names if c in frame.columns]]
