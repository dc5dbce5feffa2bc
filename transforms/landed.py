"""Read what connectors landed: completed runs only, as raw JSON lines with their centre, run and stream.

Only `run=*` folders with a manifest are read (a `.partial-*` run is invisible), so a transform never sees half
a pull. Lines stay raw JSON here; parsing with the explicit schema happens where the fields are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from foundation.zones import Zones
from transforms.schema import RESOURCE

TOMBSTONES = "tombstones"


def landed_items(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or None when the line is not JSON) of a landed stream read on the driver (small
    streams only: ConceptMaps, change keys); nothing when the stream is absent."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield number, None


@dataclass(frozen=True)
class LandedRun:
    centre_id: str
    run_id: str
    folder: Path

    def path(self, stream: str) -> Path:
        return self.folder / f"{stream}.ndjson"


def completed_runs(root: Path, centre_id: str) -> list[LandedRun]:
    """The centre's completed runs under the zones' root, oldest first."""
    return [LandedRun(centre_id, run.name.removeprefix("run="), run) for run in Zones(root).landing_runs(centre_id)]


def read_lines(spark: SparkSession, runs: list[LandedRun], streams: list[str]) -> DataFrame:
    """Raw lines of the given streams of the given runs: centre_id, run_id, stream, line_number, json."""
    paths = [str(r.path(s)) for r in runs for s in streams if r.path(s).exists() and r.path(s).stat().st_size]
    if not paths:
        return spark.createDataFrame([], "centre_id string, run_id string, stream string, json string")
    path = F.col("_metadata.file_path")
    return (spark.read.text(paths)
            .select(F.regexp_extract(path, r"centre=([^/]+)/", 1).alias("centre_id"),
                    F.regexp_extract(path, r"run=([^/]+)/", 1).alias("run_id"),
                    F.regexp_extract(path, r"/([^/]+)\.ndjson$", 1).alias("stream"),
                    F.col("value").alias("json")))


def parsed(json_column: str = "json") -> Column:
    """The resource parsed with the explicit schema (a struct; all-null fields for an unparseable line)."""
    return F.from_json(F.col(json_column), RESOURCE, {"mode": "PERMISSIVE"})
