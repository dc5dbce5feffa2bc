"""The analytics on the demo consortium: Table 3 as the ground truth gives it, every output written, the report
rendered in headless Chromium, exact only when asked to be unprotected."""

from __future__ import annotations

import math
import re
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from analytics import UNPROTECTED, AnalysisPlan, CohortData, analyse, descriptive, display, read_snapshot
from analytics.analysis import COUNT_COLUMNS
from analytics.outputs import OUTPUTS
from analytics.survival_tables import table3
from foundation import model
from foundation.model import vocabulary
from ilp.cli import app
from tests.conftest import DemoRun

TABLES = tuple(output.name for output in OUTPUTS)  # every registered output is written
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _snapshot(demo_run: DemoRun) -> Path:
    return sorted((demo_run[0] / "zones" / "cohort" / "snapshots").glob("run=*"))[0]  # the demo's


def _report_folder(demo_run: DemoRun) -> Path:
    return demo_run[0] / "zones" / "reports" / _snapshot(demo_run).name


def _truth(demo_run: DemoRun) -> CohortData:
    centres = sorted(p.name for p in (demo_run[0] / "synthetic").iterdir() if (p / "truth").is_dir())
    frames = {t: pd.concat([pq.read_table(demo_run[0] / "synthetic" / c / "truth" / f"{t}.parquet").to_pandas()
                            for c in centres], ignore_index=True) for t in ("cohort", "toxicities")}
    return CohortData(frames["cohort"], frames["toxicities"], "ground truth")


def test_table3_from_the_pipeline_equals_table3_from_the_ground_truth(demo_run: DemoRun) -> None:
    plan = AnalysisPlan(policy=UNPROTECTED)  # the pipeline's exactness, not the policy's
    got = table3(read_snapshot(_snapshot(demo_run)), plan).set_index(["group", "endpoint"])
    want = table3(_truth(demo_run), plan).set_index(["group", "endpoint"])
    assert set(got.index) == set(want.index) and ("aurora", "os") in got.index
    for key, row in want.iterrows():
        for column, expected in row.items():
            actual = got.loc[key, column]
            if expected is None or (isinstance(expected, float) and math.isnan(expected)):
                assert actual is None or math.isnan(actual), (key, column)
            elif isinstance(expected, str):
                assert actual == expected, (key, column)
            else:
                assert actual == pytest.approx(expected, rel=1e-12), (key, column, actual, expected)
    aurora_os = got.loc[("aurora", "os")]
    assert aurora_os["n"] == 41 and 0.5 < aurora_os["survival_5y"] < 0.8  # calibrated near the study's 63%


def test_every_table_and_figure_is_written(demo_run: DemoRun) -> None:
    folder = _report_folder(demo_run)
    for name in TABLES:
        csv = pd.read_csv(folder / "tables" / f"{name}.csv")
        assert len(pq.read_table(folder / "tables" / f"{name}.parquet")) == len(csv) > 0, name
    groups = ("pooled", "aurora", "borealis", "cascade")
    for group in groups:
        svg = (folder / "figures" / f"figure1_{group}.svg").read_text()
        assert (folder / "figures" / f"figure1_{group}.png").stat().st_size > 10_000
        for label in ("Years", "Survival probability", "At risk", "Overall survival", "Recurrence-free survival"):
            assert label in svg, (group, label)
        incidence = (folder / "figures" / f"figure2_{group}.svg").read_text()
        for label in ("Cumulative incidence", "Local relapse", "Distant metastasis", "death without local relapse"):
            assert label in incidence, (group, label)
    table1 = pd.read_csv(folder / "tables" / "table1.csv")
    # the default run publishes under the output policy: 41 patients leave as the midpoint of their band
    assert table1.query("group == 'aurora' and variable == 'Number of patients'")["n"].item() == 43
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_tables_read_as_a_reader_expects_them(demo_run: DemoRun) -> None:
    """Counts are integers in the files (not '301.0' or strings), Table 2's levels keep the scale's order and
    no cell is blank where a count is zero, and models print labels, not column names."""
    folder = _report_folder(demo_run) / "tables"
    for name in TABLES:
        schema = pq.read_schema(folder / f"{name}.parquet")
        for field in schema:
            if field.name in COUNT_COLUMNS or field.name.startswith("at_risk_"):
                assert pa.types.is_integer(field.type), (name, field.name, field.type)
            elif field.name == "withheld_because":
                assert "None" not in set(pq.read_table(folder / f"{name}.parquet")[field.name].to_pylist())
        written = pd.read_csv(folder / f"{name}.csv", dtype=str)
        counted = [c for c in written.columns if c in COUNT_COLUMNS or c.startswith("at_risk_")]
        assert not [v for v in written[counted].stack() if "." in v], name  # '299', never '299.0'
    for name in ("table1", "table2", "outcomes"):
        wide = display.descriptive(pd.read_parquet(folder / f"{name}.parquet"))
        assert not wide.isna().any().any() and not (wide.drop(columns="level") == "").any().any(), name
    clavien = wide[wide["variable"].str.startswith("Clavien")]["level"].tolist()
    assert clavien == [f"Grade {g}" for g in vocabulary.CLAVIEN_DINDO_GRADE] + ["Not recorded"]
    plan = AnalysisPlan()
    for name, ratio in (("cox", "HR"), ("fine_gray", "SHR")):
        shown = display.cox(pd.read_parquet(folder / f"{name}.parquet"), plan, ratio)
        assert set(shown["Endpoint"]) <= {e.label for e in plan.endpoints}
        terms = [t for t in shown["Term"] if t]
        assert terms and not [t for t in terms if re.search(r"\w=\w", t) or "_" in t], terms
        assert "FNCLCC grade High (3) (vs Low (1))" in terms and "Sex Male (vs Female)" in terms
    assert "Centre borealis (vs aurora)" in set(display.cox(pd.read_parquet(folder / "cox.parquet"), plan)["Term"])


def test_the_report_reads_in_clinical_order_with_labels_and_whole_counts(demo_run: DemoRun) -> None:
    """Every ordered variable's levels in the report's HTML come in the order the study declares them (a
    "Not recorded" row last), and no table prints a column name, a model term's code or a count as '299.0'."""
    html = (_report_folder(demo_run) / "report.html").read_text(encoding="utf-8")
    cells = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
    rows = [[unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split())) for cell in cells.findall(row)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)]
    counts = [r for r in rows if len(r) > 3 and re.match(r"\d+/\d+ \(|withheld|0$", r[3])]  # Tables 1, 2, outcomes
    specs = (*descriptive.TABLE1_CATEGORIES, *descriptive.RESPONSE_CATEGORIES, *descriptive.OUTCOME_CATEGORIES)
    for _, variable, _, levels in specs:
        shown = list(dict.fromkeys(r[2] for r in counts if r[1] == variable))
        declared = [label for _, label in levels]
        assert shown in (declared, [*declared, descriptive.NOT_RECORDED]), (variable, shown)
    text = " ".join(" ".join(r) for r in rows)
    for raw in ("fnclcc_grade", "age_over_65", "bmi_over_30", "size_over_10cm", "centre_id", "=2.0"):
        assert raw not in text, raw
    assert not re.search(r"\b\d+\.0 / \d+", text)  # n / events as whole numbers
    assert {r[0] for r in rows if r and r[0] in {"os", "rfs", "lrfs", "mfs"}} == set()  # endpoints by label
    # what the output policy held back, and why, is a column of its own in the HTML and in the files
    assert "<th>Withheld</th>" in html
    for name in ("table1", "table2", "outcomes", "table3", "competing_risks", "logrank"):
        assert "withheld_because" in pq.read_schema(_report_folder(demo_run) / "tables" / f"{name}.parquet").names


def test_the_report_renders_in_headless_chromium(demo_run: DemoRun, tmp_path: Path) -> None:
    report = _report_folder(demo_run) / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        headings = page.locator("h2").all_inner_texts()
        captions = page.locator("h3").all_inner_texts()
        image_widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        figures = page.locator("figcaption").all_inner_texts()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    for title in ("Provenance", "Methods", "Table 1", "Table 2", "Toxicity and treatment", "Table 3",
                  "Prognostic factors", "Competing risks", "Figure 1", "Figure 2"):
        assert any(h.startswith(title) for h in headings), (title, headings)
    for caption in ("Table 1", "Table 2", "Table 3", "Log-rank tests", "Cox models", "Between-centre comparisons",
                    "Cumulative incidence", "Fine-Gray models (subdistribution hazard ratios)"):
        assert caption in captions
    groups = ("pooled", "aurora", "borealis", "cascade")
    assert figures == [f"Figure {n} ({g})" for n in (1, 2) for g in groups]
    assert len(image_widths) == 8 and min(image_widths) > 800  # every figure decoded
    assert all(url.startswith(("file:", "data:")) for url in requests)  # self-contained: nothing fetched
    assert (tmp_path / "report.png").stat().st_size > 100_000


def test_outputs_are_protected_unless_asked_otherwise(demo_run: DemoRun, tmp_path: Path) -> None:
    """Into a folder holding earlier outputs: they are replaced whole, and nothing is left beside them. By default
    every count is a band's midpoint and the report states the policy; --unprotected gives the exact counts and
    says they must not leave the centre."""
    (tmp_path / "r" / "tables").mkdir(parents=True)
    (tmp_path / "r" / "tables" / "earlier.csv").write_text("n\n1\n")
    command = ["analyse", "--snapshot", str(_snapshot(demo_run))]
    result = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "r" / "tables" / "earlier.csv").exists() and [p.name for p in tmp_path.iterdir()] == ["r"]
    table1 = pd.read_csv(tmp_path / "r" / "tables" / "table1.csv")
    centres = table1[table1["group"] != "pooled"]["n"].dropna().astype(int)
    assert ((centres == 0) | (centres % 5 == 3)).all() and (centres == 3).any()
    assert "rounded to the midpoint of its band of 5" in (tmp_path / "r" / "report.html").read_text()
    exact = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "x"), "--unprotected"])
    assert exact.exit_code == 0, exact.output
    counts = pd.read_csv(tmp_path / "x" / "tables" / "table1.csv")
    patients = counts[(counts["variable"] == "Number of patients") & (counts["group"] == "aurora")]["n"]
    assert patients.tolist() == [41]
    assert "Nothing of this report may leave the centre" in (tmp_path / "x" / "report.html").read_text()


def test_a_wrong_ci_method_is_a_config_error(demo_run: DemoRun) -> None:
    result = CliRunner().invoke(app, ["analyse", "--snapshot", str(_snapshot(demo_run)), "--ci", "logit"])
    assert result.exit_code != 0 and "--ci must be one of" in str(result.exception or result.output)


def test_a_cohort_with_no_patient_is_analysed_without_a_crash(tmp_path: Path) -> None:
    """Every centre published empty (each with cohort_may_be_empty): the transform writes each table with no
    partition, as Spark does for no rows. The analyses still write their tables and the report; no Figure 1."""
    snapshot = tmp_path / "cohort" / "snapshots" / "run=empty"
    for table in model.TABLES:
        (snapshot / table.name).mkdir(parents=True)
        (snapshot / table.name / "_SUCCESS").write_text("")
    data = read_snapshot(snapshot)
    assert data.cohort.empty and "centre_id" in data.cohort.columns and "os_months" in data.cohort.columns
    result = analyse(data, tmp_path / "report", AnalysisPlan())
    assert result.report.is_file() and not list((tmp_path / "report").rglob("figure1_*"))  # no curve to draw
    assert {p.stem for p in (result.folder / "tables").glob("*.csv")} == set(result.tables)
