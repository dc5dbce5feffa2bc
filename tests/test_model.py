"""The canonical model: complete, consistent, and in step with its data dictionary."""

from __future__ import annotations

from datetime import date

import pytest

from foundation.model import BY_NAME, COHORT, DEFAULT_ENDPOINTS, TABLES, Column, Table, dictionary
from foundation.model.dates import completed_years, months_between, parse_fhir_date

STUDY_VARIABLES = {
    # Table 1
    "patients": ["age_at_diagnosis", "sex", "bmi", "smoking", "hypertension", "dyslipidaemia"],
    "tumours": ["site", "subsite", "size_cm", "histology", "fnclcc_grade", "unresectability_reason", "diagnosis_date"],
    # ILP parameters
    "perfusions": ["ilp_level", "tnf_dose_mg", "melphalan_dose_mg_per_l", "max_temperature_c", "duration_min",
                   "leakage_pct"],
    "toxicities": ["scale", "grade", "ctcae_term"],
    "responses": ["kind", "category", "necrosis_pct"],
    "treatments": ["kind", "limb_sparing", "amputation_reason", "radiotherapy_setting"],
    "events": ["kind", "event_date", "metastasis_site"],
    "cohort": ["os_months", "os_event", "rfs_months", "rfs_event", "lrfs_months", "lrfs_event", "mfs_months",
               "mfs_event", "wieberdink_grade", "radiological_response", "pathological_response",
               "limb_sparing_surgery", "amputation", "postoperative_radiotherapy", "last_contact_date"],
}


def test_every_canonical_table_exists() -> None:
    assert [t.name for t in TABLES] == ["patients", "tumours", "perfusions", "toxicities", "responses",
                                        "treatments", "events", "cohort"]


@pytest.mark.parametrize("table_name", sorted(STUDY_VARIABLES))
def test_table_carries_the_study_variables(table_name: str) -> None:
    assert set(STUDY_VARIABLES[table_name]) <= set(BY_NAME[table_name].column_names)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_table_has_provenance_and_a_patient(table: Table) -> None:
    names = table.column_names
    assert {"centre_id", "source_resource_ids", "run_id", "patient_id"} <= set(names)
    assert table.key[0] == "centre_id"
    for column in table:
        assert column.meaning, f"{table.name}.{column.name} has no meaning"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_schemas_convert_for_arrow_and_spark(table: Table) -> None:
    arrow = table.arrow_schema()
    assert arrow.names == table.column_names
    for key in table.key:
        assert not arrow.field(key).nullable
    assert table.spark_ddl().count("`") == 2 * len(table.columns)


def test_spark_accepts_every_schema(spark) -> None:  # type: ignore[no-untyped-def]
    for table in TABLES:
        df = spark.createDataFrame([], schema=table.spark_ddl())
        assert df.columns == table.column_names


def test_every_declared_endpoint_has_cohort_columns() -> None:
    names = set(COHORT.column_names)
    for endpoint in DEFAULT_ENDPOINTS:
        assert {f"{endpoint.name}_months", f"{endpoint.name}_event"} <= names
        assert set(endpoint.origins) | set(endpoint.events) | {endpoint.follow_up_end} <= names


def test_a_table_rejects_duplicate_columns_and_unknown_keys() -> None:
    col = Column("a", "string", "x")
    with pytest.raises(ValueError, match="duplicate"):
        Table("t", "m", key=("a",), columns=(col, col))
    with pytest.raises(ValueError, match="key columns"):
        Table("t", "m", key=("b",), columns=(col,))


def test_data_dictionary_is_in_step_with_the_code() -> None:
    written = dictionary.DICTIONARY_PATH.read_text(encoding="utf-8")
    assert written == dictionary.render(), "docs/data-dictionary.md is stale: run `ilp dictionary`"


def test_data_dictionary_lists_every_column() -> None:
    text = dictionary.render()
    for table in TABLES:
        assert f"## `{table.name}`" in text
        for column in table:
            assert f"| `{column.name}` |" in text


@pytest.mark.parametrize(("literal", "expected", "imputed"), [
    ("2010-05-20", date(2010, 5, 20), False),
    ("2010-05-20T23:30:00-05:00", date(2010, 5, 20), False),
    ("2010-05", date(2010, 5, 15), True),
    ("2010", date(2010, 7, 1), True),
])
def test_partial_dates_follow_the_documented_rule(literal: str, expected: date, imputed: bool) -> None:
    assert parse_fhir_date(literal) == (expected, imputed)


@pytest.mark.parametrize("literal", ["2019-02-30", "20190230", "May 2010", "2010-13", "2010-05T10:00:00Z"])
def test_impossible_dates_are_errors(literal: str) -> None:
    with pytest.raises(ValueError):
        parse_fhir_date(literal)


def test_time_units() -> None:
    assert months_between(date(2010, 1, 1), date(2011, 1, 1)) == pytest.approx(365 / 30.4375)
    assert completed_years(date(1960, 6, 15), date(2010, 6, 14)) == 49
    assert completed_years(date(1960, 6, 15), date(2010, 6, 15)) == 50
