"""`ilp run` as a scheduler calls it, on the demo consortium behind its FHIR servers: a second run finds nothing
new and changes no published byte; after changes on a server, a third run picks up exactly those. Then the CLI's
errors: each with its documented exit code and an actionable message, no traceback."""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from demo.fhir_server import FhirTestServer
from foundation.errors import ValidationBlocked
from foundation.manifests import ValidationSummary
from foundation.model import BY_NAME
from foundation.publication import published_snapshot
from foundation.zones import VALIDATION_SUMMARY, Zones
from ilp.cli import app
from ilp.config import load_config
from ilp.demo import DemoResult
from ilp.query import query
from ilp.run import run_consortium

Demo = tuple[DemoResult, str]


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _cli(*args: str) -> tuple[int, str]:
    """Run the real console entry point (exit codes and error lines as a scheduler sees them)."""
    done = subprocess.run([sys.executable, "-m", "ilp", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def second_run(demo: Demo) -> tuple[DemoResult, dict[str, str], str]:
    result, _ = demo
    zones = result.config.parent / "zones"
    before = {**_fingerprint(zones / "cohort"), **_fingerprint(zones / "reports")}
    outcome = CliRunner().invoke(app, ["run", "--config", str(result.config)])
    assert outcome.exit_code == 0, outcome.output
    return result, before, outcome.output


def test_a_second_run_finds_nothing_new_and_changes_nothing(
        second_run: tuple[DemoResult, dict[str, str], str]) -> None:
    result, before, output = second_run
    assert "nothing new" in output
    zones = result.config.parent / "zones"
    assert {**_fingerprint(zones / "cohort"), **_fingerprint(zones / "reports")} == before
    assert len(list((zones / "cohort" / "snapshots").glob("run=*"))) == 1


def test_a_third_run_picks_up_exactly_the_server_changes(second_run: tuple[DemoResult, dict[str, str], str]) -> None:
    result, _, _ = second_run
    zones = result.config.parent / "zones"
    first = published_snapshot(zones).folder
    server = result.servers["aurora"]
    patient = server.direct.get("/Patient", params={"_count": 1}).json()["entry"][0]["resource"]
    patient["gender"] = "female" if patient["gender"] == "male" else "male"
    assert server.direct.put(f"/Patient/{patient['id']}", json=patient).status_code == 200
    code, output = _cli("--log-format", "json", "run", "--config", str(result.config))
    assert code == 0, output
    assert "aurora: landed 1 resources, 1 new versions or deletions" in output
    assert "borealis: landed 0 resources, 0 new versions or deletions" in output
    snapshot = published_snapshot(zones).folder
    # a scheduler's log: one JSON object per line, each step's lines with their centre and run; no library noise
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    fields = {(e.get("step"), e.get("centre"), e.get("run")) for e in lines}
    run = snapshot.name.removeprefix("run=")
    assert {("ingest", "aurora", None), ("transform", "aurora", run), ("audit", None, run)} <= fields, fields
    assert any(e.get("centre") == "aurora" and "aurora Patient: +1 resources" in e["message"] for e in lines)
    assert [line for line in output.splitlines() if not line.startswith("{")] == [
        "WARNING: Using incubator modules: jdk.incubator.vector"]  # the JVM's own, which Spark asks for
    assert snapshot != first
    # published, but its report is held back: one patient apart from the first release, it would give theirs away
    assert "held back: at aurora, 1 patient(s) changed since release" in output
    assert not (zones / "reports" / snapshot.name).exists() and (zones / "reports" / first.name).is_dir()
    changed = query(zones, f"SELECT sex FROM patients WHERE centre_id = 'aurora' AND sex = '{patient['gender']}'")
    before = duckdb.sql(f"SELECT count(*) FROM read_parquet('{first}/patients/centre_id=aurora/*.parquet') "
                        f"WHERE sex = '{patient['gender']}'").fetchall()
    assert len(changed) == before[0][0] + 1
    for centre in ("borealis", "cascade"):  # carried over unchanged
        assert _fingerprint(snapshot / "cohort" / f"centre_id={centre}") == \
            _fingerprint(first / "cohort" / f"centre_id={centre}")


def test_the_published_cohort_reads_from_its_stable_path(second_run: tuple[DemoResult, dict[str, str], str]) -> None:
    """docs/running.md's readers: DuckDB and pandas on `cohort/published/`, the link to the published snapshot,
    get exactly the data dictionary's columns (no `run` column from a `run=` folder) with integer types kept."""
    result, _, _ = second_run
    zones = Zones(result.config.parent / "zones")
    assert zones.published.resolve() == published_snapshot(zones.root).folder.resolve()
    described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{zones.published}/cohort/*/*.parquet', "
                           "hive_partitioning = true)").fetchall()
    types = {name: kind for name, kind, *_ in described}
    assert set(types) == set(BY_NAME["cohort"].column_names) and types["fnclcc_grade"] == "INTEGER"
    cohort = pd.read_parquet(zones.published / "cohort", dtype_backend="numpy_nullable")
    assert set(cohort.columns) == set(BY_NAME["cohort"].column_names) and str(cohort["fnclcc_grade"].dtype) == "Int32"
    assert len(cohort) == 303


def test_status_and_query_work_on_the_demo_output(second_run: tuple[DemoResult, dict[str, str], str]) -> None:
    result, _, _ = second_run
    code, output = _cli("status", "--config", str(result.config), "--json")
    assert code == 0, output
    state = json.loads(output[output.index("{"):])
    assert state["published"]["centres"] == ["aurora", "borealis", "cascade"]
    assert all(c["published"] and c["watermarks"] for c in state["centres"].values())
    assert all(c["interrupted_pull"] is None and c["abandoned_pulls"] == [] for c in state["centres"].values())
    aurora = state["centres"]["aurora"]  # a REST source on a server with _history: its rerun read deletions there
    assert {d["method"] for d in aurora["last_landing_deletions"].values()} == {"history"}
    code, output = _cli("query", "--config", str(result.config), "--csv",
                        "SELECT centre_id, count(*) AS patients FROM cohort GROUP BY 1 ORDER BY 1")
    assert code == 0, output
    assert output.strip().splitlines()[-3:] == ["aurora,41", "borealis,208", "cascade,54"]


def test_duckdb_reads_the_published_parquet_as_documented(second_run: tuple[DemoResult, dict[str, str], str]) -> None:
    result, _, _ = second_run
    zones = result.config.parent / "zones"
    snapshot = json.loads((zones / "cohort" / "published.json").read_text())["snapshot"]
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{zones / 'cohort' / snapshot}/cohort/*/*.parquet', "
                      "hive_partitioning = true)").fetchall()
    assert rows == [(303,)]


@pytest.mark.parametrize(("config", "args", "exit_code", "message"), [
    ("missing", [], 2, "no such configuration file"),
    ('name = "x"\nroot = "z"\n', [], 2, "secret: required key is missing"),
    ('name = "x"\nroot = "z"\nsecret = { env = "ILP_TEST_UNSET_SECRET" }\n[[centres]]\nid = "a"\n'
     'source = { kind = "rest", base_url = "http://127.0.0.1:9/fhir", max_attempts = 1 }\n', [], 3, "127.0.0.1:9"),
])
def test_errors_have_their_exit_code_and_no_traceback(tmp_path: Path, config: str, args: list[str], exit_code: int,
                                                      message: str) -> None:
    path = tmp_path / "consortium.toml"
    if config != "missing":
        path.write_text(config)
    code, output = _cli("run", "--config", str(path), *args)
    assert code == exit_code and message in output and "Traceback" not in output, output


def test_bad_credentials_exit_4(fhir_server: FhirTestServer, tmp_path: Path) -> None:
    fhir_server.configure(auth={"mode": "basic", "username": "etl", "password": "right"})
    path = tmp_path / "consortium.toml"
    path.write_text(f'name = "x"\nroot = "{tmp_path / "z"}"\nsecret = {{ env = "ILP_TEST_SECRET" }}\n'
                    f'[[centres]]\nid = "a"\n[centres.source]\nkind = "rest"\nbase_url = "{fhir_server.base}"\n'
                    'auth = { kind = "basic", username = "etl", password = { env = "ILP_TEST_PASSWORD" } }\n')
    os.environ["ILP_TEST_PASSWORD"] = "wrong-password-value"
    try:
        code, output = _cli("run", "--config", str(path))
    finally:
        del os.environ["ILP_TEST_PASSWORD"]
    assert code == 4 and "Traceback" not in output and "wrong-password-value" not in output, output


def test_the_stages_run_alone_share_one_default_zones_root() -> None:
    """`ilp ingest` then `ilp transform` (then validate, analyse) without `--root` work on the same zones."""
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    defaults = {name: str(p.default) for name, c in commands.items() for p in c.params if p.name == "root"}
    assert set(defaults) >= {"ingest", "transform", "validate", "analyse"}
    assert set(defaults.values()) == {"demo-output/zones"}, defaults


@pytest.mark.parametrize("command", ["run", "transform", "ingest"])
def test_a_held_lock_stops_a_second_run_and_names_its_holder(demo: Demo, tmp_path: Path, command: str) -> None:
    """`ilp run`, and the stages run alone, each take the centre's lock before they touch anything."""
    result, _ = demo
    zones = result.config.parent / "zones"
    holder = Zones(zones).lock("aurora")
    holder.write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid(), "started": "2026-11-28T00:00Z"}))
    before = _fingerprint(zones)
    arguments = {"run": ["--config", str(result.config)],
                 "transform": ["--root", str(zones), "--secret-file", str(result.config.parent / "secrets" /
                                                                          "consortium.key")],
                 "ingest": ["--root", str(zones), "--files", str(tmp_path)]}[command]
    try:
        code, output = _cli(command, *arguments, "--centre", "aurora")
        assert _fingerprint(zones) == before
    finally:
        holder.unlink()
    assert code == 7 and f"pid {os.getpid()}" in output and str(holder) in output, output


def test_a_stale_lock_from_a_killed_run_is_taken_over(demo: Demo) -> None:
    result, _ = demo
    zones = result.config.parent / "zones"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Zones(zones).lock("aurora").write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout),
                                                      "started": "2026-11-28T00:00Z"}))
    code, output = _cli("run", "--config", str(result.config), "--centre", "aurora")
    assert code == 0 and "stale lock" in output and "nothing new" in output, output
    assert not Zones(zones).lock("aurora").exists()


def test_a_blocked_run_writes_its_data_docs_and_a_preview_marked_not_published(
        demo_consortium: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """A snapshot that fails a critical expectation is not published, and the run says what it would have
    published: Data Docs, and a preview report with the failures first."""
    files = tmp_path / "aurora"
    shutil.copytree(demo_consortium[0] / "aurora" / "fhir", files)
    lines = (files / "Patient.ndjson").read_text().splitlines()
    patient = json.loads(lines[0])
    patient["deceasedDateTime"] = f"{int(patient['birthDate'][:4]) + 1}-07-01"  # years before the diagnosis
    (files / "Patient.ndjson").write_text("\n".join([json.dumps(patient), *lines[1:]]) + "\n")
    (tmp_path / "consortium.key").write_text("a-test-consortium-secret-of-some-length")
    path = tmp_path / "consortium.toml"
    path.write_text('name = "Blocked"\nroot = "zones"\nsecret = { file = "consortium.key" }\n'
                    f'[[centres]]\nid = "aurora"\nsource = {{ kind = "files", folder = "{files}" }}\n')
    with pytest.raises(ValidationBlocked) as blocked:
        run_consortium(load_config(path), echo=lambda _: None)
    zones = Zones(tmp_path / "zones")
    assert not zones.publication.exists()  # nothing published
    (snapshot,) = zones.snapshots()
    preview = zones.preview(snapshot) / "report.html"
    assert f"NOT published): {preview}" in str(blocked.value)
    page = preview.read_text()
    assert "(NOT PUBLISHED: preview)" in page
    failure = next(line for line in blocked.value.failures if "diagnosis_date <= death_date" in line)
    assert page.index("Not published: a preview") < page.index(html.escape(failure)) < page.index("Table 1")
    assert not (zones.root / "reports" / snapshot.name).exists()  # apart from the published reports
    summary = ValidationSummary.read(zones.validation(snapshot) / VALIDATION_SUMMARY)
    assert not summary.passed and summary.preview_report == str(preview)
    assert (zones.validation(snapshot) / "data_docs" / "index.html").exists()
    assert json.loads((preview.parent / "summary.json").read_text())["published"] is False
