"""`cohort`: one analysis-ready row per patient, with the endpoints computed from their declarations.

Rules (the same as the ground truth's, and written in the data dictionary): the tumour is the patient's first
primary; ILP parameters are the first ILP's; toxicity is the worst grade in the scale's order; the radiological
response is the best RECIST within 90 days of the first ILP; last follow-up is the later of last contact and
death; endpoints follow `ilp.model.endpoints` (origin: first present origin column; event: earliest event column;
else censored at the follow-up end; excluded patients have null endpoints).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ilp.model import COHORT, Endpoint
from ilp.model import vocabulary as v
from ilp.model.dates import DAYS_PER_MONTH
from ilp.model.endpoints import RELAPSE_ORIGIN_LABEL


def _ordinal(values: tuple[str, ...]) -> Column:
    return F.create_map(*[F.lit(x) for n, g in enumerate(values) for x in (g, n)])


# A patient is a pseudonym at a centre: the same person treated at two centres has a row at each.
PATIENT = ["centre_id", "patient_id"]


def _first(rows: DataFrame, order: str, *columns: str) -> DataFrame:
    """Per patient, the columns of the row first by `order`."""
    window = Window.partitionBy(*PATIENT).orderBy(F.col(order).asc_nulls_last())
    return rows.withColumn("_n", F.row_number().over(window)).where("_n = 1").select(*PATIENT, *columns)


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


def build_cohort(tables: dict[str, DataFrame], endpoints: tuple[Endpoint, ...], run_id: str) -> DataFrame:
    patients, tumours, perfusions = tables["patients"], tables["tumours"], tables["perfusions"]
    toxicities, responses, treatments, events = (tables[n] for n in ("toxicities", "responses", "treatments",
                                                                     "events"))
    tumour = _first(tumours, "diagnosis_date", "diagnosis_date", "site", "subsite", "size_cm", "histology",
                    "histology_family", "fnclcc_grade", "unresectability_reason")
    first_ilp = perfusions.where("perfusion_number = 1").select(
        *PATIENT, F.col("perfusion_id").alias("first_perfusion_id"),
        F.col("perfusion_date").alias("first_ilp_date"),
        "ilp_level", "tnf_dose_mg", "melphalan_dose_mg_per_l", "max_temperature_c", "duration_min", "leakage_pct")
    count = perfusions.groupBy(*PATIENT).agg(F.count("*").cast("int").alias("ilp_count"))
    worst = toxicities.groupBy(*PATIENT).agg(*[
        F.max_by("grade", F.when(F.col("scale") == scale, F.try_element_at(_ordinal(grades), F.col("grade"))))
        .alias(scale) for scale, grades in v.GRADES_BY_SCALE.items()])
    window = responses.join(first_ilp.select(*PATIENT, "first_perfusion_id", "first_ilp_date"), PATIENT) \
        .where((F.col("kind") == "radiological") & (F.col("perfusion_id") == F.col("first_perfusion_id"))
               & (F.datediff("assessment_date", "first_ilp_date") <= 90))
    recist = window.groupBy(*PATIENT).agg(
        F.min_by("category", F.try_element_at(_ordinal(v.RECIST), F.col("category"))).alias("radiological_response"))
    pathology = _first(responses.where("kind = 'pathological'"), "assessment_date", "category", "necrosis_pct")
    resection = _first(treatments.where("kind = 'resection'"), "start_date", "start_date", "limb_sparing")
    amputation = _first(treatments.where("kind = 'amputation'"), "start_date", "start_date", "amputation_reason")
    therapies = treatments.groupBy(*PATIENT).agg(
        F.max(F.col("radiotherapy_setting") == "postoperative").alias("postoperative_radiotherapy"),
        F.max(F.col("radiotherapy_setting") == "exclusive").alias("exclusive_radiotherapy"),
        F.max(F.col("kind") == "systemic_therapy").alias("systemic_therapy"))
    metastasis = _first(events.where("kind = 'distant_metastasis'"), "event_date", "event_date", "metastasis_site")
    dated = events.groupBy(*PATIENT).agg(
        F.min(F.when(F.col("kind") == "local_relapse", F.col("event_date"))).alias("local_relapse_date"),
        F.min(F.when(F.col("kind") == "death", F.col("event_date"))).alias("death_date"),
        F.max(F.when(F.col("kind").isin("last_contact", "death"), F.col("event_date"))).alias("last_contact_date"))
    sources = (patients.select(*PATIENT, "source_resource_ids")
               .unionByName(tumours.select(*PATIENT, "source_resource_ids"))
               .unionByName(perfusions.select(*PATIENT, "source_resource_ids"))
               .unionByName(toxicities.select(*PATIENT, "source_resource_ids"))
               .unionByName(responses.select(*PATIENT, "source_resource_ids"))
               .unionByName(treatments.select(*PATIENT, "source_resource_ids"))
               .unionByName(events.select(*PATIENT, "source_resource_ids"))
               .groupBy(*PATIENT).agg(F.array_sort(F.array_distinct(F.flatten(F.collect_list(
                   "source_resource_ids")))).alias("source_resource_ids")))
    row = (patients.select(*PATIENT, "age_at_diagnosis", "sex", "bmi", "smoking", "hypertension", "dyslipidaemia")
           .join(tumour, PATIENT, "left").join(first_ilp, PATIENT, "left").join(count, PATIENT, "left")
           .join(worst, PATIENT, "left").join(recist, PATIENT, "left")
           .join(pathology.select(*PATIENT, F.col("category").alias("pathological_response"),
                                  F.col("necrosis_pct")), PATIENT, "left")
           .join(resection.select(*PATIENT, F.col("start_date").alias("resection_date"),
                                  F.col("limb_sparing").alias("limb_sparing_surgery")), PATIENT, "left")
           .join(amputation.select(*PATIENT, F.col("start_date").alias("amputation_date"), "amputation_reason"),
                 PATIENT, "left")
           .join(therapies, PATIENT, "left")
           .join(metastasis.select(*PATIENT, F.col("event_date").alias("distant_metastasis_date"),
                                   "metastasis_site"), PATIENT, "left")
           .join(dated, PATIENT, "left").join(sources, PATIENT, "left"))
    derived = row.select(
        "*", (F.col("age_at_diagnosis") > 65).alias("age_over_65"), (F.col("bmi") > 30).alias("bmi_over_30"),
        (F.col("size_cm") > 10).alias("size_over_10cm"),
        F.col("wieberdink").alias("wieberdink_grade"), F.col("ctcae").cast("int").alias("ctcae_max_grade"),
        F.col("clavien_dindo").alias("clavien_dindo_max_grade"),
        F.col("radiological_response").isin("CR", "PR").alias("objective_response"),
        F.col("resection_date").isNotNull().alias("resected"), F.col("amputation_date").isNotNull().alias("amputation"),
        _months(F.col("diagnosis_date"), F.col("last_contact_date")).alias("follow_up_months"))
    derived = derived.fillna(False, ["postoperative_radiotherapy", "exclusive_radiotherapy", "systemic_therapy"]) \
        .fillna(0, ["ilp_count"])
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
