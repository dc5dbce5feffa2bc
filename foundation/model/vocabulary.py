"""Canonical values of every coded column.

These are the codes the canonical tables hold. The shipped FHIR ValueSets (foundation.terminology) say which source
codings mean each of them; a test keeps the two in step.
"""

from __future__ import annotations

SEX = ("male", "female", "other", "unknown")
SITE = ("upper_limb", "lower_limb")
SUBSITE = ("thigh", "leg", "foot", "arm", "forearm", "hand")
LATERALITY = ("left", "right")

# WHO 2013 (4th edition) subtypes seen in the reference study, with the family the study groups them by.
HISTOLOGY_FAMILY = {
    "myxoid_liposarcoma": "adipocytic",
    "dedifferentiated_liposarcoma": "adipocytic",
    "undifferentiated_pleomorphic_sarcoma": "undifferentiated",
    "synovial_sarcoma": "uncertain_differentiation",
    "epithelioid_sarcoma": "uncertain_differentiation",
    "myoepithelioma": "uncertain_differentiation",
    "angiosarcoma": "vascular",
    "leiomyosarcoma": "smooth_muscle",
    "ewing_sarcoma": "small_round_cell",
    "low_grade_fibromyxoid_sarcoma": "fibroblastic",
    "myxofibrosarcoma": "fibroblastic",
    "solitary_fibrous_tumour": "fibroblastic",
    "mpnst": "nerve_sheath",
}
HISTOLOGY = tuple(HISTOLOGY_FAMILY)
HISTOLOGY_FAMILIES = tuple(dict.fromkeys(HISTOLOGY_FAMILY.values()))

FNCLCC_GRADE = ("1", "2", "3")
UNRESECTABILITY_REASON = ("bone_contact", "neurovascular", "multifocal")
ILP_LEVEL = ("iliac", "femoral", "axillary", "brachial")

TOXICITY_SCALE = ("wieberdink", "ctcae", "clavien_dindo")
WIEBERDINK_GRADE = ("I", "II", "III", "IV", "V")
CTCAE_GRADE = ("1", "2", "3", "4", "5")
CLAVIEN_DINDO_GRADE = ("I", "II", "IIIa", "IIIb", "IVa", "IVb", "V")
GRADES_BY_SCALE = {"wieberdink": WIEBERDINK_GRADE, "ctcae": CTCAE_GRADE, "clavien_dindo": CLAVIEN_DINDO_GRADE}
# Grades as 1-5 to compare across scales (Clavien-Dindo IIIa/IIIb -> 3, IVa/IVb -> 4).
GRADE_RANK = {"wieberdink": {g: n for n, g in enumerate(WIEBERDINK_GRADE, start=1)},
              "ctcae": {g: int(g) for g in CTCAE_GRADE},
              "clavien_dindo": {"I": 1, "II": 2, "IIIa": 3, "IIIb": 3, "IVa": 4, "IVb": 4, "V": 5}}
CTCAE_TERM = ("wound_infection", "wound_dehiscence", "seroma", "lymphocele", "skin_necrosis",
              "peripheral_neuropathy", "thrombosis", "pulmonary_embolism", "cardiac_arrest")

RESPONSE_KIND = ("radiological", "pathological")
RECIST = ("CR", "PR", "SD", "PD")
PATHOLOGICAL_RESPONSE = ("CR", "PR", "NR")
RESPONSE_CATEGORY = ("CR", "PR", "SD", "PD", "NR")

TREATMENT_KIND = ("resection", "amputation", "radiotherapy", "systemic_therapy")
RADIOTHERAPY_SETTING = ("postoperative", "exclusive")
AMPUTATION_REASON = ("tumour_extent", "progression", "local_relapse", "toxicity")

EVENT_KIND = ("local_relapse", "distant_metastasis", "death", "last_contact")
METASTASIS_SITE = ("lung", "bone", "liver", "lymph_node", "soft_tissue")

def best_recist(categories: list[str]) -> str | None:
    """Best overall RECIST response: CR beats PR beats SD beats PD (RECIST 1.1 best overall response)."""
    ranked = [c for c in RECIST if c in categories]
    return ranked[0] if ranked else None


def pathological_category(necrosis_pct: float) -> str:
    """The reference study's rule: CR at 100% necrosis, PR at 50-99%, NR below 50%."""
    if necrosis_pct >= 100:
        return "CR"
    return "PR" if necrosis_pct >= 50 else "NR"
