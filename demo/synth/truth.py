"""The ground truth: the canonical rows an ideal pipeline recovers from exactly the FHIR that was written.

Dates are the ones the pipeline can recover (partial dates completed by the model's rule, with the imputed flag);
amounts are in canonical units as the centre's own numbers give them. Keys are source identities, not pseudonyms:
`patient_id` is the patient's national identifier (`system|value`) and every other key is the reference of the
resource the row comes from (`Procedure/<id>`), with `#<kind>` where one resource yields several rows (the death
on the Patient). Pseudonymise them with the consortium's key before comparing with pipeline output.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from demo.synth.case import PatientCase
from demo.synth.fhir import NATIONAL_ID_SYSTEM, Rendered, StandardRenderer
from foundation.model import DEFAULT_ENDPOINTS
from foundation.model import vocabulary as v
from foundation.model.dates import completed_years, months_between, parse_fhir_date
from foundation.model.endpoints import RELAPSE_ORIGIN_LABEL
from foundation.terminology import valueset

Row = dict[str, Any]
RUN_ID = "ground-truth"
RELAPSE_ENDPOINT = next(e for e in DEFAULT_ENDPOINTS if e.name == "rfs")


class TruthBuilder:
    """Builds every canonical table's rows for one patient."""

    def __init__(self, renderer: StandardRenderer) -> None:
        self.renderer = renderer

    def rows(self, case: PatientCase, rendered: Rendered) -> dict[str, list[Row]]:
        self.case, self.rendered = case, rendered
        self.patient_id = f"{NATIONAL_ID_SYSTEM}|{case.national_id}"
        tables = {"patients": [self.patients()], "tumours": [self.tumours()],
                  "perfusions": [self.perfusion(p.number) for p in case.perfusions],
                  "toxicities": [self.toxicity(n) for n in range(len(case.toxicities))],
                  "responses": self.responses(), "treatments": self.treatments(), "events": self.events()}
        tables["cohort"] = [self.cohort(tables)]
        return tables

    # ---- helpers --------------------------------------------------------------------------------------------
    def date(self, name: str, day: date) -> tuple[date, bool]:
        return parse_fhir_date(self.renderer.written(self.case, name, day))

    def provenance(self, row_key: str, **row: Any) -> Row:
        sources = self.rendered.sources[row_key]
        row.update(self.rendered.written.get(row_key, {}))
        return {"patient_id": self.patient_id, **row, "centre_id": self.case.centre_id,
                "source_resource_ids": sorted(sources), "run_id": RUN_ID}

    def key(self, row_key: str, fragment: str = "") -> str:
        return self.rendered.sources[row_key][0] + (f"#{fragment}" if fragment else "")

    # ---- tables ---------------------------------------------------------------------------------------------
    def patients(self) -> Row:
        c = self.case
        born, _ = self.date("birth", c.birth)
        diagnosed, _ = self.date("diagnosis", c.diagnosis)
        return self.provenance("patient", birth_year=born.year, age_at_diagnosis=completed_years(born, diagnosed),
                               sex=c.sex, bmi=c.bmi, smoking=c.smoking, hypertension=c.hypertension,
                               dyslipidaemia=c.dyslipidaemia)

    def tumours(self) -> Row:
        c = self.case
        diagnosed, imputed = self.date("diagnosis", c.diagnosis)
        return self.provenance(
            "tumour", tumour_id=self.key("tumour"), diagnosis_date=diagnosed, diagnosis_date_imputed=imputed,
            site=c.site, subsite=c.subsite, laterality=c.laterality, histology=c.histology,
            histology_family=v.HISTOLOGY_FAMILY[c.histology],
            morphology_code=valueset("histology").primary(c.histology).code,
            fnclcc_grade=int(c.grade) if c.grade else None, size_cm=c.size_cm,
            unresectability_reason=c.unresectability, facts_linked_by_subject=[])

    def perfusion(self, number: int) -> Row:
        p = self.case.perfusions[number - 1]
        return self.provenance(
            f"perfusion-{number}", perfusion_id=self.key(f"perfusion-{number}"), tumour_id=self.key("tumour"),
            perfusion_date=p.day, perfusion_date_imputed=False, perfusion_number=number, site=self.case.site,
            ilp_level=p.level, tnf_dose_mg=p.tnf_mg, melphalan_dose_mg_per_l=p.melphalan_mg_per_l,
            melphalan_total_mg=None, limb_volume_l=None, max_temperature_c=p.temperature_c,
            duration_min=p.duration_min, leakage_pct=p.leakage_pct, parts_linked_by_date=[])

    def toxicity(self, n: int) -> Row:
        t = self.case.toxicities[n]
        return self.provenance(
            f"toxicity-{n}", toxicity_id=self.key(f"toxicity-{n}"),
            perfusion_id=self.key(f"perfusion-{t.perfusion}") if t.perfusion else None, scale=t.scale,
            grade=t.grade, grade_rank=v.GRADE_RANK[t.scale][t.grade], ctcae_term=t.term, onset_date=t.day)

    def responses(self) -> list[Row]:
        rows = [self.provenance(f"response-{p.number}-{k}", response_id=self.key(f"response-{p.number}-{k}"),
                                perfusion_id=self.key(f"perfusion-{p.number}"), kind="radiological",
                                assessment_date=day, category=category, necrosis_pct=None)
                for p in self.case.perfusions for k, (day, category) in enumerate(p.recist, start=1)]
        if self.case.resection and self.case.necrosis_pct is not None:
            rows.append(self.provenance(
                "response-path", response_id=self.key("response-path"), perfusion_id=self.key("perfusion-1"),
                kind="pathological", assessment_date=self.case.resection,
                category=v.pathological_category(self.case.necrosis_pct), necrosis_pct=self.case.necrosis_pct))
        return rows

    def treatments(self) -> list[Row]:
        c = self.case
        empty: Row = {"end_date": None, "limb_sparing": None, "amputation_reason": None,
                      "radiotherapy_setting": None}
        rows: list[Row] = []
        if c.resection:
            rows.append({**empty, "kind": "resection", "start_date": c.resection, "limb_sparing": True})
        if c.amputation:
            rows.append({**empty, "kind": "amputation", "start_date": c.amputation[0],
                         "amputation_reason": c.amputation[1]})
        if c.radiotherapy:
            setting = "postoperative" if c.resection else "exclusive"
            rows.append({**empty, "kind": "radiotherapy", "start_date": c.radiotherapy[0],
                         "end_date": c.radiotherapy[1], "radiotherapy_setting": setting})
        if c.systemic:
            rows.append({**empty, "kind": "systemic_therapy", "start_date": c.systemic[0], "end_date": c.systemic[1]})
        return [self.provenance(str(r["kind"]), treatment_id=self.key(str(r["kind"])), start_date_imputed=False, **r)
                for r in rows]

    def events(self) -> list[Row]:
        c = self.case
        found: list[tuple[str, str, date, str | None]] = []
        if c.local_relapse:
            found.append(("local_relapse", "local_relapse", c.local_relapse, None))
        if c.metastasis:
            found.append(("metastasis", "distant_metastasis", c.metastasis[0], c.metastasis[1]))
        if c.death:
            found.append(("death", "death", c.death, None))
        found.append(("last_contact", "last_contact", c.last_contact, None))
        rows = []
        for row_key, kind, day, site in found:
            when, imputed = self.date(row_key, day)
            event_id = self.key(row_key, "death" if kind == "death" else "")
            rows.append(self.provenance(row_key, event_id=event_id, kind=kind, event_date=when,
                                        event_date_imputed=imputed, metastasis_site=site))
        return rows

    def cohort(self, tables: dict[str, list[Row]]) -> Row:
        patient, tumour = tables["patients"][0], tables["tumours"][0]
        first = tables["perfusions"][0]
        events = {e["kind"]: e for e in tables["events"]}
        treatments = {t["kind"]: t for t in tables["treatments"]}
        toxicities = tables["toxicities"]

        def worst(scale: str) -> str | None:
            """The most severe grade: the latest in the scale's order (Clavien-Dindo IIIb beats IIIa)."""
            graded = [t["grade"] for t in toxicities if t["scale"] == scale]
            return max(graded, key=v.GRADES_BY_SCALE[scale].index) if graded else None

        window = [r["category"] for r in tables["responses"]
                  if r["kind"] == "radiological" and r["perfusion_id"] == first["perfusion_id"]
                  and (r["assessment_date"] - first["perfusion_date"]).days <= 90]
        recist = v.best_recist(window)
        path = next((r for r in tables["responses"] if r["kind"] == "pathological"), None)
        resection, amputation = treatments.get("resection"), treatments.get("amputation")
        rt_setting = treatments["radiotherapy"]["radiotherapy_setting"] if "radiotherapy" in treatments else None
        death = events.get("death")
        last = max(d for d in (events["last_contact"]["event_date"], death and death["event_date"]) if d)
        metastasis = events.get("distant_metastasis")
        ctcae = worst("ctcae")
        row: Row = {
            "age_at_diagnosis": patient["age_at_diagnosis"], "age_over_65": patient["age_at_diagnosis"] > 65,
            "sex": patient["sex"], "bmi": patient["bmi"], "bmi_over_30": patient["bmi"] > 30,
            "smoking": patient["smoking"], "hypertension": patient["hypertension"],
            "dyslipidaemia": patient["dyslipidaemia"], "diagnosis_date": tumour["diagnosis_date"],
            "site": tumour["site"], "subsite": tumour["subsite"], "size_cm": tumour["size_cm"],
            "size_over_10cm": tumour["size_cm"] > 10, "histology": tumour["histology"],
            "histology_family": tumour["histology_family"], "fnclcc_grade": tumour["fnclcc_grade"],
            "unresectability_reason": tumour["unresectability_reason"],
            "ilp_count": len(tables["perfusions"]), "first_ilp_date": first["perfusion_date"],
            **{k: first[k] for k in ("ilp_level", "tnf_dose_mg", "melphalan_dose_mg_per_l", "max_temperature_c",
                                     "duration_min", "leakage_pct")},
            "wieberdink_grade": worst("wieberdink"), "ctcae_max_grade": int(ctcae) if ctcae else None,
            "clavien_dindo_max_grade": worst("clavien_dindo"),
            "radiological_response": recist, "objective_response": recist in ("CR", "PR") if recist else None,
            "pathological_response": path and path["category"], "necrosis_pct": path and path["necrosis_pct"],
            "resected": resection is not None, "resection_date": resection and resection["start_date"],
            "limb_sparing_surgery": resection and resection["limb_sparing"],
            "amputation": amputation is not None, "amputation_date": amputation and amputation["start_date"],
            "amputation_reason": amputation and amputation["amputation_reason"],
            "postoperative_radiotherapy": rt_setting == "postoperative",
            "exclusive_radiotherapy": rt_setting == "exclusive",
            "systemic_therapy": "systemic_therapy" in treatments,
            "local_relapse_date": events["local_relapse"]["event_date"] if "local_relapse" in events else None,
            "distant_metastasis_date": metastasis and metastasis["event_date"],
            "metastasis_site": metastasis and metastasis["metastasis_site"],
            "death_date": death and death["event_date"], "last_contact_date": last,
            "follow_up_months": months_between(tumour["diagnosis_date"], last),
        }
        for endpoint in DEFAULT_ENDPOINTS:
            row[f"{endpoint.name}_months"], row[f"{endpoint.name}_event"] = endpoint.evaluate(row)
        origin = RELAPSE_ENDPOINT.origin_kind(row)
        row["relapse_origin"] = RELAPSE_ORIGIN_LABEL.get(origin) if origin else None
        sources = sorted({s for rows in tables.values() for r in rows for s in r["source_resource_ids"]})
        return {"patient_id": self.patient_id, **row, "centre_id": self.case.centre_id,
                "source_resource_ids": sources, "run_id": RUN_ID}

