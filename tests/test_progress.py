"""Progress of the Spark stages: bars with Spark's activity where a person watches, log lines elsewhere."""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest
from pyspark.sql import SparkSession
from rich.console import Console

from foundation.progress import spark_activity, steps


def _slow_job(spark: SparkSession) -> list[int]:
    """A real Spark job that keeps its tasks busy for a while (4 tasks of 0.6 s on 2 cores)."""
    return spark.sparkContext.parallelize(range(4), 4).map(lambda x: time.sleep(0.6) or x).collect()


def test_without_a_terminal_each_step_is_one_log_line(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ilp.progress")
    with steps("transform t1", 2, spark) as progress:
        with progress.step("merge"):
            spark.range(10).count()
        progress.done("suite patients", 1.25)
    assert [r.getMessage() for r in caplog.records if r.name == "ilp.progress"][-2:] == [
        f"transform t1: merge in {progress.timings['merge']:.1f} s", "transform t1: suite patients in 1.2 s"]
    assert set(progress.timings) == {"merge", "suite patients"}


def test_on_a_terminal_a_bar_shows_the_step_and_what_spark_is_doing(spark: SparkSession) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with steps("audit r1", 2, spark, console=console) as progress:
        with progress.step("suite cohort"):
            assert _slow_job(spark) == [0, 1, 2, 3]
        with progress.step("Data Docs"):
            pass
    drawn = screen.getvalue()
    assert "audit r1: suite cohort (Spark: " in drawn and " tasks in 1 stage)" in drawn
    assert "2/2" in drawn


def test_spark_activity_counts_the_active_stages_tasks(spark: SparkSession) -> None:
    assert spark_activity(spark) == ""  # nothing running
    job = threading.Thread(target=_slow_job, args=(spark,))
    job.start()
    seen = ""
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        seen = spark_activity(spark)
        time.sleep(0.05)
    job.join()
    assert seen.startswith("Spark: ") and seen.endswith("/4 tasks in 1 stage")
