"""What makes a resource internally impossible (or unusable as it stands): a date that is no date or lies in the
future, a period that ends before it starts, a quantity that is not a number or cannot be (negative, a percentage
above 100), a quantity without a unit or in a unit nothing converts, a death before the birth.

Such a resource is not read as null values (a perfusion without a date, a dose of nothing): it is kept out of
every table and quarantined at the harmonise stage with the first of these reasons. The check is one Spark
expression over the resource's own elements, computed once when the resource enters the current state.
Plausibility (a dose outside the protocol, a patient older than 90) is the expectations' business, not this.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column
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


def _dates(element: str) -> list[tuple[Column, str]]:
    text = F.col(f"r.{element}")
    return [(text.isNotNull() & fhir_date(text).isNull(), f"{element} is not a valid date"),
            (fhir_date(text) > F.current_date(), f"{element} is in the future")]


def _backwards(period: str) -> tuple[Column, str]:
    """Compared as instants when both ends are date-times, else as calendar dates."""
    start, end = F.col(f"r.{period}.start"), F.col(f"r.{period}.end")
    return (F.coalesce(F.try_to_timestamp(end) < F.try_to_timestamp(start), fhir_date(end) < fhir_date(start)),
            f"{period} ends before it starts")


# What a Quantity cannot be: (test of the Quantity, reason after the element's name).
QUANTITY_TESTS: tuple[tuple[Callable[[Column], Column], str], ...] = (
    (lambda q: q["value"].isNotNull() & q["value"].try_cast("double").isNull(), ".value is not a number"),
    (lambda q: q["value"].try_cast("double") < 0, ".value is negative"),
    (lambda q: (F.coalesce(q["code"], q["unit"]) == "%") & (q["value"].try_cast("double") > 100),
     " is a percentage above 100"),
    (lambda q: q["value"].isNotNull() & F.coalesce(q["code"], q["unit"]).isNull(), " has no unit"),
    (lambda q: ~F.coalesce(q["code"], q["unit"]).isin(*KNOWN_UNITS), " has an unknown unit"),
)


def _on_component(test: Callable[[Column], Column]) -> Callable[[Column], Column]:
    return lambda component: test(component["valueQuantity"])


def impossibility() -> Column:
    """Why the resource in column `r` is internally impossible (the first reason found), or null."""
    checks = [check for d in DATES for check in _dates(d)] + [_backwards(p) for p in PERIODS]
    checks += [(test(F.col(f"r.{element}")), element + reason) for element in QUANTITIES
               for test, reason in QUANTITY_TESTS]
    components = F.coalesce(F.col("r.component"), F.array())
    checks += [(F.exists(components, _on_component(test)), "component.valueQuantity" + reason)
               for test, reason in QUANTITY_TESTS]
    checks.append((fhir_date(F.col("r.deceasedDateTime")) < fhir_date(F.col("r.birthDate")),
                   "deceasedDateTime is before birthDate"))
    return reduce(lambda reason, check: F.when(check[0], F.lit(check[1])).otherwise(reason), reversed(checks),
                  F.lit(None).cast("string"))
