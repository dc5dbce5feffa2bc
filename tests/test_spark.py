"""The Spark session factory: local defaults, every setting overridable, nothing else accepted."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from foundation.errors import ConfigError
from ilp.spark import LOCAL_DEFAULTS, get_spark, spark_settings


def test_overrides_win_over_local_defaults() -> None:
    settings = spark_settings({"spark.master": "local-cluster[2,1,1024]", "spark.executor.memory": "1g"})
    assert settings["spark.master"] == "local-cluster[2,1,1024]"
    assert settings["spark.executor.memory"] == "1g"
    assert settings["spark.ui.enabled"] == LOCAL_DEFAULTS["spark.ui.enabled"]


def test_only_spark_settings_are_accepted() -> None:
    with pytest.raises(ConfigError, match=r"must start with 'spark\.'"):
        spark_settings({"master": "local[1]"})


def test_the_running_session_has_the_defaults(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.sparkContext.getConf().get("spark.ui.enabled") == "false"


def test_runtime_settings_reach_the_running_session(spark: SparkSession) -> None:
    try:
        assert get_spark({"spark.sql.shuffle.partitions": "3"}) is spark
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "4")
