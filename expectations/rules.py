"""The checks a cohort snapshot must pass, declared as data.

Structural checks (columns, types, required values, keys unique per centre, allowed values, hard bounds) are
derived from the canonical model, so a column added to the model is checked without touching this file. The
clinical checks below are the domain's: plausible ranges from the reference study's protocol, the order in
which a patient's dates must fall, and the agreement of each endpoint's event flag with its dates.

Severity: `critical` blocks publication; `warning` is reported in the summary and the Data Docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from great_expectations.expectations.metadata_types import FailureSeverity

from foundation.model import vocabulary as v

CRITICAL = FailureSeverity.CRITICAL
WARNING = FailureSeverity.WARNING


@dataclass(frozen=True)
class Plausible:
    """A value outside [low, high] is unusual for ILP practice, not impossible: reported, not blocking."""

    table: str
    column: str
    low: float
    high: float
    why: str  # why values outside are suspect

    @property
    def description(self) -> str:
        """What Data Docs say of the rule: the range it checks, and why."""
        return f"plausible between {self.low:g} and {self.high:g}: {self.why}"


@dataclass(frozen=True)
class TimeOrder:
    """`later` must not fall before `earlier` on the same row (rows missing either date are not judged)."""

    table: str
    earlier: str
    later: str


@dataclass(frozen=True)
class EventAgreement:
    """On rows where `flag` is `when`, `date` must be present (`present`) or absent."""

    flag: str
    when: bool
    date: str
    present: bool


# The reference study's protocol: TNF 0.5-2 mg (arm) / 1-4 mg (leg), melphalan 13 / 10 mg/L, 38-39.5 C for 60 min.
PLAUSIBLE: tuple[Plausible, ...] = (
    Plausible("patients", "age_at_diagnosis", 15, 90, "adult sarcoma series"),
    Plausible("patients", "bmi", 15, 50, "outside 15-50 kg/m2 is usually a unit error"),
    Plausible("tumours", "size_cm", 1, 40, "limb sarcoma treated by ILP"),
    Plausible("perfusions", "tnf_dose_mg", 0.5, 4, "protocol 0.5-4 mg"),
    Plausible("perfusions", "melphalan_dose_mg_per_l", 10, 13, "protocol 10 (leg) to 13 (arm) mg/L"),
    Plausible("perfusions", "max_temperature_c", 37, 41, "the protocol's mild hyperthermia is 38-39.5 C"),
    Plausible("perfusions", "duration_min", 30, 120, "the protocol perfuses for 60 min"),
    Plausible("perfusions", "leakage_pct", 0, 10, "leakage above 10% stops a perfusion"),
)

# A patient's course: diagnosis <= ILP <= resection <= relapse/metastasis <= death; last contact after everything.
TIME_ORDER: tuple[TimeOrder, ...] = (
    TimeOrder("cohort", "diagnosis_date", "first_ilp_date"),
    TimeOrder("cohort", "first_ilp_date", "resection_date"),
    TimeOrder("cohort", "resection_date", "local_relapse_date"),
    TimeOrder("cohort", "resection_date", "distant_metastasis_date"),
    TimeOrder("cohort", "first_ilp_date", "local_relapse_date"),
    TimeOrder("cohort", "first_ilp_date", "distant_metastasis_date"),
    TimeOrder("cohort", "first_ilp_date", "death_date"),
    TimeOrder("cohort", "diagnosis_date", "death_date"),
    TimeOrder("cohort", "local_relapse_date", "death_date"),
    TimeOrder("cohort", "distant_metastasis_date", "death_date"),
    TimeOrder("cohort", "first_ilp_date", "amputation_date"),
    *(TimeOrder("cohort", event, "last_contact_date") for event in (
        "diagnosis_date", "first_ilp_date", "resection_date", "amputation_date", "local_relapse_date",
        "distant_metastasis_date", "death_date")),
    TimeOrder("treatments", "start_date", "end_date"),
)

# Endpoint flags agree with the dates they were derived from.
EVENT_AGREEMENT: tuple[EventAgreement, ...] = (
    EventAgreement("os_event", True, "death_date", present=True),
    EventAgreement("os_event", False, "death_date", present=False),
    EventAgreement("lrfs_event", True, "local_relapse_date", present=True),
    EventAgreement("lrfs_event", False, "local_relapse_date", present=False),
    EventAgreement("mfs_event", True, "distant_metastasis_date", present=True),
    EventAgreement("mfs_event", False, "distant_metastasis_date", present=False),
    EventAgreement("rfs_event", False, "local_relapse_date", present=False),
    EventAgreement("rfs_event", False, "distant_metastasis_date", present=False),
)
ENDPOINT_TIMES = ("os_months", "rfs_months", "lrfs_months", "mfs_months")

# Each scale's own grades (the table's allowed set is the union of all scales).
GRADES = {scale: tuple(grades) for scale, grades in v.GRADES_BY_SCALE.items()}

# Every perfusion must carry both drugs: an ILP without TNF or melphalan is a mapping or linkage failure.
PERFUSION_DRUGS = ("tnf_dose_mg", "melphalan_dose_mg_per_l")
