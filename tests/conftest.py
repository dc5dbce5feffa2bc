"""Shared fixtures: one SparkSession for the whole suite (a cold start costs ~11 s)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from ilp.fhir_server import FhirTestServer
from ilp.spark import get_spark
from ilp.synth import DEMO_CONSORTIUM, DEMO_SEED, RESOURCE_TYPES, generate


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


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def centre_resources(folder: Path) -> list[dict[str, Any]]:
    """Every resource a synthetic centre's NDJSON holds."""
    return [r for t in RESOURCE_TYPES for r in read_ndjson(folder / "fhir" / f"{t}.ndjson")]


DemoRun = tuple[Path, str]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`ilp demo` run once for the suite (about two minutes): (its output folder, what it printed)."""
    from typer.testing import CliRunner

    from ilp.cli import app

    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output
