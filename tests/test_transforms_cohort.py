"""The cohort row's rules where the synthetic consortium has no case: ties, the RECIST window, a bare patient."""

from __future__ import annotations

from datetime import date
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from foundation.model import BY_NAME, DEFAULT_ENDPOINTS, TABLES
from transforms.tables.cohort import build_cohort


def _table(spark: SparkSession, name: str, rows: list[dict[str, Any]]) -> DataFrame:
    """A canonical table from partial rows (every other column null), for patient `p1` at centre `c`."""
    model = BY_NAME[name]
    full = [{c: row.get(c, {"centre_id": "c", "patient_id": "p1", "source_resource_ids": [f"{name}/{n}"],
                            "run_id": "r"}.get(c)) for c in model.column_names} for n, row in enumerate(rows)]
    return spark.createDataFrame(full, model.spark_ddl())


def _cohort(spark: SparkSession, **rows: list[dict[str, Any]]) -> dict[str, Any]:
    patient = [{"sex": "female"}]
    tables = {t.name: _table(spark, t.name, rows.get(t.name, patient if t.name == "patients" else []))
              for t in TABLES if t.name != "cohort"}
    (row,) = build_cohort(tables, DEFAULT_ENDPOINTS, "r").collect()
    return row.asDict()


def test_first_tumour_is_the_earliest_then_the_smallest_key(spark: SparkSession) -> None:
    tumours = [{"tumour_id": "t0", "diagnosis_date": date(2022, 1, 1), "site": "upper_limb"},
               {"tumour_id": "t2", "diagnosis_date": date(2020, 5, 1), "site": "lower_limb", "size_cm": 12.0},
               {"tumour_id": "t1", "diagnosis_date": date(2020, 5, 1), "site": "upper_limb", "size_cm": 8.0}]
    row = _cohort(spark, tumours=tumours)
    assert (row["diagnosis_date"], row["site"], row["size_cm"]) == (date(2020, 5, 1), "upper_limb", 8.0)
    assert row["source_resource_ids"] == ["patients/0", "tumours/0", "tumours/1", "tumours/2"]


def test_best_recist_counts_only_the_first_ilp_within_90_days(spark: SparkSession) -> None:
    perfusions = [{"perfusion_id": "f1", "perfusion_number": 1, "perfusion_date": date(2021, 1, 10)},
                  {"perfusion_id": "f2", "perfusion_number": 2, "perfusion_date": date(2021, 6, 1)}]
    responses = [{"response_id": "a", "perfusion_id": "f1", "kind": "radiological", "category": "SD",
                  "assessment_date": date(2021, 3, 1)},
                 {"response_id": "b", "perfusion_id": "f1", "kind": "radiological", "category": "CR",
                  "assessment_date": date(2021, 5, 1)},  # 111 days after the first ILP
                 {"response_id": "c", "perfusion_id": "f2", "kind": "radiological", "category": "PR",
                  "assessment_date": date(2021, 7, 1)}]  # the second ILP's
    row = _cohort(spark, perfusions=perfusions, responses=responses)
    assert (row["radiological_response"], row["objective_response"]) == ("SD", False)
    assert (row["ilp_count"], row["first_ilp_date"]) == (2, date(2021, 1, 10))


def test_a_patient_without_other_rows_has_empty_facts(spark: SparkSession) -> None:
    row = _cohort(spark)
    assert (row["ilp_count"], row["systemic_therapy"], row["radiological_response"], row["os_months"]) == \
        (0, False, None, None)
