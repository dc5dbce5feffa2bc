"""The project's views and centre overrides: they compile against the read schema, overrides reach only their
centre, and a wrong view, column, path or type is refused naming file, view and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.sql import DataFrame, SparkSession

from foundation.errors import ConfigError
from foundation.model import BY_NAME
from ilp.config import load_config
from transforms.landed import parsed
from transforms.views.catalogue import Catalogue, default_views
from transforms.views.definition import ViewDefinition, select_view
from transforms.views.fhirpath import ViewError

LEVEL = "https://dorado.example.org/fhir/StructureDefinition/perfusion-level"


def _resources(spark: SparkSession, rows: list[tuple[str, dict[str, object]]]) -> DataFrame:
    """(centre, resource) pairs parsed with the project's read schema, as the transform reads them."""
    frame = spark.createDataFrame([(c, json.dumps(r)) for c, r in rows], "centre_id string, json string")
    return frame.select("centre_id", parsed().alias("r"))


def _procedure(level: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Procedure", "id": "p1", "extension": [level]}


def test_every_shipped_view_compiles_and_says_which_canonical_columns_it_feeds(spark: SparkSession) -> None:
    empty = _resources(spark, [])
    for view in default_views().values():
        assert select_view(empty, view, ["centre_id"]).columns == ["centre_id", *view.columns()]
        for name in view.columns():
            for tag in view.column(name).get("tag", []):
                table, column = tag["value"].split(".")
                assert column in BY_NAME[table].column_names, (view.name, name, tag)


def test_an_override_reads_its_centre_only_and_the_centre_s_codes_keep_their_type(spark: SparkSession) -> None:
    standard = {"url": "http://ilp-cohort.org/fhir/StructureDefinition/ilp-level",
                "valueCoding": {"system": "http://snomed.info/sct", "code": "8775000"}}
    own = {"url": LEVEL, "valueCodeableConcept": {"coding": [{"system": "http://dorado/levels", "code": "FEM"}]}}
    resources = _resources(spark, [("aurora", _procedure(standard)), ("dorado", _procedure(own)),
                                   ("borealis", _procedure(own))])
    own_level = f"extension('{LEVEL}').value.ofType(CodeableConcept)"
    catalogue = Catalogue({"dorado": {"procedure": {"ilp_level": own_level}}})
    level = catalogue.columns(resources, "Procedure")["ilp_level"]
    rows = {r["centre_id"]: [c["code"] for c in r["ilp_level"]]
            for r in resources.select("centre_id", level.alias("ilp_level")).collect()}
    assert rows == {"aurora": ["8775000"], "dorado": ["FEM"], "borealis": []}


def test_a_wrong_override_in_the_configuration_names_file_view_and_column(tmp_path: Path) -> None:
    def config(views: str) -> Path:
        path = tmp_path / "consortium.toml"
        path.write_text('name = "x"\nroot = "zones"\nsecret = { env = "ILP_SECRET" }\n[[centres]]\nid = "dorado"\n'
                        f'source = {{ kind = "files", folder = "fhir" }}\n{views}', encoding="utf-8")
        return path

    cases = {'[centres.views.procedures]\nilp_level = "code"': "no view 'procedures'",
             '[centres.views.procedure]\nlevel = "code"': "no column 'level'",
             '[centres.views.procedure]\nilp_level = "extension(\'x\').value.ofType("': "expected"}
    for views, message in cases.items():
        with pytest.raises(ConfigError) as raised:
            load_config(config(views))
        text = str(raised.value)
        assert str(tmp_path / "consortium.toml") in text and message in text, text
        assert "views.procedure" in text or "procedures" in text


def test_an_override_the_schema_cannot_read_or_of_another_type_is_refused_by_name(spark: SparkSession) -> None:
    resources = _resources(spark, [("dorado", _procedure({"url": LEVEL}))])
    unknown = Catalogue({"dorado": {"procedure": {"ilp_level": "usedCode.coding"}}})
    with pytest.raises(ViewError, match=r"procedure.json: view procedure: column ilp_level \(the override in centre "
                                        r"dorado's configuration, \[centres.views.procedure\] ilp_level\): "
                                        r"'usedCode.coding': `usedCode` is not an element"):
        unknown.columns(resources, "Procedure")
    mistyped = Catalogue({"dorado": {"procedure": {"limb_sparing": "extension('x').value.ofType(CodeableConcept)"}}})
    with pytest.raises(ViewError, match=r"column limb_sparing \(the override in centre dorado's configuration, "
                                        r"\[centres.views.procedure\] limb_sparing\): .* yields "
                                        r"struct<coding.*where the column holds boolean"):
        mistyped.columns(resources, "Procedure")


def test_a_view_file_that_is_not_a_view_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "procedure.json"
    path.write_text(json.dumps({"name": "procedure", "select": [{"column": [{"name": "x", "path": "id"}]}]}))
    with pytest.raises(ViewError, match=f"{path}: view procedure: `resource`"):
        ViewDefinition.load(path)


def test_a_column_that_yields_many_values_where_one_is_declared_fails_when_it_happens(spark: SparkSession) -> None:
    resources = _resources(spark, [("aurora", {"resourceType": "Observation", "id": "o1",
                                               "focus": [{"reference": "Condition/a"}, {"reference": "Condition/b"}]})])
    view = ViewDefinition.parse({"name": "v", "resource": "Observation", "select": [{"column": [
        {"name": "focus", "path": "focus.getReferenceKey()"}]}]})
    frame = select_view(resources, view)
    with pytest.raises(CapturedException, match="yielded more than one value"):
        frame.collect()
