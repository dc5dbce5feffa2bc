"""How complete each canonical column is at each centre, and the gaps: a column one centre fills and another
leaves entirely empty.

Such a gap is rarely clinical truth (every centre measures tumour size); it is nearly always an element the
centre keeps where the views do not look, or a code its ConceptMaps do not translate. The transform writes the
counts and gaps to each centre's manifest, the audit judges them with a great_expectations expectation per
centre, and the report prints them: a value lost in silence becomes a named warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType

from foundation.model import BY_NAME

# Provenance, not data: how complete they are says nothing about what a centre records.
STRUCTURAL = {"centre_id", "run_id", "source_resource_ids"}

# centre -> table -> column -> rows with a value
Filled = dict[str, dict[str, dict[str, int]]]


def _has_value(frame: DataFrame, column: str) -> Column:
    if isinstance(frame.schema[column].dataType, ArrayType):
        return F.size(F.coalesce(F.col(column), F.array())) > 0
    return F.col(column).isNotNull()


def measured_columns(table: str) -> list[str]:
    model = BY_NAME[table]
    return [c.name for c in model if c.name not in STRUCTURAL and c.name not in model.key and not c.only_where_given]


def _conditions(frame: DataFrame, table: str) -> dict[str, Column]:
    """What is counted in a table: `rows`, then, per measured column, the rows that have a value."""
    return {"rows": F.lit(True), **{c: _has_value(frame, c) for c in measured_columns(table)}}


def filled(tables: Mapping[str, DataFrame]) -> Filled:
    """Rows with a value, per centre, table and column, with `rows` per table: one aggregation per table, all in
    one Spark job (a job per table cost more in fixed overhead than the counting)."""
    parts = []
    for name, frame in tables.items():
        values = [x for c, holds in _conditions(frame, name).items() for x in (F.lit(c), F.count(F.when(holds, 1)))]
        parts.append(frame.groupBy("centre_id").agg(F.create_map(*values).cast("map<string,bigint>").alias("filled"))
                     .select(F.lit(name).alias("table"), "centre_id", "filled"))
    counts: Filled = {}
    for row in reduce(DataFrame.unionByName, parts).collect():
        counts.setdefault(row["centre_id"], {})[row["table"]] = dict(row["filled"])
    return counts


class WrittenCompleteness:
    """`filled`'s counts read from the footers of the Parquet files each table was written to: a file records,
    for each column of each row group, its rows and its nulls, so counting costs no Spark work (counting as
    metrics of the writes cost 4 s at 20,000 patients, a separate count of the written tables 3-4 s). The
    measured columns are scalars, so a value is a non-null."""

    def __init__(self, centres: Sequence[str]) -> None:
        self.centres = tuple(centres)
        self._counts: Filled = {}

    def count(self, table: str, partitions: Mapping[str, Path], written: DataFrame) -> None:
        """Count the table's centre partitions (folders of Parquet files); `written` (the table read back) is
        counted by Spark instead should a file lack the null counts (a writer configured not to keep
        statistics)."""
        measured = measured_columns(table)
        footers = {centre: _footer_counts(sorted(folder.glob("*.parquet")), measured)
                   for centre, folder in partitions.items()}
        counts = {centre: counted for centre, counted in footers.items() if counted is not None}
        if len(counts) < len(footers):
            counts = {centre: tables[table] for centre, tables in filled({table: written}).items()}
        for centre, counted in counts.items():
            self._counts.setdefault(centre, {})[table] = counted

    def counts(self) -> Filled:
        """The counts of the tables written since (a centre's table with no row is absent)."""
        return self._counts


def _footer_counts(files: Sequence[Path], measured: Sequence[str]) -> dict[str, int] | None:
    """`rows` and the rows with a value of each measured column, summed over the files' row groups; None when a
    column chunk has no null count."""
    counted = dict.fromkeys(["rows", *measured], 0)
    for path in files:
        metadata = pq.read_metadata(path)
        for group in map(metadata.row_group, range(metadata.num_row_groups)):
            counted["rows"] += group.num_rows
            for chunk in map(group.column, range(group.num_columns)):
                if chunk.path_in_schema not in measured:
                    continue
                statistics = chunk.statistics
                if statistics is None or not statistics.has_null_count:
                    return None
                counted[chunk.path_in_schema] += group.num_rows - statistics.null_count
    return counted


def gaps(counts: Filled) -> dict[str, list[str]]:
    """centre -> `table.column` it leaves entirely empty (in rows it has) while another centre fills it."""
    found: dict[str, list[str]] = {centre: [] for centre in counts}
    for centre, tables in counts.items():
        for table, columns in tables.items():
            if not columns.get("rows"):
                continue
            for column, n in columns.items():
                if column == "rows" or n:
                    continue
                fillers = sorted(c for c, t in counts.items() if c != centre and t.get(table, {}).get(column))
                if fillers:
                    found[centre].append(f"{table}.{column}")
    return found


def gap_column(centre: str) -> str:
    """The audit's column saying which canonical columns the centre leaves empty."""
    return "empty_at_" + centre.replace("-", "_")


def gap_warning(centre: str, column: str, counts: Filled) -> str:
    table, name = column.split(".")
    rows = counts[centre][table]["rows"]
    others = ", ".join(f"{c} {t[table][name]}/{t[table]['rows']}" for c, t in sorted(counts.items())
                       if c != centre and t.get(table, {}).get(name))
    return (f"{centre}: {column} is empty in all {rows} rows, where other centres fill it ({others}): the centre "
            "may keep it where the views do not look (override the view column; see `ilp profile`)")
