"""The Spark DataFrames the suites run on: the snapshot's tables, and the derived tables for cross-table checks.

Cross-table rules become rows so that one great_expectations check can judge them and name the offending rows:
`links` has one row per table row (`linked` is false for an orphan), `reconciliation` one row per count that
must agree with a manifest, `pooled` the patients of every centre together.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from foundation.completeness import filled, gap_column, gaps, measured_columns
from foundation.manifests import SnapshotManifest
from foundation.model import BY_NAME, TABLES
from foundation.zones import Snapshot

# (table, its key, the table its `column` must be found in, matched on centre_id and that column)
LINKS = (*((t.name, t.key[1], "patients", "patient_id") for t in TABLES if t.name != "patients"),
         ("perfusions", "perfusion_id", "tumours", "tumour_id"))


def read_tables(spark: SparkSession, snapshot: Snapshot) -> dict[str, DataFrame]:
    """Every canonical table of the snapshot (all centres), in the model's column order, cached for the checks."""
    tables = {}
    for table in TABLES:
        schema = ", ".join(c.spark_ddl().replace(" NOT NULL", "") for c in table)
        frame = spark.read.schema(schema).parquet(str(snapshot.table(table.name))).select(*table.column_names)
        tables[table.name] = frame.cache()
    return tables


def links(tables: dict[str, DataFrame]) -> DataFrame:
    parts = []
    for name, key, target, column in LINKS:
        found = tables[target].select("centre_id", column).distinct().withColumn("found", F.lit(True))
        rows = tables[name].where(F.col(column).isNotNull()).select("centre_id", F.col(key).alias("row_key"), column)
        parts.append(rows.join(found, ["centre_id", column], "left").select(
            F.lit(name).alias("table"), "centre_id", "row_key", F.col("found").isNotNull().alias("linked")))
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result


def reconciliation(spark: SparkSession, tables: dict[str, DataFrame], manifests: list[SnapshotManifest]) -> DataFrame:
    """Rows per table and centre against the manifest; resources per type against used + quarantined + out of the
    cohort's scope."""
    counted: dict[tuple[str, str], int] = {}
    for name, frame in tables.items():
        for row in frame.groupBy("centre_id").count().collect():
            counted[(name, row["centre_id"])] = row["count"]
    rows: list[tuple[str, str, str, int, int]] = []
    centres = {m.centre_id for m in manifests}
    for manifest in manifests:
        centre = manifest.centre_id
        for name in BY_NAME:
            rows.append(("rows", centre, name, counted.get((name, centre), 0), manifest.rows.get(name, -1)))
        for resource_type, entry in manifest.reconciliation.items():
            rows.append(("resources", centre, resource_type, entry.used + entry.quarantined + entry.out_of_scope,
                         entry.resources))
    for (name, centre), count in counted.items():
        if centre not in centres:
            rows.append(("rows", centre, name, count, -1))  # rows of a centre without a manifest
    return spark.createDataFrame(rows, "check string, centre_id string, item string, observed long, expected long")


def completeness(spark: SparkSession, tables: dict[str, DataFrame], centres: list[str]) -> DataFrame:
    """One row per canonical column (`table`, `column`), and per centre whether it leaves the column entirely
    empty while another centre fills it (`gap_column(centre)`)."""
    found = gaps(filled(tables))
    columns = [(t.name, c) for t in TABLES for c in measured_columns(t.name)]
    rows = [(table, column, *[f"{table}.{column}" in found.get(centre, []) for centre in centres])
            for table, column in columns]
    schema = ", ".join(["`table` string", "`column` string", *[f"`{gap_column(c)}` boolean" for c in centres]])
    return spark.createDataFrame(rows, schema)


def pooled(tables: dict[str, DataFrame]) -> DataFrame:
    return tables["patients"].select("centre_id", "patient_id")
