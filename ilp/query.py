"""SQL over the published cohort for analysts: DuckDB reads the Parquet in place, one view per canonical table.

The views follow the publication pointer, so a query never sees an unvalidated snapshot; `centre_id` comes from
the partition folders.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from foundation.errors import ConfigError
from foundation.model import TABLES
from foundation.publication import published_snapshot


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per published table (patients, ..., cohort)."""
    snapshot = published_snapshot(root)
    connection = duckdb.connect()
    for table in TABLES:
        files = snapshot.table(table.name) / "*" / "*.parquet"
        connection.execute(f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet('{files}', "
                           "hive_partitioning = true)")
    return connection


def query(root: Path, sql: str) -> pd.DataFrame:
    connection = connect(root)
    try:
        return connection.execute(sql).df()
    except duckdb.Error as error:
        raise ConfigError(f"the query failed: {str(error).splitlines()[0]}") from None
    finally:
        connection.close()
