"""Column expressions for FHIR's loose corners: references in any style, partial dates, units.

Each is the Spark twin of a rule documented in `foundation/model` (dates) or here (units), so tables built on a cluster
follow the same rules as the synthetic ground truth.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# To the canonical unit, by UCUM code (or the plain unit text centres write): multiply by a factor >= 1, or divide
# by an exact integer (73 mm / 10 is exactly 7.3 cm; 73 * 0.1 is not). Fahrenheit is converted separately.
UNITS: dict[str, dict[str, tuple[str, float]]] = {
    "cm": {"cm": ("*", 1), "mm": ("/", 10), "m": ("*", 100)},
    "mg": {"mg": ("*", 1), "ug": ("/", 1000), "mcg": ("/", 1000), "g": ("*", 1000)},
    "mg/L": {"mg/L": ("*", 1), "mg/l": ("*", 1), "ug/mL": ("*", 1), "g/L": ("*", 1000)},
    "kg": {"kg": ("*", 1), "g": ("/", 1000)},
    "L": {"L": ("*", 1), "l": ("*", 1), "mL": ("/", 1000), "ml": ("/", 1000), "dL": ("/", 10)},
    "min": {"min": ("*", 1), "h": ("*", 60), "s": ("/", 60)},
    "%": {"%": ("*", 1)},
    "kg/m2": {"kg/m2": ("*", 1)},
    "Cel": {"Cel": ("*", 1), "C": ("*", 1)},
}


def reference_id(reference: Column) -> Column:
    """The id a reference points at, whatever its style: `Patient/1`, `https://host/fhir/Patient/1`, `urn:uuid:1`:
    what follows its last `/` or `:` (cut with `substring_index`, not a regular expression: this runs for every
    reference of every resource)."""
    return F.nullif(F.substring_index(F.substring_index(reference, "/", -1), ":", -1), F.lit(""))


def fhir_date(literal: Column) -> Column:
    """Canonical date of a FHIR date/dateTime: the calendar date as written; `YYYY-MM` -> 15th, `YYYY` -> 1 July.

    Null for text that is not a date, or an impossible one (2019-02-30).
    """
    text = F.trim(literal)
    return (F.when(text.rlike(r"^\d{4}-\d{2}-\d{2}"), F.try_to_date(F.substring(text, 1, 10), "yyyy-MM-dd"))
            .when(text.rlike(r"^\d{4}-\d{2}$"), F.try_to_date(F.concat(text, F.lit("-15")), "yyyy-MM-dd"))
            .when(text.rlike(r"^\d{4}$"), F.try_to_date(F.concat(text, F.lit("-07-01")), "yyyy-MM-dd")))


def date_imputed(literal: Column) -> Column:
    """Whether `fhir_date` completed a partial date."""
    return F.trim(literal).rlike(r"^\d{4}(-\d{2})?$")


def in_unit(quantity: Column, canonical: str) -> Column:
    """A Quantity's value in the canonical unit, or null when the value is not a number or the unit is unknown."""
    units = UNITS[canonical]
    unit = F.coalesce(quantity["code"], quantity["unit"])
    value = quantity["value"].try_cast("double")

    def table(operation: str) -> Column:
        pairs = [(u, float(f)) for u, (op, f) in units.items() if op == operation]
        return F.create_map(*[F.lit(x) for pair in pairs for x in pair]) if pairs else F.create_map()

    converted = F.coalesce(value * F.try_element_at(table("*"), unit), value / F.try_element_at(table("/"), unit))
    if canonical == "Cel":
        converted = F.when(unit == "[degF]", (value - 32) * 5 / 9).otherwise(converted)
    return converted
