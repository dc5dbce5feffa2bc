"""great_expectations suites built from the canonical model and the declared rules (`rules`).

One suite per canonical table (run on the snapshot's table, every centre at once: keys are checked unique per
centre and offending rows are reported with their centre), and three suites over derived check tables:
`links` (every row's patient exists in that centre's patients), `reconciliation` (row counts and resource
counts agree with the transform's manifests) and `pooled` (one person at two centres is reported).
"""

from __future__ import annotations

from collections.abc import Iterator

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column

from expectations.rules import (
    CRITICAL,
    ENDPOINT_TIMES,
    EVENT_AGREEMENT,
    GRADES,
    PERFUSION_DRUGS,
    PLAUSIBLE,
    TIME_ORDER,
    WARNING,
)
from foundation.completeness import gap_column
from foundation.model import BY_NAME, TABLES, Table

SPARK_TYPES = {"string": "StringType", "int": "IntegerType", "double": "DoubleType", "boolean": "BooleanType",
               "date": "DateType", "timestamp": "TimestampType"}


def table_suite(table: Table) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=table.name, expectations=[*_structure(table), *_clinical(table)])


def _structure(table: Table) -> Iterator[Expectation]:
    yield gxe.ExpectTableColumnsToMatchSet(column_set=table.column_names, exact_match=True, severity=CRITICAL,
                                           description=f"{table.name} has exactly the model's columns")
    yield gxe.ExpectCompoundColumnsToBeUnique(column_list=list(table.key), severity=CRITICAL,
                                              description=f"{table.name} key unique per centre")
    for column in table:
        if column.type in SPARK_TYPES:
            yield gxe.ExpectColumnValuesToBeOfType(column=column.name, type_=SPARK_TYPES[column.type],
                                                   severity=CRITICAL)
        if not column.nullable:
            yield gxe.ExpectColumnValuesToNotBeNull(column=column.name, severity=CRITICAL)
        if column.allowed is not None:
            allowed: list[object] = [int(a) for a in column.allowed] if column.type == "int" else list(column.allowed)
            yield gxe.ExpectColumnValuesToBeInSet(column=column.name, value_set=allowed, severity=CRITICAL)
        if column.minimum is not None or column.maximum is not None:
            yield gxe.ExpectColumnValuesToBeBetween(column=column.name, min_value=column.minimum,
                                                    max_value=column.maximum, severity=CRITICAL)


def _clinical(table: Table) -> Iterator[Expectation]:
    for rule in PLAUSIBLE:
        if rule.table == table.name:
            yield gxe.ExpectColumnValuesToBeBetween(column=rule.column, min_value=rule.low, max_value=rule.high,
                                                    severity=WARNING, description=rule.description)
    for order in TIME_ORDER:
        if order.table == table.name:
            yield gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=order.later, column_B=order.earlier, or_equal=True, ignore_row_if="either_value_is_missing",
                severity=CRITICAL, description=f"{order.earlier} <= {order.later}")
    if table.name == "cohort":
        for time in ENDPOINT_TIMES:
            yield gxe.ExpectColumnValuesToBeBetween(column=time, min_value=0, severity=CRITICAL,
                                                    description=f"{time} is not negative")
        for agreement in EVENT_AGREEMENT:
            check = gxe.ExpectColumnValuesToNotBeNull if agreement.present else gxe.ExpectColumnValuesToBeNull
            yield check(column=agreement.date, row_condition=Column(agreement.flag) == agreement.when,
                        severity=CRITICAL,
                        description=f"{agreement.date} {'present' if agreement.present else 'absent'} when "
                                    f"{agreement.flag} is {agreement.when}")
    if table.name == "toxicities":
        for scale, grades in GRADES.items():
            yield gxe.ExpectColumnValuesToBeInSet(column="grade", value_set=list(grades), severity=CRITICAL,
                                                  row_condition=Column("scale") == scale,
                                                  description=f"{scale} grades are {', '.join(grades)}")
    if table.name == "perfusions":
        for drug in PERFUSION_DRUGS:
            yield gxe.ExpectColumnValuesToNotBeNull(column=drug, severity=CRITICAL,
                                                    description=f"every perfusion has its {drug}")


def links_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="links", expectations=[gxe.ExpectColumnValuesToBeInSet(
        column="linked", value_set=[True], severity=CRITICAL,
        description="every row's patient (and every perfusion's tumour) exists in the same centre")])


def reconciliation_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="reconciliation", expectations=[gxe.ExpectColumnPairValuesToBeEqual(
        column_A="observed", column_B="expected", severity=CRITICAL,
        description="rows in the snapshot = rows in the manifest; resources = used + quarantined + out of "
                    "scope")])


def pooled_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="pooled", expectations=[gxe.ExpectColumnValuesToBeUnique(
        column="patient_id", severity=WARNING,
        description="one pseudonym per centre: a duplicate is a patient treated at two centres")])


def completeness_suite(centres: list[str]) -> gx.ExpectationSuite:
    """One expectation per centre: no canonical column it leaves entirely empty where another centre fills it."""
    return gx.ExpectationSuite(name="completeness", expectations=[gxe.ExpectColumnValuesToBeInSet(
        column=gap_column(centre), value_set=[False], severity=WARNING,
        description=f"{centre} fills every column another centre fills: an empty one is usually kept where the "
                    "views do not look (override the view column; see `ilp profile`)") for centre in centres])


def all_suites(centres: list[str]) -> dict[str, gx.ExpectationSuite]:
    suites = {t.name: table_suite(t) for t in TABLES}
    suites.update(links=links_suite(), reconciliation=reconciliation_suite(), pooled=pooled_suite(),
                  completeness=completeness_suite(centres))
    return suites


def index_columns(suite: str) -> list[str]:
    """Columns that identify an offending row in reports: keys only, never values."""
    if suite in BY_NAME:
        return list(BY_NAME[suite].key)
    return {"links": ["table", "centre_id", "row_key"], "reconciliation": ["check", "centre_id", "item"],
            "pooled": ["centre_id", "patient_id"], "completeness": ["table", "column"]}[suite]
