"""One SparkSession factory for every stage, with local defaults a 2-core laptop is happy with.

Every default can be overridden from configuration (any `spark.*` key), so the same job runs unchanged with
`spark.master` pointing at a cluster or at `local-cluster[2,1,1024]`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from foundation.errors import ConfigError

LOG4J = Path(__file__).with_name("log4j2.properties")
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.master": "local[*]",
    "spark.app.name": "ilp-cohort",
    # Cohort tables are small per centre: a few shuffle partitions beat the default 200 empty tasks.
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # With the UI off, the status store still keeps the plans of the last 1,000 SQL executions, which nothing
    # reads; a long-lived session (a consortium's run over many centres) need not carry them.
    "spark.sql.ui.retainedExecutions": "20",
    "spark.ui.retainedJobs": "100",
    "spark.ui.retainedStages": "100",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Tables are read back partitioned by centre and joined on `centre_id`: dynamic partition pruning then plans a
    # pruning subquery per join (the cohort's 15 joins took 50 s to plan); the partitions are small anyway.
    "spark.sql.optimizer.dynamicPartitionPruning.enabled": "false",
    "spark.sql.parquet.compression.codec": "zstd",
    # Arrow makes toPandas()/createDataFrame(pandas) fast for the analytics and ground-truth comparisons.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A batch job wants throughput, not short pauses: the parallel collector took 5-10% less time (and CPU) than
    # the default G1 for the 20,000-patient transform in a fresh JVM on 2 cores (no difference in a warm one).
    # Spark's own log: errors only (its startup warnings about the host name and native libraries say nothing a
    # user of the pipeline can act on).
    "spark.driver.extraJavaOptions": f'-Dlog4j.configurationFile="{LOG4J}" -XX:+UseParallelGC',
}


def spark_settings(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a session is built with: the local defaults, then the configuration's overrides."""
    settings = dict(LOCAL_DEFAULTS)
    settings.update({k: str(v) for k, v in (overrides or {}).items()})
    unknown = [k for k in settings if not k.startswith("spark.")]
    if unknown:
        raise ConfigError(f"Spark settings must start with 'spark.': {sorted(unknown)}")
    return settings


def get_spark(overrides: Mapping[str, str] | None = None) -> SparkSession:
    """Build (or return the running) SparkSession with the defaults and the given overrides."""
    # Executors (also separate JVMs under local-cluster) must run the driver's interpreter and its packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in spark_settings(overrides).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
