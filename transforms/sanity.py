"""What makes a resource internally impossible: a date that is no date, a period that ends before it starts, a
quantity that is not a number or cannot be (negative, or a percentage above 100), a death before the birth.

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

from transforms.columns import fhir_date

# The date elements the cohort reads.
DATES = ("birthDate", "deceasedDateTime", "onsetDateTime", "recordedDate", "performedDateTime",
         "performedPeriod.start", "performedPeriod.end", "effectiveDateTime", "effectivePeriod.start",
         "effectivePeriod.end", "valueDateTime")
PERIODS = ("performedPeriod", "effectivePeriod")
QUANTITIES = ("valueQuantity", "dosage.dose")


def _not_a_date(element: str) -> tuple[Column, str]:
    text = F.col(f"r.{element}")
    return text.isNotNull() & fhir_date(text).isNull(), f"{element} is not a valid date"


def _backwards(period: str) -> tuple[Column, str]:
    start, end = fhir_date(F.col(f"r.{period}.start")), fhir_date(F.col(f"r.{period}.end"))
    return end < start, f"{period} ends before it starts"


# What a Quantity cannot be: (test of the Quantity, reason after the element's name).
QUANTITY_TESTS: tuple[tuple[Callable[[Column], Column], str], ...] = (
    (lambda q: q["value"].isNotNull() & q["value"].try_cast("double").isNull(), ".value is not a number"),
    (lambda q: q["value"].try_cast("double") < 0, ".value is negative"),
    (lambda q: (F.coalesce(q["code"], q["unit"]) == "%") & (q["value"].try_cast("double") > 100),
     " is a percentage above 100"),
)


def _on_component(test: Callable[[Column], Column]) -> Callable[[Column], Column]:
    return lambda component: test(component["valueQuantity"])


def impossibility() -> Column:
    """Why the resource in column `r` is internally impossible (the first reason found), or null."""
    checks = [_not_a_date(d) for d in DATES] + [_backwards(p) for p in PERIODS]
    checks += [(test(F.col(f"r.{element}")), element + reason) for element in QUANTITIES
               for test, reason in QUANTITY_TESTS]
    components = F.coalesce(F.col("r.component"), F.array())
    checks += [(F.exists(components, _on_component(test)), "component.valueQuantity" + reason)
               for test, reason in QUANTITY_TESTS]
    checks.append((fhir_date(F.col("r.deceasedDateTime")) < fhir_date(F.col("r.birthDate")),
                   "deceasedDateTime is before birthDate"))
    return reduce(lambda reason, check: F.when(check[0], F.lit(check[1])).otherwise(reason), reversed(checks),
                  F.lit(None).cast("string"))
