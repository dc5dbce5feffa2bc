"""Render a simulated patient as FHIR R4 resources in the standard dialect (mCODE and the domain guide).

`StandardRenderer` writes each fact in one method; the other dialects (demo.synth.dialects) override only the
methods where their centre writes things differently. Besides the resources, rendering returns `sources`: for
each canonical row, the resources it is derived from, first the one that keys it. The ground truth reads that
map, so it never needs to know a dialect's habits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from demo.synth.case import PatientCase, Perfusion, Toxicity
from demo.synth.ids import resource_id
from demo.synth.profiles import CentreProfile
from foundation.terminology import BASE_URL, Coding, valueset

Resource = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
NATIONAL_ID_SYSTEM = f"{BASE_URL}/sid/synthetic-national-id"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LIMB_SPARING_URL = f"{BASE_URL}/StructureDefinition/limb-sparing"
ILP_LEVEL_URL = f"{BASE_URL}/StructureDefinition/ilp-level"


@dataclass
class Rendered:
    resources: list[Resource] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    # Canonical values a dialect wrote in a form the truth must follow (e.g. melphalan as total mg and volume).
    written: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, resource: Resource, *row_keys: str) -> None:
        """Keep a resource and record it as a source of the given canonical rows."""
        self.resources.append(resource)
        ref = f"{resource['resourceType']}/{resource['id']}"
        for key in row_keys:
            self.sources.setdefault(key, []).append(ref)


class StandardRenderer:
    """Standard codes, canonical units, full dates, relative references: how the domain guide says to do it."""

    dialect = "standard"

    def __init__(self, profile: CentreProfile, seed: int) -> None:
        self.profile = profile
        self.seed = seed
        self.meta = {"versionId": "1", "lastUpdated": f"{profile.cutoff.isoformat()}T12:00:00Z"}

    def conceptmap(self) -> dict[str, Any] | None:
        """The ConceptMap the centre's local codes need, if it has any."""
        return None

    def views(self) -> dict[str, dict[str, str]]:
        """The view overrides (view -> column -> FHIRPath) the centre's configuration needs, if any."""
        return {}

    # ---- how this centre writes codes, references, quantities and dates -----------------------------------
    def codings(self, standard: Coding) -> list[dict[str, str]]:
        return [standard.as_fhir()]

    def concept(self, valueset_name: str, value: str, every_coding: bool = False) -> dict[str, Any]:
        codings = valueset(valueset_name).codings[value]
        chosen = codings if every_coding else codings[:1]
        return {"coding": [c for standard in chosen for c in self.codings(standard)]}

    def reference(self, resource_type: str, rid: str) -> dict[str, str]:
        return {"reference": f"{resource_type}/{rid}"}

    def quantity(self, value: float, unit: str) -> dict[str, Any]:
        return {"value": value, "unit": unit, "system": UCUM, "code": unit}

    def written(self, case: PatientCase, name: str, day: date) -> str:
        """A date as the centre writes it (full, or partial where its precision says so)."""
        precision = case.precision.get(name)
        return {"year": day.strftime("%Y"), "month": day.strftime("%Y-%m")}.get(precision or "", day.isoformat())

    def instant(self, day: date, hour: int, minutes: float = 0) -> str:
        moment = datetime(day.year, day.month, day.day, hour) + timedelta(minutes=minutes)
        offset = "+02:00" if 4 <= day.month <= 10 else "+01:00"
        return moment.isoformat() + offset

    def degrade(self, case: PatientCase) -> None:
        """Decide which dates the centre records only partly (none, here)."""

    def transaction_entry(self, resource: Resource) -> dict[str, Any]:
        """A transaction Bundle entry that loads the resource under its own id (PUT), for a FHIR server."""
        kind, rid = resource["resourceType"], resource["id"]
        return {"fullUrl": f"urn:uuid:{rid}", "resource": resource,
                "request": {"method": "PUT", "url": f"{kind}/{rid}"}}

    # ---- rendering -----------------------------------------------------------------------------------------
    def id(self, case: PatientCase, slot: str) -> str:
        return resource_id(self.seed, case.centre_id, case.index, slot)

    def render(self, case: PatientCase) -> Rendered:
        self.degrade(case)
        out = Rendered()
        patient = self.id(case, "patient")
        condition = self.id(case, "condition")
        subject = self.reference("Patient", patient)
        out.add(self.patient(case, patient), "patient", "death")
        out.add(self.condition(case, condition, subject), "tumour")
        self.tumour_facts(case, out, subject, condition)
        self.patient_facts(case, out, subject)
        for perfusion in case.perfusions:
            self.perfusion(case, out, subject, condition, perfusion)
        self.treatments(case, out, subject, condition)
        for n, toxicity in enumerate(case.toxicities):
            self.toxicity(case, out, subject, n, toxicity)
        self.events(case, out, subject, condition)
        return out

    def base(self, resource_type: str, rid: str, subject: dict[str, str] | None = None, **fields: Any) -> Resource:
        resource: Resource = {"resourceType": resource_type, "id": rid, "meta": dict(self.meta)}
        if subject is not None:
            resource["subject"] = subject
        resource.update(fields)
        return resource

    def observation(self, case: PatientCase, slot: str, subject: dict[str, str], code: dict[str, Any],
                    when: str, **fields: Any) -> Resource:
        return self.base("Observation", self.id(case, slot), subject, status="final", code=code,
                         effectiveDateTime=when, **fields)

    def patient(self, case: PatientCase, rid: str) -> Resource:
        resource = self.base(
            "Patient", rid,
            identifier=[
                {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                      "code": "MR"}]},
                 "system": f"{BASE_URL}/sid/{case.centre_id}-mrn", "value": case.mrn},
                {"use": "official", "system": NATIONAL_ID_SYSTEM, "value": case.national_id},
            ],
            name=[{"family": case.family, "given": [case.given]}], gender=case.sex,
            birthDate=self.written(case, "birth", case.birth),
            address=[{"city": self.profile.name.split()[0], "country": "XX"}],
        )
        if case.death:
            resource["deceasedDateTime"] = case.death.isoformat()
        return resource

    def body_site(self, case: PatientCase) -> list[dict[str, Any]]:
        limb = self.concept("site", case.site)
        limb["extension"] = [{"url": f"{MCODE}/mcode-laterality-qualifier",
                              "valueCodeableConcept": self.concept("laterality", case.laterality)}]
        return [limb, self.concept("subsite", case.subsite)]

    def condition(self, case: PatientCase, rid: str, subject: dict[str, str]) -> Resource:
        upper = case.site == "upper_limb"
        if case.histology == "mpnst":
            code = f"C47.{1 if upper else 2}"
        else:
            code = f"C49.{1 if upper else 2}{1 if case.laterality == 'right' else 2}"
        display = next(c.display for c in valueset("condition").codings["primary_sarcoma"] if c.code == code)
        return self.base(
            "Condition", rid, subject,
            extension=[{"url": f"{MCODE}/mcode-histology-morphology-behavior",
                        "valueCodeableConcept": self.concept("histology", case.histology)}],
            clinicalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        "code": "active"}]},
            verificationStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                            "code": "confirmed"}]},
            category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                   "code": "problem-list-item"}]}],
            code={"coding": self.codings(Coding(ICD10, code, display))},
            bodySite=self.body_site(case),
            onsetDateTime=self.written(case, "diagnosis", case.diagnosis),
        )

    def tumour_size(self, case: PatientCase) -> dict[str, Any]:
        return self.quantity(case.size_cm, "cm")

    def size_observation(self, case: PatientCase, subject: dict[str, str], when: str,
                         focus: list[dict[str, str]]) -> Resource:
        return self.observation(
            case, "size", subject, self.concept("observation", "tumour_size"), when, focus=focus,
            method={"coding": [{"system": "http://snomed.info/sct", "code": "113091000",
                                "display": "Magnetic resonance imaging"}]},
            component=[{"code": self.concept("observation", "tumour_longest_dimension"),
                        "valueQuantity": self.tumour_size(case)}])

    def tumour_facts(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str) -> None:
        focus = [self.reference("Condition", condition)]
        when = self.written(case, "diagnosis", case.diagnosis)
        out.add(self.size_observation(case, subject, when, focus), "tumour")
        if case.grade:
            out.add(self.observation(case, "grade", subject, self.concept("observation", "histologic_grade"), when,
                                     focus=focus, valueCodeableConcept=self.concept("fnclcc-grade", case.grade,
                                                                                    every_coding=True)), "tumour")
        out.add(self.observation(case, "unresectability", subject,
                                 self.concept("observation", "unresectability_reason"), when, focus=focus,
                                 valueCodeableConcept=self.concept("unresectability-reason", case.unresectability)),
                "tumour")

    def anthropometry(self, case: PatientCase, out: Rendered, subject: dict[str, str], when: str) -> None:
        out.add(self.observation(case, "bmi", subject, self.concept("observation", "bmi"), when,
                                 valueQuantity=self.quantity(case.bmi, "kg/m2")), "patient")

    def comorbidity(self, case: PatientCase, out: Rendered, subject: dict[str, str], name: str, when: str) -> None:
        out.add(self.observation(case, name, subject, self.concept("observation", "comorbidity"), when,
                                 valueCodeableConcept=self.concept("condition", name)), "patient")

    def patient_facts(self, case: PatientCase, out: Rendered, subject: dict[str, str]) -> None:
        when = case.diagnosis.isoformat()
        self.anthropometry(case, out, subject, when)
        smoking = self.concept("smoking", "smoker" if case.smoking else "never_smoker")
        out.add(self.observation(case, "smoking", subject, self.concept("observation", "smoking_status"), when,
                                 valueCodeableConcept=smoking), "patient")
        for name in ("hypertension", "dyslipidaemia"):
            if getattr(case, name):
                self.comorbidity(case, out, subject, name, when)

    # ---- the perfusion -------------------------------------------------------------------------------------
    def ilp_level(self, p: Perfusion) -> dict[str, Any]:
        """The extension saying at which level the limb was perfused."""
        return {"url": ILP_LEVEL_URL, "valueCoding": self.concept("ilp-level", p.level)["coding"][0]}

    def limb_sparing(self, spared: bool) -> dict[str, Any]:
        """The extension saying whether a resection spared the limb."""
        return {"url": LIMB_SPARING_URL, "valueBoolean": spared}

    def drug_part_of(self, out: Rendered, row: str, drug_id: str, part_of: list[dict[str, str]]) -> dict[str, Any]:
        """How a drug given during the ILP points at it."""
        return {"partOf": part_of}

    def timing(self, case: PatientCase, p: Perfusion) -> dict[str, Any]:
        return {"performedPeriod": {"start": self.instant(p.day, p.start_hour),
                                    "end": self.instant(p.day, p.start_hour, p.duration_min)}}

    def drug_doses(self, case: PatientCase, out: Rendered, p: Perfusion, procedure: str,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """TNF dose, melphalan dose, and the melphalan normalisation-basis extension."""
        basis = [{"url": f"{MCODE}/mcode-normalization-basis",
                  "valueCodeableConcept": {"coding": self.codings(Coding(
                      valueset("observation").primary("limb_volume").system, "limb-volume",
                      "Limb volume (melphalan normalisation basis)"))}}]
        return self.quantity(p.tnf_mg, "mg"), self.quantity(p.melphalan_mg_per_l, "mg/L"), basis

    def perfusion(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str,
                  p: Perfusion) -> None:
        row = f"perfusion-{p.number}"
        slot = f"ilp-{p.number}"
        rid = self.id(case, slot)
        procedure = self.base("Procedure", rid, subject, status="completed", extension=[self.ilp_level(p)],
                              code=self.concept("procedure", "ilp"), bodySite=self.body_site(case)[:1],
                              reasonReference=[self.reference("Condition", condition)], **self.timing(case, p))
        out.add(procedure, row)
        part_of = [self.reference("Procedure", rid)]
        start = self.instant(p.day, p.start_hour)
        tnf, melphalan, basis = self.drug_doses(case, out, p, rid)
        for drug, dose, minutes, extension in (("tnf", tnf, 0, []), ("melphalan", melphalan, 10, basis)):
            drug_id = self.id(case, f"{slot}-{drug}")
            admin = self.base("MedicationAdministration", drug_id, subject,
                              status="completed", medicationCodeableConcept=self.concept("medication", drug),
                              effectiveDateTime=self.instant(p.day, p.start_hour, minutes),
                              **self.drug_part_of(out, row, drug_id, part_of),
                              reasonReference=[self.reference("Condition", condition)], dosage={"dose": dose})
            if extension:
                admin["extension"] = extension
            out.add(admin, row)
        measured = (("temperature", "perfusate_temperature", self.quantity(p.temperature_c, "Cel")),
                    ("leakage", "leakage", self.quantity(p.leakage_pct, "%")))
        for slot_name, code, quantity in measured:
            out.add(self.observation(case, f"{slot}-{slot_name}", subject, self.concept("observation", code), start,
                                     partOf=part_of, valueQuantity=quantity), row)
        for k, (day, category) in enumerate(p.recist, start=1):
            out.add(self.observation(case, f"{slot}-recist-{k}", subject, self.concept("observation", "recist"),
                                     day.isoformat(), focus=part_of,
                                     valueCodeableConcept=self.concept("recist", category)),
                    f"response-{p.number}-{k}")

    # ---- toxicity, treatment, follow-up ---------------------------------------------------------------------
    def toxicity(self, case: PatientCase, out: Rendered, subject: dict[str, str], n: int, t: Toxicity) -> None:
        valueset_name = {"wieberdink": "wieberdink-grade", "ctcae": "ctcae-grade",
                         "clavien_dindo": "clavien-dindo-grade"}[t.scale]
        code = self.concept("observation", {"ctcae": "ctcae_adverse_event"}.get(t.scale, t.scale))
        target = self.id(case, f"ilp-{t.perfusion}") if t.perfusion else self.id(case, "resection")
        fields: dict[str, Any] = {"partOf": [self.reference("Procedure", target)],
                                  "valueCodeableConcept": self.concept(valueset_name, t.grade)}
        if t.term:
            fields["component"] = [{"code": self.concept("observation", "ctcae_term"),
                                    "valueCodeableConcept": self.concept("ctcae-term", t.term)}]
        out.add(self.observation(case, f"toxicity-{n}", subject, code, t.day.isoformat(), **fields),
                f"toxicity-{n}")

    def procedure(self, case: PatientCase, slot: str, subject: dict[str, str], code: dict[str, Any],
                  **fields: Any) -> Resource:
        return self.base("Procedure", self.id(case, slot), subject, status="completed", code=code, **fields)

    def treatments(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str) -> None:
        reason = [self.reference("Condition", condition)]
        if case.resection:
            out.add(self.procedure(case, "resection", subject, self.concept("procedure", "resection"),
                                   extension=[self.limb_sparing(True)],
                                   performedDateTime=case.resection.isoformat(),
                                   bodySite=self.body_site(case)[:1], reasonReference=reason), "resection")
            specimen = [self.reference("Procedure", self.id(case, "resection"))]
            out.add(self.observation(case, "necrosis", subject, self.concept("observation", "necrosis"),
                                     case.resection.isoformat(), focus=specimen,
                                     valueQuantity=self.quantity(case.necrosis_pct or 0.0, "%")), "response-path")
        if case.amputation:
            day, why = case.amputation
            out.add(self.procedure(case, "amputation", subject, self.concept("procedure", "amputation"),
                                   performedDateTime=day.isoformat(), bodySite=self.body_site(case)[:1],
                                   reasonCode=[self.concept("amputation-reason", why)], reasonReference=reason),
                    "amputation")
        for kind, span in (("radiotherapy", case.radiotherapy), ("systemic_therapy", case.systemic)):
            if span:
                out.add(self.procedure(case, kind, subject, self.concept("procedure", kind), reasonReference=reason,
                                       performedPeriod={"start": span[0].isoformat(), "end": span[1].isoformat()}),
                        kind)

    def local_relapse(self, case: PatientCase, subject: dict[str, str], condition: str, day: date) -> Resource:
        status = self.concept("disease-status", "worsened")
        status["coding"] += self.concept("disease-status", "local_recurrence")["coding"]
        return self.observation(case, "local-relapse", subject, self.concept("observation", "disease_status"),
                                self.written(case, "local_relapse", day),
                                focus=[self.reference("Condition", condition)], valueCodeableConcept=status)

    def events(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str) -> None:
        if case.local_relapse:
            out.add(self.local_relapse(case, subject, condition, case.local_relapse), "local_relapse")
        if case.metastasis:
            day, site = case.metastasis
            out.add(self.base(
                "Condition", self.id(case, "metastasis"), subject,
                extension=[{"url": f"{MCODE}/mcode-related-primary-cancer-condition",
                            "valueReference": self.reference("Condition", condition)}],
                clinicalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                            "code": "active"}]},
                code=self.concept("condition", "distant_metastasis"), bodySite=[self.concept("metastasis-site", site)],
                onsetDateTime=self.written(case, "metastasis", day)), "metastasis")
        contact = case.last_contact.isoformat()
        out.add(self.observation(case, "last-contact", subject, self.concept("observation", "last_contact"), contact,
                                 valueDateTime=contact), "last_contact")
