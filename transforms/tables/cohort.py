"""`cohort`: one analysis-ready row per patient, with the endpoints computed from their declarations.

Rules (the same as the ground truth's, and written in the data dictionary): the tumour is the patient's first
primary; ILP parameters are the first ILP's; toxicity is the worst grade in the scale's order; the radiological
response is the best RECIST within 90 days of the first ILP; last follow-up is the later of last contact and
death; endpoints follow `foundation.model.endpoints` (origin: first present origin column; event: earliest event column;
else censored at the follow-up end; excluded patients have null endpoints). "First" is by date, a row without
one last, then by the row's key, so a tie is broken the same way on every run.

Why one pass: every table's rows go into one union, each as a struct column named after its table, and one
grouping per patient computes every fact ("first" is the minimum of a struct that starts with the order).
The earlier plan joined 13 per-patient frames, each a shuffle or broadcast of its own: most of the cohort's time.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from foundation.model import BY_NAME, COHORT, Endpoint
from foundation.model import vocabulary as v
from foundation.model.dates import DAYS_PER_MONTH
from foundation.model.endpoints import RELAPSE_ORIGIN_LABEL

# A patient is a pseudonym at a centre: the same person treated at two centres has a row at each.
PATIENT = ["centre_id", "patient_id"]
TUMOUR = ["diagnosis_date", "site", "subsite", "size_cm", "histology", "histology_family", "fnclcc_grade",
          "unresectability_reason"]
FIRST_ILP = ["ilp_level", "tnf_dose_mg", "melphalan_dose_mg_per_l", "max_temperature_c", "duration_min",
             "leakage_pct"]
# What the cohort takes of each table: the struct each row carries into the union.
FACTS = {
    "patients": ("patient", ["age_at_diagnosis", "sex", "bmi", "smoking", "hypertension", "dyslipidaemia"]),
    "tumours": ("tumour", ["tumour_id", *TUMOUR]),
    "perfusions": ("perfusion", ["perfusion_number", "perfusion_id", "perfusion_date", *FIRST_ILP]),
    "toxicities": ("toxicity", ["scale", "grade"]),
    "responses": ("response", ["kind", "assessment_date", "response_id", "perfusion_id", "category",
                               "necrosis_pct"]),
    "treatments": ("treatment", ["kind", "start_date", "treatment_id", "limb_sparing", "amputation_reason",
                                 "radiotherapy_setting"]),
    "events": ("event", ["kind", "event_date", "event_id", "metastasis_site"]),
}


def _ordinal(values: tuple[str, ...]) -> Column:
    return F.create_map(*[F.lit(x) for n, g in enumerate(values) for x in (g, n)])


def _first(table: str, where: Column, order: str, *columns: str) -> Column:
    """The `columns` (a struct) of the patient's first row of `table` that satisfies `where`, by `order` (rows
    without one last), then the row's key."""
    fact = F.col(FACTS[table][0])
    key = BY_NAME[table].key[1]
    ordered = F.struct(fact[order].isNull(), fact[order], fact[key],
                       F.struct(*[fact[c].alias(c) for c in columns]).alias("value"))
    return F.min(F.when(where, ordered))["value"]


def _months(start: Column, end: Column) -> Column:
    return F.datediff(end, start) / F.lit(DAYS_PER_MONTH)


def _endpoint(endpoint: Endpoint) -> tuple[Column, Column]:
    origin = F.coalesce(*[F.col(c) for c in endpoint.origins])
    event = F.least(*[F.col(c) for c in endpoint.events]) if len(endpoint.events) > 1 else F.col(endpoint.events[0])
    excluded = F.lit(False)
    for rule in endpoint.exclusions:
        condition = F.col(rule.column) == F.lit(rule.value)
        for column in rule.unless_present:
            condition = condition & F.col(column).isNull()
        excluded = excluded | F.coalesce(condition, F.lit(False))
    usable = origin.isNotNull() & ~excluded
    months = F.when(usable, _months(origin, F.coalesce(event, F.col(endpoint.follow_up_end))))
    return months, F.when(usable, event.isNotNull())


def _rows(tables: dict[str, DataFrame]) -> DataFrame:
    """Every table's rows, each as (patient, source ids, its struct); the other structs are null."""
    parts = [tables[name].select(*PATIENT, "source_resource_ids", F.struct(*columns).alias(struct))
             for name, (struct, columns) in FACTS.items()]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)


def _per_patient(rows: DataFrame) -> DataFrame:
    """One grouping: every per-patient fact the cohort row needs."""
    perfusion, toxicity, response = F.col("perfusion"), F.col("toxicity"), F.col("response")
    treatment, event = F.col("treatment"), F.col("event")
    radiological = F.struct(F.try_element_at(_ordinal(v.RECIST), response["category"]).alias("rank"),
                            response["category"].alias("category"), response["perfusion_id"].alias("perfusion_id"),
                            response["assessment_date"].alias("assessment_date"))
    return rows.groupBy(*PATIENT).agg(
        F.max("patient").alias("patient"),
        _first("tumours", F.col("tumour").isNotNull(), "diagnosis_date", *TUMOUR).alias("tumour"),
        F.max(F.when(perfusion["perfusion_number"] == 1, perfusion)).alias("first_ilp"),
        F.count("perfusion").cast("int").alias("ilp_count"),
        *[F.max_by(toxicity["grade"], F.when(toxicity["scale"] == scale, F.try_element_at(
            _ordinal(grades), toxicity["grade"]))).alias(scale) for scale, grades in v.GRADES_BY_SCALE.items()],
        F.collect_list(F.when((response["kind"] == "radiological") & radiological["rank"].isNotNull(), radiological))
        .alias("radiological"),
        _first("responses", response["kind"] == "pathological", "assessment_date", "category", "necrosis_pct")
        .alias("pathology"),
        _first("treatments", treatment["kind"] == "resection", "start_date", "start_date", "limb_sparing")
        .alias("resection"),
        _first("treatments", treatment["kind"] == "amputation", "start_date", "start_date", "amputation_reason")
        .alias("amputation"),
        F.max(treatment["radiotherapy_setting"] == "postoperative").alias("postoperative_radiotherapy"),
        F.max(treatment["radiotherapy_setting"] == "exclusive").alias("exclusive_radiotherapy"),
        F.max(treatment["kind"] == "systemic_therapy").alias("systemic_therapy"),
        _first("events", event["kind"] == "distant_metastasis", "event_date", "event_date", "metastasis_site")
        .alias("metastasis"),
        F.min(F.when(event["kind"] == "local_relapse", event["event_date"])).alias("local_relapse_date"),
        F.min(F.when(event["kind"] == "death", event["event_date"])).alias("death_date"),
        F.max(F.when(event["kind"].isin("last_contact", "death"), event["event_date"])).alias("last_contact_date"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("source_resource_ids")))).alias("source_resource_ids"),
    ).where(F.col("patient").isNotNull())


def _facts(per_patient: DataFrame) -> DataFrame:
    """The per-patient facts as the cohort's columns (the best RECIST of the first ILP within 90 days)."""
    first_ilp = F.col("first_ilp")
    in_window = F.filter("radiological", lambda r: (r["perfusion_id"] == first_ilp["perfusion_id"]) & (
        F.datediff(r["assessment_date"], first_ilp["perfusion_date"]) <= 90))
    return per_patient.select(
        *PATIENT, "patient.*", "tumour.*",
        first_ilp["perfusion_id"].alias("first_perfusion_id"), first_ilp["perfusion_date"].alias("first_ilp_date"),
        *[first_ilp[c].alias(c) for c in FIRST_ILP], "ilp_count", *v.GRADES_BY_SCALE,
        F.array_min(in_window)["category"].alias("radiological_response"),
        F.col("pathology.category").alias("pathological_response"), F.col("pathology.necrosis_pct"),
        F.col("resection.start_date").alias("resection_date"),
        F.col("resection.limb_sparing").alias("limb_sparing_surgery"),
        F.col("amputation.start_date").alias("amputation_date"), F.col("amputation.amputation_reason"),
        "postoperative_radiotherapy", "exclusive_radiotherapy", "systemic_therapy",
        F.col("metastasis.event_date").alias("distant_metastasis_date"), F.col("metastasis.metastasis_site"),
        "local_relapse_date", "death_date", "last_contact_date", "source_resource_ids")


def build_cohort(tables: dict[str, DataFrame], endpoints: tuple[Endpoint, ...], run_id: str) -> DataFrame:
    row = _facts(_per_patient(_rows(tables)))
    derived = row.select(
        "*", (F.col("age_at_diagnosis") > 65).alias("age_over_65"), (F.col("bmi") > 30).alias("bmi_over_30"),
        (F.col("size_cm") > 10).alias("size_over_10cm"),
        F.col("wieberdink").alias("wieberdink_grade"), F.col("ctcae").cast("int").alias("ctcae_max_grade"),
        F.col("clavien_dindo").alias("clavien_dindo_max_grade"),
        F.col("radiological_response").isin("CR", "PR").alias("objective_response"),
        F.col("resection_date").isNotNull().alias("resected"), F.col("amputation_date").isNotNull().alias("amputation"),
        _months(F.col("diagnosis_date"), F.col("last_contact_date")).alias("follow_up_months"))
    derived = derived.fillna(False, ["postoperative_radiotherapy", "exclusive_radiotherapy", "systemic_therapy"])
    outputs = []
    for endpoint in endpoints:
        months, event = _endpoint(endpoint)
        outputs += [months.alias(f"{endpoint.name}_months"), event.alias(f"{endpoint.name}_event")]
    relapse = next(e for e in endpoints if e.name == "rfs")
    origin_label = F.lit(None).cast("string")
    for column in reversed(relapse.origins):
        origin_label = F.when(F.col(column).isNotNull(), F.lit(RELAPSE_ORIGIN_LABEL[column])).otherwise(origin_label)
    with_endpoints = derived.select("*", *outputs,
                                    F.when(_endpoint(relapse)[0].isNotNull(), origin_label).alias("relapse_origin"))
    return with_endpoints.select(
        *[c for c in COHORT.column_names if c not in ("centre_id", "run_id", "source_resource_ids")],
        "centre_id", "source_resource_ids", F.lit(run_id).alias("run_id"))
