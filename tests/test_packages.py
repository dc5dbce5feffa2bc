"""Centre packages: signed at the centre, verified at the hub, pooled into one report whatever their kind; a
package that is unsigned, signed by another key, or changed after signing is refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import UNPROTECTED, AnalysisPlan, descriptive, read_snapshot
from analytics.analysis import published
from analytics.hub import Contribution, hub_report
from analytics.survival_tables import cox_models, logrank_tests, table3
from foundation.errors import PackageRefused
from foundation.publication import published_snapshot
from ilp.exchange import STOP, FolderTransport
from ilp.packages import export_package, generate_keys, open_package, verify_package

DemoRun = tuple[Path, str]
PLAN = AnalysisPlan()  # the default output policy, as the packages were exported under


@pytest.fixture(scope="module")
def packages(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """aurora sends rows, borealis and cascade aggregates; the hub trusts the three centres' keys."""
    folder = tmp_path_factory.mktemp("packages")
    root = demo_run[0] / "zones"
    made = {}
    for centre, kind in (("aurora", "rows"), ("borealis", "aggregates"), ("cascade", "aggregates")):
        private, public = generate_keys(centre, folder / "keys")
        (folder / "trust").mkdir(exist_ok=True)
        shutil.copyfile(public, folder / "trust" / public.name)
        made[centre] = export_package(root, centre, kind, private.read_bytes(), folder / "outbox")
    made["trust"] = folder / "trust"
    made["keys"] = folder / "keys"
    return made


def _contributions(packages: dict[str, Path], centres: list[str], plan: AnalysisPlan = PLAN) -> list[Contribution]:
    contributions = []
    for centre in centres:
        manifest, site, rows = open_package(packages[centre], packages["trust"], plan)
        contributions.append(Contribution(manifest.centre_id, site, rows, manifest.kind))
    return contributions


def test_a_package_carries_its_manifest_hashes_version_and_validation(packages: dict[str, Path]) -> None:
    manifest = verify_package(packages["borealis"], packages["trust"])
    assert manifest.kind == "aggregates" and manifest.centre_id == "borealis" and manifest.software
    assert manifest.validation["passed"] is True and set(manifest.files) == {"data/answers.json"}
    rows = verify_package(packages["aurora"], packages["trust"])
    assert any(name.startswith("data/cohort/centre_id=aurora/") for name in rows.files)
    identifiers = read_snapshot(packages["aurora"] / "data").cohort["patient_id"].astype(str)
    answers = (packages["borealis"] / "data" / "answers.json").read_text()
    assert not any(i in answers for i in identifiers), "an aggregates package carries a patient identifier"
    # the verdict, not the findings (their sample keys are pseudonyms) nor the Data Docs' path on the centre's disk
    assert set(manifest.validation) == {"snapshot", "passed", "evaluated", "critical_failures", "warnings"}
    assert manifest.output_policy["protect"] is True and manifest.output_policy["threshold"] == 5
    assert rows.dates_shifted is False and rows.output_policy == {}


def test_rows_leave_without_the_hospital_s_resource_ids(demo_run: DemoRun, packages: dict[str, Path]) -> None:
    """Each FHIR id becomes a hash under a key drawn for the package and discarded: as many per row as before,
    shared where they were shared, and none of the server's own."""
    sent = read_snapshot(packages["aurora"] / "data").cohort.sort_values("patient_id")
    kept = read_snapshot(published_snapshot(demo_run[0] / "zones")).for_centre("aurora").cohort.sort_values(
        "patient_id")
    assert sent["patient_id"].tolist() == kept["patient_id"].tolist()
    assert [len(i) for i in sent["source_resource_ids"]] == [len(i) for i in kept["source_resource_ids"]]
    original = {i for ids in kept["source_resource_ids"] for i in ids}
    hashed = {i for ids in sent["source_resource_ids"] for i in ids}
    assert len(hashed) == len(original) and not hashed & original
    assert not any("/" in i for i in hashed)


def test_the_hub_pools_rows_and_aggregates_into_the_pooled_figures(demo_run: DemoRun, packages: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """Under the same output policy, the hub computes from what the centres released exactly what the report
    computes from the pooled rows: each centre protects its own figures, and the pooled ones are fitted on them."""
    result = hub_report(_contributions(packages, ["aurora", "borealis", "cascade"]), tmp_path / "hub", PLAN)
    data = read_snapshot(published_snapshot(demo_run[0] / "zones"))
    report = published({"table3": table3(data, PLAN), "logrank": logrank_tests(data, PLAN),
                        **{n: b(data) for n, b in (("table1", descriptive.table1), ("table2", descriptive.table2),
                                                   ("outcomes", descriptive.outcomes))}}, PLAN)
    expected = report["table3"].set_index(["group", "endpoint"]).sort_index()
    got = result.tables["table3"].set_index(["group", "endpoint"]).sort_index()
    numbers = [c for c in expected.columns if pd.api.types.is_numeric_dtype(expected[c])]
    np.testing.assert_allclose(got[numbers].to_numpy(float), expected[numbers].to_numpy(float), atol=1e-10)
    tests = report["logrank"].set_index(["group", "endpoint", "factor"]).sort_index()
    pooled = result.tables["logrank"].set_index(["group", "endpoint", "factor"]).sort_index()
    np.testing.assert_allclose(pooled["chi_square"], tests["chi_square"], atol=1e-8)
    assert (pooled["levels"] == tests["levels"]).all()
    html = result.report.read_text(encoding="utf-8")
    assert "centres borealis, cascade sent aggregates only" in html and "Table 3" in html
    keys = ["group", "section", "variable", "level", "statistic"]
    for name in ("table1", "table2", "outcomes"):
        rows = report[name].merge(result.tables[name], on=keys, how="outer", suffixes=("", "_hub"), indicator=True)
        assert (rows["_merge"] == "both").all(), name
        np.testing.assert_array_equal(rows["n"].astype(float), rows["n_hub"].astype(float))
        np.testing.assert_array_equal(rows["total"].astype(float), rows["total_hub"].astype(float))
        exact = (rows["statistic"] == descriptive.COUNT) | (rows["group"] != "pooled")  # a median cannot be pooled
        np.testing.assert_allclose(rows.loc[exact, ["estimate", "lower", "upper"]].to_numpy(float),
                                   rows.loc[exact, ["estimate_hub", "lower_hub", "upper_hub"]].to_numpy(float),
                                   atol=1e-9)


def test_the_hub_report_is_protected_by_default(packages: dict[str, Path], tmp_path: Path) -> None:
    """The packages carry protected figures only: every count the hub publishes is a rounded one (a sum of the
    centres' midpoints), and the report says the policy."""
    result = hub_report(_contributions(packages, ["aurora", "borealis", "cascade"]), tmp_path / "hub", PLAN)
    table1 = result.tables["table1"]
    centres = table1[table1["group"] != "pooled"]
    counts = pd.to_numeric(centres["n"], errors="coerce").dropna().astype(int)
    assert ((counts == 0) | (counts % 5 == 3)).all(), "a centre's count left unrounded"
    assert "rounded to the midpoint of its band of 5" in result.report.read_text(encoding="utf-8")


def test_centres_serving_rounds_give_the_hub_the_stratified_cox_model(demo_run: DemoRun, packages: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """borealis and cascade sent aggregates, and answer the Cox model's rounds over a shared folder. Unprotected
    (for a consortium that trusts its hub with exact rounds), the hub's model is the pooled rows' model; under the
    default policy aurora refuses a term of fewer than 5 of its patients (4 have a BMI over 30), which the report
    says."""
    root = demo_run[0] / "zones"
    exact = AnalysisPlan(policy=UNPROTECTED)
    for plan, flags in ((exact, ["--unprotected"]), (PLAN, [])):
        exchange = tmp_path / ("exact" if flags else "protected")
        serving = {centre: subprocess.Popen([sys.executable, "-m", "ilp", "serve", "--root", str(root), "--centre",
                                             centre, "--exchange", str(exchange / centre), "--idle-timeout", "120",
                                             *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for centre in ("borealis", "cascade")}
        contributions = [replace(c, live=None if c.rows is not None else FolderTransport(exchange / c.centre_id, 120))
                         for c in _contributions(packages, ["aurora", "borealis", "cascade"], plan)]
        result = hub_report(contributions, exchange / "hub", plan)
        for contribution in contributions:
            if contribution.live is not None:
                assert contribution.live(STOP) == {"stopped": True}
        for centre, process in serving.items():
            _, errors = process.communicate(timeout=60)
            assert process.returncode == 0 and "answered request" in errors, (centre, errors[-500:])
        got = result.tables["cox"]
        if plan is PLAN:
            assert got["note"].str.contains("not published: .*term [a-z_0-9=.]+: fewer than 5").all(), got["note"]
            assert got["note"].str.contains("bmi_over_30").any()
            continue
        pooled = cox_models(read_snapshot(published_snapshot(root)), exact)
        expected = pooled[pooled["model"] == "stratified by centre"].reset_index(drop=True)
        assert len(got) == len(expected) and got["note"].eq("").all()  # the same terms, in the same order
        np.testing.assert_allclose(got["coef"], expected["coef"], rtol=0, atol=1e-8)
        np.testing.assert_allclose(got["se"], expected["se"], rtol=0, atol=1e-8)
        assert (got["n"].to_numpy() == expected["n"].to_numpy()).all()
        assert "Cox models" in result.report.read_text(encoding="utf-8")


def test_rows_from_every_centre_give_the_full_report(packages: dict[str, Path], tmp_path: Path) -> None:
    result = hub_report(_contributions(packages, ["aurora"]), tmp_path / "hub", PLAN)
    assert {"table1", "table3", "cox", "competing_risks"} <= set(result.tables)
    assert result.report.exists()


def _tamper(package: Path, how: str, packages: dict[str, Path]) -> None:
    if how == "unsigned":
        (package / "manifest.sig").unlink()
    elif how == "data changed":
        answers = package / "data" / "answers.json"
        text = answers.read_text()  # one count changed by one
        count = re.search(r"(\d+)\]", text)
        assert count is not None
        answers.write_text(f"{text[:count.start()]}{int(count[1]) + 1}]{text[count.end():]}")
    elif how == "manifest changed":
        manifest = json.loads((package / "manifest.json").read_text())
        manifest["software"] = "9.9.9"
        (package / "manifest.json").write_text(json.dumps(manifest))
    elif how == "file added":
        (package / "data" / "extra.csv").write_text("patient,value\n")
    elif how == "another key":
        other, _ = generate_keys("borealis", package.parent / "other-keys")
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(other.read_bytes(), password=None)
        (package / "manifest.sig").write_bytes(key.sign((package / "manifest.json").read_bytes()))
    elif how == "untrusted centre":
        (packages["trust"].parent / "empty-trust").mkdir(exist_ok=True)


@pytest.mark.parametrize(("how", "says"), [
    ("unsigned", "is unsigned"), ("data changed", "changed since it was signed"),
    ("manifest changed", "signature does not match"), ("file added", "not in the signed manifest"),
    ("another key", "signature does not match"), ("untrusted centre", "no trusted key for centre borealis")])
def test_a_tampered_or_unsigned_package_is_refused(packages: dict[str, Path], tmp_path: Path, how: str,
                                                   says: str) -> None:
    copy = tmp_path / "borealis"
    shutil.copytree(packages["borealis"], copy)
    _tamper(copy, how, packages)
    trust = packages["trust"].parent / "empty-trust" if how == "untrusted centre" else packages["trust"]
    with pytest.raises(PackageRefused, match=says):
        verify_package(copy, trust)


def test_the_hub_command_refuses_a_tampered_package_with_exit_8(packages: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "cascade"
    shutil.copytree(packages["cascade"], copy)
    _tamper(copy, "data changed", packages)
    command = [sys.executable, "-m", "ilp", "pool", "--trust", str(packages["trust"]), "--out", str(tmp_path / "r"),
               str(packages["aurora"]), str(copy)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 8 and "changed since it was signed" in refused.stderr
    assert not (tmp_path / "r").exists(), "a report was written from a refused package"
