"""The transforms stage: landed FHIR into the canonical ILP cohort's tables (Spark).

What the application calls: `transform` (merge what landed, build a snapshot's tables), `CurrentState` (what is
merged, and what is pending), `profile_centres` (what the views make of a centre before it is trusted).
"""

from transforms.current import CurrentState
from transforms.pipeline import CentreSettings, TransformOptions, TransformReport, new_run_id, transform
from transforms.profile import CentreFindings, profile_centres
from transforms.pseudonym import Linkage

__all__ = ["CentreFindings", "CentreSettings", "CurrentState", "Linkage", "TransformOptions", "TransformReport",
           "new_run_id", "profile_centres", "transform"]
