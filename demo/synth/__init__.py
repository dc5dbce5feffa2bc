"""Synthetic multicentre ILP consortium: FHIR R4 in each centre's dialect, with the ground truth beside it."""

from demo.synth.profiles import DEMO_CONSORTIUM, DEMO_SEED, OTHER_CENTRES, CentreProfile, scaled_consortium
from demo.synth.writer import RESOURCE_TYPES, generate

__all__ = ["DEMO_CONSORTIUM", "DEMO_SEED", "OTHER_CENTRES", "RESOURCE_TYPES", "CentreProfile", "generate",
           "scaled_consortium"]
