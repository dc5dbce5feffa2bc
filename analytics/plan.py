"""The analysis declaration: which endpoints, horizons and prognostic factors, under which output policy.

The defaults are the reference study's (Methods, "Statistical analysis" and the prognostic factors it lists);
a consortium can declare its own in the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analytics.kaplan_meier import CiMethod
from analytics.policy import OutputPolicy
from foundation.model import DEFAULT_ENDPOINTS, Endpoint


@dataclass(frozen=True)
class Factor:
    """A prognostic factor: a cohort column whose values split patients into groups.

    `levels` maps the stored values to the labels the tables print, in print order; values not listed are
    left out of comparisons (e.g. grade not available).
    """

    column: str
    label: str
    levels: tuple[tuple[object, str], ...]

    def label_of(self, value: object) -> str | None:
        return next((text for stored, text in self.levels if stored == value), None)


DEFAULT_FACTORS: tuple[Factor, ...] = (
    Factor("age_over_65", "Age", ((False, "<= 65 years"), (True, "> 65 years"))),
    Factor("sex", "Sex", (("male", "Male"), ("female", "Female"))),
    Factor("bmi_over_30", "BMI", ((False, "<= 30"), (True, "> 30"))),
    Factor("site", "Tumour site", (("upper_limb", "Upper limb"), ("lower_limb", "Lower limb"))),
    Factor("size_over_10cm", "Tumour size", ((False, "<= 10 cm"), (True, "> 10 cm"))),
    Factor("fnclcc_grade", "FNCLCC grade", ((1, "Low (1)"), (2, "Intermediate (2)"), (3, "High (3)"))),
    Factor("pathological_response", "Histological response",
           (("CR", "CR (100%)"), ("PR", "PR (50-99%)"), ("NR", "NR (<50%)"))),
)


@dataclass(frozen=True)
class AnalysisPlan:
    """What `analyse` computes. Times in the cohort are months; horizons are given in years as the study did."""

    endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS
    horizons_years: tuple[int, ...] = (1, 5, 10)
    factors: tuple[Factor, ...] = DEFAULT_FACTORS
    ci_method: CiMethod = "log"
    alpha: float = 0.05
    # protected by default: outputs leave the centre unless someone decides otherwise
    policy: OutputPolicy = field(default_factory=OutputPolicy)
    figure_endpoints: tuple[str, ...] = field(default=("rfs", "mfs", "lrfs", "os"))

    def endpoint(self, name: str) -> Endpoint:
        return next(e for e in self.endpoints if e.name == name)
