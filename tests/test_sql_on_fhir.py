"""The SQL-on-FHIR v2 specification's own test cases (tests/sql_on_fhir/, MIT), run through the Spark compiler.

Each case's resources are read by Spark with an inferred schema (the cases use elements our read schema does
not have), so unknown elements are empty collections here (`strict=False`), as FHIRPath says. A case passes
when the rows equal the expected ones (as a multiset; column order when the case states it), or when an
expected error is raised, at compile time or when Spark runs the plan.

Cases the compiler does not support are listed in UNSUPPORTED and expected to fail (strictly: one that starts
passing fails the suite, so the list and the README's count stay true). The project's own views use none of
these features: they compile (tests/test_views.py), and an unsupported function or directive is refused at
compile time, by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.views.definition import ViewDefinition, select_view
from transforms.views.fhirpath import ViewError

CASES = Path(__file__).parent / "sql_on_fhir"
# (file, title) -> why the compiler does not pass it.
UNSUPPORTED_FEATURES = {"fn_boundary.json": "lowBoundary()/highBoundary() are not supported",
                        "repeat.json": "`repeat` is not supported"}
UNSUPPORTED = {("row_index.json", "%rowIndex with repeat"): "`repeat` is not supported"}


def _cases() -> Iterator[Any]:
    for path in sorted(CASES.glob("*.json")):
        if path.name == "tests.schema.json":
            continue
        suite = json.loads(path.read_text(encoding="utf-8"))
        for case in suite["tests"]:
            reason = UNSUPPORTED_FEATURES.get(path.name) or UNSUPPORTED.get((path.name, case["title"]))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(suite["resources"], case, id=f"{path.stem}: {case['title']}", marks=marks)


def _resources(spark: SparkSession, resources: list[dict[str, Any]], resource_type: Any) -> DataFrame:
    """The case's resources of the view's type, as a column `r` with the schema Spark infers from them."""
    lines = [json.dumps(r) for r in resources if r.get("resourceType") == resource_type] or [
        json.dumps({"resourceType": str(resource_type)})]
    frame = spark.read.json(spark.sparkContext.parallelize(lines, 1))
    return frame.select(F.struct(*frame.columns).alias("r"))


def _normal(row: dict[str, Any]) -> str:
    """A row as comparable text: numbers as floats (Spark infers integers as long, some expectations say 1.0)."""
    def number(value: Any) -> Any:
        if isinstance(value, list):
            return [number(v) for v in value]
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    return json.dumps({k: number(v) for k, v in row.items()}, sort_keys=True, default=str)


@pytest.mark.parametrize(("resources", "case"), list(_cases()))
def test_specification_case(spark: SparkSession, resources: list[dict[str, Any]], case: dict[str, Any]) -> None:
    if "expectError" in case:
        with pytest.raises((ViewError, CapturedException)):  # at compile time, or Spark's raise_error
            view = ViewDefinition.parse(case["view"])
            select_view(_resources(spark, resources, view.resource), view, strict=False).collect()
        return
    view = ViewDefinition.parse(case["view"])
    rows = select_view(_resources(spark, resources, view.resource), view, strict=False)
    got = [r.asDict(recursive=True) for r in rows.collect()]
    assert sorted(map(_normal, got)) == sorted(map(_normal, case["expect"]))
    if "expectColumns" in case:
        assert rows.columns == case["expectColumns"]
