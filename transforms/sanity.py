"""What makes a resource internally impossible (or unusable as it stands): a date that is no date or lies in the
future, a period that ends before it starts, a quantity that is not a number or cannot be (negative, a percentage
above 100), a quantity without a unit or in a unit nothing converts, a death before the birth.

Such a resource is not read as null values (a perfusion without a date, a dose of nothing): it is kept out of
every table and quarantined at the harmonise stage with the first of these reasons. The check is a few
Spark expressions over the resource's own elements, computed once when the resource enters the current state.
Plausibility (a dose outside the protocol, a patient older than 90) is the expectations' business, not this.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.columns import UNITS, fhir_date

# The date elements the cohort reads.
DATES = ("birthDate", "deceasedDateTime", "onsetDateTime", "recordedDate", "performedDateTime",
         "performedPeriod.start", "performedPeriod.end", "effectiveDateTime", "effectivePeriod.start",
         "effectivePeriod.end", "valueDateTime")
PERIODS = ("performedPeriod", "effectivePeriod")
QUANTITIES = ("valueQuantity", "dosage.dose")
# Units the canonical tables can convert (UCUM codes, and the plain unit text centres write).
KNOWN_UNITS = sorted({unit for units in UNITS.values() for unit in units} | {"[degF]"})


def _dates(dates: Column, element: str) -> list[tuple[Column, str]]:
    text, date = F.col(f"r.{element}"), dates[element]
    return [(text.isNotNull() & date.isNull(), f"{element} is not a valid date"),
            (date > F.current_date(), f"{element} is in the future")]


def _backwards(period: str) -> tuple[Column, str]:
    """Compared as instants when both ends are date-times, else as calendar dates."""
    start, end = F.col(f"r.{period}.start"), F.col(f"r.{period}.end")
    return (F.coalesce(F.try_to_timestamp(end) < F.try_to_timestamp(start), fhir_date(end) < fhir_date(start)),
            f"{period} ends before it starts")


# What a Quantity cannot be: (test of the Quantity, reason after the element's name). A unit nothing converts is
# only a problem for a resource the tables read (one of a known kind): a heart rate in /min is no impossibility.
QUANTITY_TESTS: tuple[tuple[Callable[[Column], Column], str], ...] = (
    (lambda q: q["value"].isNotNull() & q["value"].try_cast("double").isNull(), ".value is not a number"),
    (lambda q: q["value"].try_cast("double") < 0, ".value is negative"),
    (lambda q: (F.coalesce(q["code"], q["unit"]) == "%") & (q["value"].try_cast("double") > 100),
     " is a percentage above 100"),
    (lambda q: q["value"].isNotNull() & F.coalesce(q["code"], q["unit"]).isNull(), " has no unit"),
    (lambda q: F.col("kind").isNotNull() & ~F.coalesce(q["code"], q["unit"]).isin(*KNOWN_UNITS),
     " has an unknown unit"),
)


def _on_components(test: Callable[[Column], Column]) -> Column:
    """Whether a component's Quantity fails the test. Most resources have no component: the test over the list
    (evaluated row by row, outside Spark's generated code) is skipped for them."""
    components = F.col("r.component")
    return components.isNotNull() & F.exists(components, lambda component: test(component["valueQuantity"]))


def with_impossibility(rows: DataFrame) -> DataFrame:
    """`rows` (the resource parsed in column `r`, with its canonical `kind`) with `impossible`: why it is
    internally impossible (the first reason found), or null.

    Each date element is parsed once, in a projection of its own, and tested twice from there: inline, each date
    was parsed twice and the check cost more than parsing the resource."""
    dates = F.col("_dates")
    checks = [check for d in DATES for check in _dates(dates, d)] + [_backwards(p) for p in PERIODS]
    checks += [(test(F.col(f"r.{element}")), element + reason) for element in QUANTITIES
               for test, reason in QUANTITY_TESTS]
    checks += [(_on_components(test), "component.valueQuantity" + reason) for test, reason in QUANTITY_TESTS]
    checks.append((dates["deceasedDateTime"] < dates["birthDate"], "deceasedDateTime is before birthDate"))
    reason = reduce(lambda reason, check: F.when(check[0], F.lit(check[1])).otherwise(reason), reversed(checks),
                    F.lit(None).cast("string"))
    parsed_dates = F.struct(*[fhir_date(F.col(f"r.{d}")).alias(d) for d in DATES])
    return rows.withColumn("_dates", parsed_dates).withColumn("impossible", reason).drop("_dates")
