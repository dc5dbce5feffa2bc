"""The canonical ILP cohort: every table, every column, in one place.

Each table carries the reference study's variables at its own grain (one row per patient, tumour, perfusion,
toxicity, response, treatment or event) plus provenance; `cohort` is the analysis-ready row per patient with
the derived endpoints. Dates are calendar dates; amounts are in the canonical unit named on the column.
"""

from __future__ import annotations

from foundation.model import vocabulary as v
from foundation.model.schema import Column, Table

MONTHS = "months (days / 30.4375)"


def _c(name: str, type_: str, meaning: str, **kw: object) -> Column:
    return Column(name, type_, meaning, **kw)  # type: ignore[arg-type]


def _key(name: str, meaning: str) -> Column:
    return Column(name, "string", meaning, nullable=False)


def _patient_key() -> Column:
    return _key("patient_id",
                "Pseudonymised patient key: HMAC-SHA256 of centre and resource id under the centre's own secret "
                "(of the national identifier under the linkage secret where the consortium links)")


def _provenance() -> tuple[Column, ...]:
    return (
        _key("centre_id", "Consortium id of the centre whose FHIR server the row came from"),
        Column("source_resource_ids", "array<string>",
               "FHIR resources the row was derived from, as ResourceType/id on the centre's server", nullable=False),
        _key("run_id", "Id of the transform run that wrote the row"),
    )


def _imputed(date_column: str) -> Column:
    return _c(f"{date_column}_imputed", "boolean",
              f"True when {date_column} was completed from a partial FHIR date (see docs: partial dates)")


PATIENTS = Table(
    "patients", "One row per patient: demographics, anthropometry and comorbidities at diagnosis.",
    key=("centre_id", "patient_id"),
    columns=(
        _patient_key(),
        _c("birth_year", "int", "Year of birth (the full birth date is reduced to its year after ages are computed)",
           minimum=1900, maximum=2100),
        _c("age_at_diagnosis", "int", "Completed years of age on the diagnosis date", unit="years",
           minimum=0, maximum=110),
        _c("sex", "string", "Administrative gender", allowed=v.SEX, nullable=False),
        _c("bmi", "double", "Body mass index at diagnosis, rounded to 0.1", unit="kg/m2", minimum=10, maximum=70),
        _c("smoking", "boolean", "Current or former tobacco smoker"),
        _c("hypertension", "boolean", "Hypertension recorded as a comorbidity (false when not recorded)"),
        _c("dyslipidaemia", "boolean", "Dyslipidaemia recorded as a comorbidity (false when not recorded)"),
        *_provenance(),
    ),
)

TUMOURS = Table(
    "tumours", "One row per primary limb soft-tissue sarcoma.",
    key=("centre_id", "tumour_id"),
    columns=(
        _key("tumour_id", "Pseudonymised key of the primary cancer condition"),
        _patient_key(),
        _c("diagnosis_date", "date", "Date of diagnosis (Condition.onsetDateTime); origin of overall survival",
           nullable=False),
        _imputed("diagnosis_date"),
        _c("site", "string", "Limb affected", allowed=v.SITE, nullable=False),
        _c("subsite", "string", "Limb segment affected", allowed=v.SUBSITE),
        _c("laterality", "string", "Side of the body", allowed=v.LATERALITY),
        _c("histology", "string", "WHO histological subtype", allowed=v.HISTOLOGY),
        _c("histology_family", "string", "WHO family of the subtype", allowed=v.HISTOLOGY_FAMILIES),
        _c("morphology_code", "string", "ICD-O-3 morphology code (e.g. 8852/3)"),
        _c("fnclcc_grade", "int", "FNCLCC histological grade (1 low, 2 intermediate, 3 high)",
           minimum=1, maximum=3),
        _c("size_cm", "double", "Largest radiological diameter at diagnosis", unit="cm", minimum=0.1, maximum=60),
        _c("unresectability_reason", "string", "Why the tumour was borderline or unresectable upfront",
           allowed=v.UNRESECTABILITY_REASON),
        Column("facts_linked_by_subject", "array<string>",
               "Observations about the tumour without a focus, linked because the patient has this one primary "
               "tumour (ResourceType/id)", only_where_given=True),
        *_provenance(),
    ),
)

PERFUSIONS = Table(
    "perfusions", "One row per isolated limb perfusion with TNF-alpha and melphalan under hyperthermia.",
    key=("centre_id", "perfusion_id"),
    columns=(
        _key("perfusion_id", "Pseudonymised key of the ILP Procedure"),
        _patient_key(),
        _c("tumour_id", "string", "Tumour the perfusion treated (Procedure.reasonReference)"),
        _c("perfusion_date", "date", "Date of the perfusion", nullable=False),
        _imputed("perfusion_date"),
        _c("perfusion_number", "int", "1 for the patient's first ILP, 2 for the second, ...", nullable=False,
           minimum=1, maximum=5),
        _c("site", "string", "Limb perfused", allowed=v.SITE),
        _c("ilp_level", "string", "Vascular access level", allowed=v.ILP_LEVEL),
        _c("tnf_dose_mg", "double", "Total TNF-alpha (tasonermin) dose", unit="mg", minimum=0, maximum=10),
        _c("melphalan_dose_mg_per_l", "double", "Melphalan dose per litre of limb volume", unit="mg/L",
           minimum=0, maximum=30),
        _c("melphalan_total_mg", "double", "Total melphalan dose, where the source gave it", unit="mg",
           minimum=0, maximum=500, only_where_given=True),
        _c("limb_volume_l", "double", "Limb volume used to dose melphalan, where the source gave it", unit="L",
           minimum=0.5, maximum=40, only_where_given=True),
        _c("max_temperature_c", "double", "Maximum limb (perfusate) temperature", unit="Cel",
           minimum=30, maximum=45),
        _c("duration_min", "double", "Perfusion time", unit="min", minimum=0, maximum=240),
        _c("leakage_pct", "double", "Cumulative systemic leakage measured with radio-labelled albumin", unit="%",
           minimum=0, maximum=100),
        Column("parts_linked_by_date", "array<string>",
               "Drugs and measurements without partOf, linked because the patient had this one ILP that day "
               "(ResourceType/id)", only_where_given=True),
        *_provenance(),
    ),
)

TOXICITIES = Table(
    "toxicities", "One row per graded toxicity: Wieberdink regional reaction, CTCAE adverse event, "
    "Clavien-Dindo post-operative complication.",
    key=("centre_id", "toxicity_id"),
    columns=(
        _key("toxicity_id", "Pseudonymised key of the source Observation"),
        _patient_key(),
        _c("perfusion_id", "string", "ILP the toxicity followed (Wieberdink, CTCAE)"),
        _c("scale", "string", "Grading system", allowed=v.TOXICITY_SCALE, nullable=False),
        _c("grade", "string", "Grade on its own scale (Wieberdink I-V, CTCAE 1-5, Clavien-Dindo I-V)",
           allowed=tuple(dict.fromkeys(g for gs in v.GRADES_BY_SCALE.values() for g in gs)), nullable=False),
        _c("grade_rank", "int", "Grade as 1-5 for ordering across scales (Clavien-Dindo IIIa/IIIb -> 3)",
           minimum=1, maximum=5, nullable=False),
        _c("ctcae_term", "string", "CTCAE adverse event term (CTCAE rows only)", allowed=v.CTCAE_TERM),
        _c("onset_date", "date", "Date the toxicity was recorded"),
        *_provenance(),
    ),
)

RESPONSES = Table(
    "responses", "One row per response assessment: RECIST on MRI after ILP, necrosis on the resection specimen.",
    key=("centre_id", "response_id"),
    columns=(
        _key("response_id", "Pseudonymised key of the source Observation"),
        _patient_key(),
        _c("perfusion_id", "string", "ILP whose response was assessed"),
        _c("kind", "string", "Radiological (RECIST) or pathological (necrosis)", allowed=v.RESPONSE_KIND,
           nullable=False),
        _c("assessment_date", "date", "Date of the MRI or of the resection specimen"),
        _c("category", "string", "RECIST CR/PR/SD/PD, or pathological CR (100%)/PR (50-99%)/NR (<50%)",
           allowed=v.RESPONSE_CATEGORY, nullable=False),
        _c("necrosis_pct", "double", "Share of the specimen that is necrotic (pathological rows)", unit="%",
           minimum=0, maximum=100),
        *_provenance(),
    ),
)

TREATMENTS = Table(
    "treatments", "One row per treatment other than ILP: resection, amputation, radiotherapy, systemic therapy.",
    key=("centre_id", "treatment_id"),
    columns=(
        _key("treatment_id", "Pseudonymised key of the source Procedure"),
        _patient_key(),
        _c("kind", "string", "What was done", allowed=v.TREATMENT_KIND, nullable=False),
        _c("start_date", "date", "Date of surgery, or first day of a course", nullable=False),
        _imputed("start_date"),
        _c("end_date", "date", "Last day of a course"),
        _c("limb_sparing", "boolean", "Resection kept the limb (resection rows)"),
        _c("amputation_reason", "string", "Why the limb was amputated (amputation rows)",
           allowed=v.AMPUTATION_REASON),
        _c("radiotherapy_setting", "string", "Post-operative, or exclusive when there was no resection "
           "(radiotherapy rows; derived from dates)", allowed=v.RADIOTHERAPY_SETTING),
        *_provenance(),
    ),
)

EVENTS = Table(
    "events", "One row per follow-up event: local relapse, distant metastasis, death, last contact.",
    key=("centre_id", "event_id"),
    columns=(
        _key("event_id", "Pseudonymised key of the source resource (and event kind)"),
        _patient_key(),
        _c("kind", "string", "What happened", allowed=v.EVENT_KIND, nullable=False),
        _c("event_date", "date", "When it happened (last contact: date of the last follow-up visit)", nullable=False),
        _imputed("event_date"),
        _c("metastasis_site", "string", "Organ of a distant metastasis", allowed=v.METASTASIS_SITE),
        *_provenance(),
    ),
)


def _endpoint(name: str, label: str) -> tuple[Column, ...]:
    return (
        _c(f"{name}_months", "double", f"{label}: time from its origin to the event or censoring", unit=MONTHS,
           minimum=0),
        _c(f"{name}_event", "boolean", f"{label}: true when the event was observed, false when censored"),
    )


COHORT = Table(
    "cohort", "One analysis-ready row per patient: every study variable and the derived endpoints.",
    key=("centre_id", "patient_id"),
    columns=(
        _patient_key(),
        _c("age_at_diagnosis", "int", "Completed years of age on the diagnosis date", unit="years"),
        _c("age_over_65", "boolean", "Age at diagnosis above 65 (prognostic factor)"),
        _c("sex", "string", "Administrative gender", allowed=v.SEX),
        _c("bmi", "double", "Body mass index at diagnosis", unit="kg/m2"),
        _c("bmi_over_30", "boolean", "BMI above 30 (prognostic factor)"),
        _c("smoking", "boolean", "Current or former tobacco smoker"),
        _c("hypertension", "boolean", "Hypertension recorded"),
        _c("dyslipidaemia", "boolean", "Dyslipidaemia recorded"),
        _c("diagnosis_date", "date", "Date of diagnosis"),
        _c("site", "string", "Limb affected (prognostic factor)", allowed=v.SITE),
        _c("subsite", "string", "Limb segment affected", allowed=v.SUBSITE),
        _c("size_cm", "double", "Largest diameter at diagnosis", unit="cm"),
        _c("size_over_10cm", "boolean", "Tumour larger than 10 cm (prognostic factor)"),
        _c("histology", "string", "WHO subtype", allowed=v.HISTOLOGY),
        _c("histology_family", "string", "WHO family", allowed=v.HISTOLOGY_FAMILIES),
        _c("fnclcc_grade", "int", "FNCLCC grade 1-3 (prognostic factor)"),
        _c("unresectability_reason", "string", "Why upfront resection was not possible",
           allowed=v.UNRESECTABILITY_REASON),
        _c("ilp_count", "int", "Number of ILPs the patient had", nullable=False),
        _c("first_ilp_date", "date", "Date of the first ILP"),
        _c("ilp_level", "string", "Access level of the first ILP", allowed=v.ILP_LEVEL),
        _c("tnf_dose_mg", "double", "TNF-alpha dose of the first ILP", unit="mg"),
        _c("melphalan_dose_mg_per_l", "double", "Melphalan dose of the first ILP", unit="mg/L"),
        _c("max_temperature_c", "double", "Maximum temperature of the first ILP", unit="Cel"),
        _c("duration_min", "double", "Perfusion time of the first ILP", unit="min"),
        _c("leakage_pct", "double", "Systemic leakage of the first ILP", unit="%"),
        _c("wieberdink_grade", "string", "Worst Wieberdink regional toxicity over all ILPs",
           allowed=v.WIEBERDINK_GRADE),
        _c("ctcae_max_grade", "int", "Worst CTCAE grade of any adverse event (null when none recorded)"),
        _c("clavien_dindo_max_grade", "string", "Worst Clavien-Dindo grade (null when none recorded)",
           allowed=v.CLAVIEN_DINDO_GRADE),
        _c("radiological_response", "string", "Best RECIST response within 90 days of the first ILP",
           allowed=v.RECIST),
        _c("objective_response", "boolean", "Radiological response is CR or PR"),
        _c("pathological_response", "string", "Necrosis category of the resection specimen (prognostic factor)",
           allowed=v.PATHOLOGICAL_RESPONSE),
        _c("necrosis_pct", "double", "Necrosis of the resection specimen", unit="%"),
        _c("resected", "boolean", "Had a resection of the primary tumour after ILP", nullable=False),
        _c("resection_date", "date", "Date of the resection"),
        _c("limb_sparing_surgery", "boolean", "Resection kept the limb"),
        _c("amputation", "boolean", "Limb amputated at any time", nullable=False),
        _c("amputation_date", "date", "Date of the amputation"),
        _c("amputation_reason", "string", "Why the limb was amputated", allowed=v.AMPUTATION_REASON),
        _c("postoperative_radiotherapy", "boolean", "Radiotherapy after the resection", nullable=False),
        _c("exclusive_radiotherapy", "boolean", "Radiotherapy without resection", nullable=False),
        _c("systemic_therapy", "boolean", "Received systemic therapy", nullable=False),
        _c("local_relapse_date", "date", "First local relapse"),
        _c("distant_metastasis_date", "date", "First distant metastasis"),
        _c("metastasis_site", "string", "Organ of the first distant metastasis", allowed=v.METASTASIS_SITE),
        _c("death_date", "date", "Date of death"),
        _c("last_contact_date", "date", "Last follow-up: the later of last contact and death", nullable=False),
        _c("follow_up_months", "double", "Diagnosis to last follow-up", unit=MONTHS),
        _c("relapse_origin", "string", "Origin of RFS/LRFS/MFS for this patient (null: excluded by the rule)",
           allowed=("resection", "first_ilp")),
        *_endpoint("os", "Overall survival"),
        *_endpoint("rfs", "Recurrence-free survival (local or distant)"),
        *_endpoint("lrfs", "Local relapse-free survival"),
        *_endpoint("mfs", "Metastasis-free survival"),
        *_provenance(),
    ),
)

TABLES: tuple[Table, ...] = (PATIENTS, TUMOURS, PERFUSIONS, TOXICITIES, RESPONSES, TREATMENTS, EVENTS, COHORT)
BY_NAME = {t.name: t for t in TABLES}
