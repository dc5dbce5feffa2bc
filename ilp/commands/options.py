"""Options more than one command takes, declared once so that their names, defaults and help never drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from foundation.errors import ConfigError

DEMO_OUT = Path("demo-output")
ZONES = DEMO_OUT / "zones"  # every stage run alone reads and writes here unless told otherwise

SparkConf = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="A Spark setting as key=value (repeatable), e.g. spark.master=yarn.")]
ConfigOption = Annotated[Path, typer.Option("--config", help="The consortium's TOML configuration file.")]
ProtectOption = Annotated[bool, typer.Option(
    "--protect/--unprotected",
    help="Apply the output policy: rounded counts, survival from protected risk tables, no test or model on a "
         "small group (--unprotected: exact outputs that stay inside the centre only).")]
ThresholdOption = Annotated[int, typer.Option(
    "--threshold", min=1, help="The output policy's threshold: the smallest group a published figure rests on, "
                               "and the band counts are rounded in.")]
AcceptSmallerCohort = Annotated[bool, typer.Option(
    "--accept-smaller-cohort", help="A centre's cohort may be less than half the published one's (patients "
                                    "withdrawn); otherwise that stops the run (exit 9).")]
GridOption = Annotated[float | None, typer.Option(
    "--grid-months", min=0.01, help="Round times up to this grid before counting (aggregates).")]


def spark_overrides(spark_conf: list[str] | None) -> dict[str, str]:
    """--spark-conf key=value pairs as Spark settings."""
    overrides = dict(pair.split("=", 1) for pair in spark_conf or [] if "=" in pair)
    if len(overrides) != len(spark_conf or []):
        raise ConfigError("--spark-conf takes key=value, e.g. --spark-conf spark.master=local[2]")
    return overrides
