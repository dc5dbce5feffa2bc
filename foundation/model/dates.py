"""One rule for FHIR dates, used wherever a FHIR date becomes a canonical date.

FHIR `date`/`dateTime` may be partial (`2010`, `2010-05`) or carry a time and a zone. The canonical tables hold
calendar dates, so:
- a full date or dateTime keeps the calendar date as written at the source (the zone offset is not applied:
  the clinical day is the day the centre recorded);
- `YYYY-MM` becomes the 15th of that month and `YYYY` becomes 1 July of that year (the middle, which halves the
  worst-case error), and the row's `*_imputed` flag is set.
"""

from __future__ import annotations

import re
from datetime import date

_FHIR_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T.*)?$")
DAYS_PER_MONTH = 30.4375  # 365.25 / 12: the month used by every endpoint time


def parse_fhir_date(value: str) -> tuple[date, bool]:
    """Canonical date of a FHIR date or dateTime literal, and whether it was imputed from a partial date.

    Raises ValueError for text that is not a FHIR date or names an impossible day (2019-02-30).
    """
    match = _FHIR_DATE.match(value.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {value!r}")
    year, month, day = match.groups()
    if "T" in value and day is None:
        raise ValueError(f"a FHIR dateTime with a time needs a full date: {value!r}")
    if month is None:
        return date(int(year), 7, 1), True
    if day is None:
        return date(int(year), int(month), 15), True
    return date(int(year), int(month), int(day)), False


def months_between(start: date, end: date) -> float:
    """Elapsed time in months of 30.4375 days, the unit of every endpoint."""
    return (end - start).days / DAYS_PER_MONTH


def completed_years(born: date, on: date) -> int:
    """Age in completed years on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
