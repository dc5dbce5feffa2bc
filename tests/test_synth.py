"""The synthetic consortium: valid FHIR, deterministic, three real dialects, and a ground truth that reconciles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from lifelines import KaplanMeierFitter
from typer.testing import CliRunner

from demo.synth import DEMO_CONSORTIUM, DEMO_SEED, generate, scaled_consortium
from demo.synth.profiles import AURORA
from foundation.model import BY_NAME, TABLES, Table
from foundation.terminology import ConceptMapIndex, valuesets
from ilp.cli import app
from tests.conftest import centre_resources

Consortium = tuple[Path, dict[str, Any]]
CORE_SYSTEMS = ("http://terminology.hl7.org/CodeSystem/", "http://unitsofmeasure.org")
CENTRES = [p.centre_id for p in DEMO_CONSORTIUM]


def _codings(node: Any) -> Iterator[dict[str, Any]]:
    """Every Coding in a resource (anything with a system and a code), FHIR core code systems left out."""
    if isinstance(node, list):
        for item in node:
            yield from _codings(item)
    elif isinstance(node, dict):
        if "system" in node and "code" in node and not node["system"].startswith(CORE_SYSTEMS):
            yield node
        for value in node.values():
            yield from _codings(value)


def _canonical(system: str, code: str) -> str | None:
    return next((f"{vs.name}:{v}" for vs in valuesets().values() if (v := vs.lookup(system, code))), None)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)


def test_demo_consortium_has_three_centres_of_published_sizes(demo_consortium: Consortium) -> None:
    _, description = demo_consortium
    sizes = {c["centre_id"]: (c["patients"], c["dialect"]) for c in description["centres"]}
    assert sizes == {"aurora": (41, "standard"), "borealis": (208, "local-codes"), "cascade": (54, "divergent")}


@pytest.mark.parametrize("centre", CENTRES)
def test_every_generated_resource_is_valid_r4(demo_consortium: Consortium, centre: str) -> None:
    resources = centre_resources(demo_consortium[0] / centre)
    assert len(resources) > 40 * 15
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_same_seed_same_bytes_and_another_seed_differs(demo_consortium: Consortium, tmp_path: Path) -> None:
    _, first = demo_consortium
    again = generate(DEMO_CONSORTIUM, DEMO_SEED, tmp_path / "again")
    other = generate(DEMO_CONSORTIUM, DEMO_SEED + 1, tmp_path / "other")
    assert [c["files"] for c in again["centres"]] == [c["files"] for c in first["centres"]]
    assert [c["files"] for c in other["centres"]] != [c["files"] for c in first["centres"]]


def test_standard_centre_speaks_the_canonical_codes(demo_consortium: Consortium) -> None:
    codings = [c for r in centre_resources(demo_consortium[0] / "aurora") for c in _codings(r)]
    unknown = {(c["system"], c["code"]) for c in codings if _canonical(c["system"], c["code"]) is None}
    assert unknown == {("http://snomed.info/sct", "113091000")}  # the imaging method, which the cohort does not use


def test_local_code_centre_needs_its_conceptmap(demo_consortium: Consortium) -> None:
    folder = demo_consortium[0] / "borealis"
    codings = [c for r in centre_resources(folder) for c in _codings(r)]
    local = [c for c in codings if c["system"] != "http://snomed.info/sct"]  # the imaging method again
    assert local and all(_canonical(c["system"], c["code"]) is None for c in local), "codes readable without map"
    index = ConceptMapIndex.from_files(sorted((folder / "conceptmaps").glob("*.json")))
    for coding in local:
        translated = index.translate(coding["system"], coding["code"])
        assert translated and _canonical(translated[0].system, translated[0].code), coding


def test_divergent_centre_differs_in_units_dates_references_and_placement(demo_consortium: Consortium) -> None:
    resources = centre_resources(demo_consortium[0] / "cascade")
    units = {q["unit"] for r in resources for q in _quantities(r)}
    assert {"mm", "ug", "mg", "L", "kg", "min"} <= units and "mg/L" not in units and "kg/m2" not in units
    references = list(_references(resources))
    assert references and all(ref.startswith("https://fhir.cascade.example.org/fhir/") for ref in references)
    onsets = [r["onsetDateTime"] for r in resources if r["resourceType"] == "Condition" and "onsetDateTime" in r]
    assert any(len(o) == 7 for o in onsets), "no partial (YYYY-MM) dates"
    assert any(len(r["birthDate"]) == 4 for r in resources if r["resourceType"] == "Patient")
    ilps = [r for r in resources if r["resourceType"] == "Procedure" and r["code"]["coding"][0]["code"] == "4019656"]
    assert ilps and all("performedDateTime" in r and "performedPeriod" not in r for r in ilps)
    condition_codes = {c["code"] for r in resources if r["resourceType"] == "Condition" for c in r["code"]["coding"]}
    assert {"local-recurrence", "59621000"} & condition_codes == {"local-recurrence", "59621000"}


def _quantities(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _quantities(item)
    elif isinstance(node, dict):
        if "value" in node and "unit" in node:
            yield node
        for value in node.values():
            yield from _quantities(value)


def _truth(folder: Path, table: Table) -> list[dict[str, Any]]:
    parquet = pq.read_table(folder / "truth" / f"{table.name}.parquet")
    assert parquet.schema.equals(table.arrow_schema()), table.name
    return parquet.to_pylist()


@pytest.mark.parametrize("centre", CENTRES)
def test_ground_truth_conforms_to_the_canonical_model(demo_consortium: Consortium, centre: str) -> None:
    for table in TABLES:
        rows = _truth(demo_consortium[0] / centre, table)
        keys = [tuple(r[k] for k in table.key) for r in rows]
        assert len(keys) == len(set(keys)), f"{table.name}: duplicate keys"
        for column in table:
            values = [r[column.name] for r in rows if r[column.name] is not None]
            if not column.nullable:
                assert len(values) == len(rows), f"{table.name}.{column.name} has nulls"
            if column.allowed:
                assert set(values) <= set(column.allowed), f"{table.name}.{column.name}"
            if column.minimum is not None:
                assert all(v >= column.minimum for v in values), f"{table.name}.{column.name}"
            if column.maximum is not None:
                assert all(v <= column.maximum for v in values), f"{table.name}.{column.name}"


@pytest.mark.parametrize("centre", CENTRES)
def test_every_resource_feeds_the_truth_and_every_source_exists(demo_consortium: Consortium, centre: str) -> None:
    folder = demo_consortium[0] / centre
    written = {f"{r['resourceType']}/{r['id']}" for r in centre_resources(folder)}
    used = {s for table in TABLES for row in _truth(folder, table) for s in row["source_resource_ids"]}
    assert used == written


@pytest.mark.parametrize("centre", CENTRES)
def test_ground_truth_timelines_are_in_clinical_order(demo_consortium: Consortium, centre: str) -> None:
    for row in _truth(demo_consortium[0] / centre, BY_NAME["cohort"]):
        order = [row["diagnosis_date"], row["first_ilp_date"], row["resection_date"]]
        present = [d for d in order if d is not None]
        assert present == sorted(present), row["patient_id"]
        origin = row["resection_date"] or row["first_ilp_date"]
        for relapse in (row["local_relapse_date"], row["distant_metastasis_date"]):
            if relapse is not None:
                assert origin < relapse <= row["last_contact_date"]
        if row["death_date"] is not None:
            assert row["death_date"] == row["last_contact_date"]
        assert all(row[f"{e}_months"] is None or row[f"{e}_months"] >= 0 for e in ("os", "rfs", "lrfs", "mfs"))


@pytest.mark.parametrize("centre", CENTRES)
def test_bundles_are_self_contained_transactions(demo_consortium: Consortium, centre: str) -> None:
    paths = sorted((demo_consortium[0] / centre / "bundles").glob("bundle-*.json"))
    assert paths
    total = 0
    for path in paths:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        if path == paths[0]:
            Bundle.model_validate(bundle)
        ids = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        for entry in bundle["entry"]:
            assert entry["request"] == {"method": "PUT",
                                        "url": f"{entry['resource']['resourceType']}/{entry['resource']['id']}"}
        for ref in _references([e["resource"] for e in bundle["entry"]]):
            assert ref in ids or ref in full_urls, f"{path.name}: dangling reference {ref}"
        total += len(bundle["entry"])
    _, description = demo_consortium
    assert total == sum(next(c for c in description["centres"] if c["centre_id"] == centre)["resources"].values())


def _km_at(rows: list[dict[str, Any]], endpoint: str, months: tuple[int, ...]) -> list[float]:
    rows = [r for r in rows if r[f"{endpoint}_months"] is not None]
    km = KaplanMeierFitter().fit([r[f"{endpoint}_months"] for r in rows], [r[f"{endpoint}_event"] for r in rows])
    return [float(km.survival_function_at_times(m).iloc[0]) for m in months]


def test_generator_hits_its_survival_calibration(tmp_path: Path) -> None:
    profile = AURORA.scaled(4000)
    generate([profile], 11, tmp_path, bundle_patients=0)
    rows = _truth(tmp_path / "aurora", BY_NAME["cohort"])
    for endpoint, target in (("os", profile.os), ("lrfs", profile.lrfs), ("mfs", profile.mfs)):
        got = _km_at(rows, endpoint, (12, 60, 120))
        assert got == pytest.approx([target.y1, target.y5, target.y10], abs=0.04), endpoint


def test_demo_reference_centre_resembles_the_reference_study(demo_consortium: Consortium) -> None:
    rows = _truth(demo_consortium[0] / "aurora", BY_NAME["cohort"])
    table3 = {"os": (0.90, 0.63, 0.55), "rfs": (0.75, 0.50, 0.45), "lrfs": (0.87, 0.73, 0.73),
              "mfs": (0.80, 0.58, 0.52)}
    for endpoint, published in table3.items():
        assert _km_at(rows, endpoint, (12, 60, 120)) == pytest.approx(published, abs=0.06), endpoint
    assert sorted(r["age_at_diagnosis"] for r in rows)[20] == pytest.approx(51, abs=3)
    assert sum(r["resected"] for r in rows) / 41 == pytest.approx(0.78, abs=0.05)


def test_scaled_consortium_keeps_proportions() -> None:
    sizes = [p.patients for p in scaled_consortium(100_000)]
    assert sum(sizes) == 100_000 and sizes[1] > sizes[2] > sizes[0]
    with pytest.raises(ValueError, match="at least 3"):
        scaled_consortium(2)


def test_cli_writes_one_centre_and_rejects_unknown_ones(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["synth", "--centre", "cascade", "--patients", "30", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cascade" / "truth" / "cohort.parquet").exists() and not (tmp_path / "aurora").exists()
    assert pq.read_table(tmp_path / "cascade" / "truth" / "cohort.parquet").num_rows == 5
    result = runner.invoke(app, ["synth", "--centre", "nowhere", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_cli_writes_the_onboarding_centre_only_when_named(tmp_path: Path) -> None:
    """dorado (docs/onboarding.md) comes with the view overrides its configuration needs and its ConceptMap."""
    runner = CliRunner()
    assert runner.invoke(app, ["synth", "--patients", "30", "--out", str(tmp_path / "demo")]).exit_code == 0
    assert not (tmp_path / "demo" / "dorado").exists()
    result = runner.invoke(app, ["synth", "--centre", "dorado", "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "one" / "dorado"
    assert "[centres.views.procedure]" in (folder / "views.toml").read_text()
    assert [p.name for p in (folder / "conceptmaps").iterdir()] == ["ConceptMap-dorado-progression.json"]
    assert pq.read_table(folder / "truth" / "cohort.parquet").num_rows == 60


def test_partial_dates_are_imputed_by_the_model_rule(demo_consortium: Consortium) -> None:
    tumours = _truth(demo_consortium[0] / "cascade", BY_NAME["tumours"])
    imputed = [t for t in tumours if t["diagnosis_date_imputed"]]
    assert imputed and all(t["diagnosis_date"].day == 15 for t in imputed)
    assert not any(t["diagnosis_date_imputed"] for t in _truth(demo_consortium[0] / "aurora", BY_NAME["tumours"]))
    assert isinstance(tumours[0]["diagnosis_date"], date)
