"""Shared fixtures: one SparkSession for the whole suite (a cold start costs ~11 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from ilp.spark import get_spark


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = get_spark({"spark.app.name": "ilp-tests"})
    yield session
    session.stop()
