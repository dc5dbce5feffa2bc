"""Write, audit, publish: a good snapshot publishes; each kind of broken data blocks publication, leaves the
previous publication unchanged and readable, and names the failing expectation; a killed run publishes nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import sync_playwright
from pyspark.sql import SparkSession

from analytics import read_snapshot
from expectations import audit_and_publish
from expectations.suites import all_suites
from foundation.errors import ValidationBlocked
from foundation.publication import published_snapshot, read_pointer
from foundation.zones import Zones
from tests.conftest import DemoRun
from tests.test_analytics_outputs import CHROMIUM

CENTRE = "aurora"


@pytest.fixture(scope="module")
def published(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo's cohort zone (every centre transformed, validated and published) to break things in."""
    root = tmp_path_factory.mktemp("zones")
    shutil.copytree(demo_run[0] / "zones" / "cohort", root / "cohort")
    shutil.copytree(demo_run[0] / "zones" / "validation", root / "validation")
    return root


def _first(root: Path) -> Path:
    return Zones(root).snapshots()[0].folder


def _copy(root: Path, name: str) -> Path:
    """A new snapshot with the published one's content, to break on purpose."""
    target = root / "cohort" / "snapshots" / f"run={name}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(_first(root), target)
    return target


def _edit(snapshot: Path, table: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Rewrite the centre's partition of `table` with `change` applied to its rows (types kept)."""
    folder = snapshot / table / f"centre_id={CENTRE}"
    original = pq.read_table(folder)
    rows = change(original.to_pylist())
    for part in folder.iterdir():
        part.unlink()
    pq.write_table(pa.Table.from_pylist(rows, schema=original.schema), folder / "part-00000.parquet")


def _death_before_ilp(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    row = next(r for r in rows if r["death_date"] is not None)
    row["death_date"] = row["first_ilp_date"] - timedelta(days=30)
    return rows


def _grade_vi(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    next(r for r in rows if r["scale"] == "wieberdink")["grade"] = "VI"
    return rows


def _missing_drug(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[0]["tnf_dose_mg"] = None
    return rows


def _duplicate_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*rows, dict(rows[0])]


def _unreconciled(snapshot: Path) -> None:
    path = snapshot / f"manifest-{CENTRE}.json"
    manifest = json.loads(path.read_text())
    manifest["rows"]["events"] += 1
    path.write_text(json.dumps(manifest))


BREAKS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "death-before-ilp": (lambda s: _edit(s, "cohort", _death_before_ilp), "cohort", "first_ilp_date <= death_date"),
    "grade-vi": (lambda s: _edit(s, "toxicities", _grade_vi), "toxicities", "expect_column_values_to_be_in_set"),
    "duplicate-key": (lambda s: _edit(s, "patients", _duplicate_key), "patients", "key unique per centre"),
    "unreconciled": (_unreconciled, "reconciliation", "rows in the snapshot = rows in the manifest"),
}


def test_the_demo_consortium_validates_and_publishes(published: Path) -> None:
    pointer = read_pointer(published)
    assert pointer is not None and pointer.centres == ["aurora", "borealis", "cascade"]
    assert len(read_snapshot(published_snapshot(published)).cohort) == 303
    summary = json.loads((published / pointer.validation / "summary.json").read_text())
    assert summary["passed"] and summary["critical_failures"] == 0 and summary["evaluated"] > 250


def test_broken_data_blocks_publication_and_names_every_broken_expectation(spark: SparkSession,
                                                                          published: Path) -> None:
    """Four breakages in one snapshot, one audit (each audit costs half a minute): each is named."""
    pointer_before = Zones(published).publication.read_bytes()
    patients_before = len(read_snapshot(published_snapshot(published)).cohort)
    snapshot = _copy(published, "broken")
    for breaker, _, _ in BREAKS.values():
        breaker(snapshot)
    with pytest.raises(ValidationBlocked) as blocked:
        audit_and_publish(spark, published, snapshot)
    message = str(blocked.value)
    for case, (_, suite, expected) in BREAKS.items():
        assert expected in message and suite in message, case
    assert "previous publication is unchanged" in message and blocked.value.exit_code == 5
    assert Zones(published).publication.read_bytes() == pointer_before
    assert len(read_snapshot(published_snapshot(published)).cohort) == patients_before  # still readable
    summary = json.loads((published / "validation" / snapshot.name / "summary.json").read_text())
    failed = [f for f in summary["findings"] if f["severity"] == "critical"]
    assert len(failed) >= len(BREAKS) and all(f["sample_keys"] or f["observed"] is not None for f in failed)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", message)  # keys only: no dates or values in the summary
    # Data Docs: one page per suite, whose failed expectations show what was found (not the first pass's "--")
    docs = published / "validation" / snapshot.name / "data_docs"
    assert "-failures" not in (docs / "index.html").read_text()
    for suite in {suite for _, suite, _ in BREAKS.values()}:
        (page,) = (docs / "validations" / suite).rglob("*.html")
        text = " ".join(re.sub(r"<[^>]+>", " ", page.read_text()).split())
        assert "unexpected values found" in text, suite
        kept = json.loads((published / "validation" / snapshot.name / "results" / f"{suite}.json").read_text())
        shown = [r for r in kept["results"] if not r["success"]]
        assert shown and all(r["result"] for r in shown), suite


def test_blocked_validation_exits_5_from_the_cli_with_an_actionable_message(published: Path) -> None:
    pointer_before = Zones(published).publication.read_bytes()
    snapshot = _copy(published, "broken-cli")
    _edit(snapshot, "perfusions", _missing_drug)
    done = subprocess.run([sys.executable, "-m", "ilp", "validate", "--root", str(published), "--snapshot",
                           str(snapshot)], capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 5, output
    assert "every perfusion has its tnf" in output and "perfusions" in output and "Traceback" not in output
    assert "previous publication is unchanged" in output and str(published / "validation") in output
    assert Zones(published).publication.read_bytes() == pointer_before


def test_a_patient_at_two_centres_is_a_warning_not_a_block(spark: SparkSession, published: Path) -> None:
    snapshot = _copy(published, "two-centres")
    for table in snapshot.iterdir():
        if table.is_dir():
            shutil.copytree(table / f"centre_id={CENTRE}", table / "centre_id=aurora_twin")
    manifest = json.loads((snapshot / f"manifest-{CENTRE}.json").read_text())
    (snapshot / "manifest-aurora_twin.json").write_text(json.dumps({**manifest, "centre_id": "aurora_twin"}))
    publication = audit_and_publish(spark, published, snapshot)
    (duplicates,) = [f for f in publication.report.findings if f.suite == "pooled"]
    assert duplicates.severity == "warning" and duplicates.unexpected_count == 2 * 41
    assert {k["centre_id"] for k in duplicates.sample_keys} <= {CENTRE, "aurora_twin"}
    assert read_pointer(published).snapshot == "snapshots/run=two-centres"  # type: ignore[union-attr]
    # the zones were copied following the `cohort/published` link (a real folder here): a link again, to the new one
    link = Zones(published).published
    assert link.is_symlink() and link.resolve() == snapshot.resolve()


def test_a_killed_validation_publishes_nothing(published: Path) -> None:
    pointer_before = Zones(published).publication.read_bytes()
    patients_before = len(read_snapshot(published_snapshot(published)).cohort)
    snapshot = _copy(published, "killed")
    process = subprocess.Popen([sys.executable, "-m", "ilp", "validate", "--root", str(published), "--snapshot",
                                str(snapshot)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    progress = published / "validation" / snapshot.name / "results" / "patients.json"
    deadline = time.monotonic() + 240
    while not progress.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "validation ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group: the CLI and its Spark JVM
    process.wait()
    assert Zones(published).publication.read_bytes() == pointer_before
    assert len(read_snapshot(published_snapshot(published)).cohort) == patients_before


def test_data_docs_render_offline_and_list_every_suite(published: Path) -> None:
    docs = published / "validation" / _first(published).name / "data_docs"  # the demo's: every suite passed
    index = (docs / "index.html").read_text()
    pages = {suite: path for path, suite in re.findall(r"'_table_row_link_path': '(validations/([a-z_]+)/[^']+)'",
                                                       index)}
    assert set(pages) == set(all_suites([]))  # the index lists a validation page for every suite
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        # No network, as in many hospitals: every script, style and image must come from the site itself.
        outside: list[str] = []
        page.route(re.compile(r"^https?://"), lambda route: (outside.append(route.request.url), route.abort()))
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto((docs / "index.html").as_uri(), wait_until="load")
        # bootstrap-table fills the index from its scripts: one row per suite's validation (and one per suite)
        assert page.locator("table tbody tr").count() >= len(pages)
        assert "Segoe UI" in page.evaluate("getComputedStyle(document.body).fontFamily")  # bootstrap's styles
        for suite, path in pages.items():
            page.goto((docs / path).as_uri(), wait_until="load")
            text = " ".join((page.text_content("body") or "").split())  # styled: some of it is in collapsed cards
            assert f"Expectation Suite: {suite}" in text, suite
            assert "Status: Succeeded" in text or suite == "perfusions", suite  # perfusions: a plausibility warning
            assert "newsletter" not in text and "Subscribe" not in text, suite  # no vendor's footer
            if suite == "perfusions":  # a rule's description says the range it checks; a warning says it is one
                assert ("Warning (does not block publication): plausible between 37 and 41: the protocol's mild "
                        "hyperthermia is 38-39.5 C") in text
        browser.close()
    assert outside == [] and failed == []
