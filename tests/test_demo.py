"""`ilp demo` runs the main job on the demo consortium, from FHIR servers to the report."""

from __future__ import annotations

import json

from tests.conftest import DemoRun


def test_demo_serves_each_centre_and_lands_every_resource(demo_run: DemoRun) -> None:
    out, output = demo_run
    description = json.loads((out / "synthetic" / "consortium.json").read_text())
    for centre in description["centres"]:
        (run,) = (out / "zones" / "landing" / f"centre={centre['centre_id']}").glob("run=*")
        files = json.loads((run / "manifest.json").read_text())["files"]
        assert {t: files[t]["count"] for t in centre["resources"]} == centre["resources"]
    assert "Bulk $export landed 1254" in output and "REST search landed 816" in output


def test_demo_ends_with_the_report(demo_run: DemoRun) -> None:
    out, output = demo_run
    (report,) = (out / "zones" / "reports").glob("run=*/report.html")
    assert str(report) in output
