"""The demo runs the main job (`ilp run` over a generated configuration) from FHIR servers to the report."""

from __future__ import annotations

import json

from ilp.demo import DemoResult
from tests.conftest import DemoRun


def test_demo_serves_each_centre_and_lands_every_resource(demo_run: DemoRun) -> None:
    out, output = demo_run
    description = json.loads((out / "synthetic" / "consortium.json").read_text())
    for centre in description["centres"]:
        run = sorted((out / "zones" / "landing" / f"centre={centre['centre_id']}").glob("run=*"))[0]  # the demo's
        files = json.loads((run / "manifest.json").read_text())["files"]
        assert {t: files[t]["count"] for t in centre["resources"]} == centre["resources"]
    assert "aurora: landed 816 resources" in output and "cascade: landed 1254 resources" in output


def test_demo_ends_with_a_published_cohort_and_the_report(demo: tuple[DemoResult, str]) -> None:
    result, output = demo
    zones = result.config.parent / "zones"
    assert result.outcome.snapshot is not None
    assert result.outcome.report == zones / "reports" / result.outcome.snapshot.name / "report.html"
    assert result.outcome.report.exists()
    assert f"published {result.outcome.snapshot.name}" in output
    assert result.outcome.data_docs is not None and result.outcome.data_docs.exists()
