"""Shared fixtures: one SparkSession for the whole suite (a cold start costs ~11 s)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from demo.fhir_server import FhirTestServer
from demo.synth import DEMO_CONSORTIUM, DEMO_SEED, RESOURCE_TYPES, generate
from ilp.demo import DemoResult, run_demo
from ilp.spark import LOCAL_DEFAULTS, get_spark

# One JVM serves every in-process workload of the suite (whichever fixture starts it: `spark`, or the demo run in
# this process), and together they need more than one run's 2 GB: with it, the JVM ran out of heap and Spark
# exited, failing every later test. Subprocesses (the CLI) keep the default.
LOCAL_DEFAULTS["spark.driver.memory"] = "4g"


@pytest.fixture(scope="module", autouse=True)
def _release_spark_memory() -> Iterator[None]:
    """After each module, let go of what its Spark work left behind: Python's references to JVM objects, then a
    JVM collection, after which Spark's cleaner drops the broadcasts and shuffles nothing refers to (it runs on
    a collection, which an idle driver otherwise does every 30 minutes)."""
    yield
    session = SparkSession.getActiveSession()
    if session is not None:
        gc.collect()
        session.sparkContext._jvm.System.gc()  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = get_spark({"spark.app.name": "ilp-tests"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def fhir_server_process() -> Iterator[FhirTestServer]:
    server = FhirTestServer()
    yield server
    server.stop()


@pytest.fixture
def fhir_server(fhir_server_process: FhirTestServer) -> FhirTestServer:
    """The local FHIR server, emptied and with no auth or faults, for one test."""
    fhir_server_process.reset()
    return fhir_server_process


@pytest.fixture(scope="session")
def demo_consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo consortium as `ilp demo` writes it: (folder, consortium.json)."""
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate(DEMO_CONSORTIUM, DEMO_SEED, out)


@pytest.fixture
def aurora(fhir_server: FhirTestServer, demo_consortium: tuple[Path, dict[str, Any]]) -> FhirTestServer:
    """The test server holding the demo's aurora centre, its exports ready at the first poll."""
    from tests.landing_helpers import serving

    return serving(fhir_server, demo_consortium[0] / "aurora")


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def centre_resources(folder: Path) -> list[dict[str, Any]]:
    """Every resource a synthetic centre's NDJSON holds."""
    return [r for t in RESOURCE_TYPES for r in read_ndjson(folder / "fhir" / f"{t}.ndjson")]


DemoRun = tuple[Path, str]


@pytest.fixture(scope="session")
def demo_servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_servers: ExitStack) -> tuple[DemoResult, str]:
    """The demo run once for the suite (about three minutes), its FHIR servers kept up for later runs; with what
    it printed."""
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    result = run_demo(out, lines.append, keep_servers=demo_servers)
    return result, "\n".join(lines)


@pytest.fixture(scope="session")
def demo_run(demo: tuple[DemoResult, str]) -> DemoRun:
    """(the demo's output folder, what it printed)."""
    return demo[0].config.parent, demo[1]
