"""How the other demo centres write the same facts: local codes, and a centre that differs in nearly everything.

- `LocalCodesRenderer`: every coding in the centre's own code system; only its ConceptMap (which the generator
  writes beside the data) translates them.
- `DivergentRenderer`: standard codes, but sizes in mm, TNF in ug, melphalan as total mg plus the limb volume,
  partial dates, absolute references, the perfusion time as an Observation, BMI as weight and height,
  comorbidities and local relapse as Conditions.
- `OwnExtensionsRenderer`: keeps elements where the project's views do not look: ILP level and limb sparing in
  its own extensions (CodeableConcept values), tumour size as a value in mm without focus, drugs without partOf
  (given on the ILP's day), and the kind of progression in `Observation.method` with a local code. Only its
  configuration's view overrides and its ConceptMap recover them (the sizes and drugs by the linking rules).
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import date
from typing import Any

from demo.synth.case import PatientCase, Perfusion
from demo.synth.fhir import Rendered, Resource, StandardRenderer
from demo.synth.profiles import CentreProfile
from foundation.model.dates import parse_fhir_date
from foundation.terminology import Coding, build_conceptmap, valuesets


class LocalCodesRenderer(StandardRenderer):
    dialect = "local-codes"

    def __init__(self, profile: CentreProfile, seed: int) -> None:
        super().__init__(profile, seed)
        self.system = f"http://{profile.centre_id}.example.org/fhir/CodeSystem/local-codes"

    def local(self, standard: Coding) -> Coding:
        digest = hashlib.sha256(f"{standard.system}|{standard.code}".encode()).hexdigest()
        return Coding(self.system, f"{self.profile.centre_id[:1].upper()}{int(digest[:8], 16) % 10**6:06d}")

    def codings(self, standard: Coding) -> list[dict[str, str]]:
        return [self.local(standard).as_fhir()]

    def conceptmap(self) -> dict[str, Any]:
        """The ConceptMap from this centre's codes to every standard coding it replaces."""
        standards = dict.fromkeys(c for vs in valuesets().values() for cs in vs.codings.values() for c in cs)
        return build_conceptmap(f"{self.profile.centre_id}-local-to-canonical",
                                f"{self.profile.name}: local codes to canonical codings",
                                [(self.local(c), c) for c in standards])


class DivergentRenderer(StandardRenderer):
    dialect = "divergent"

    def __init__(self, profile: CentreProfile, seed: int) -> None:
        super().__init__(profile, seed)
        self.base_url = f"https://fhir.{profile.centre_id}.example.org/fhir"

    def reference(self, resource_type: str, rid: str) -> dict[str, str]:
        return {"reference": f"{self.base_url}/{resource_type}/{rid}"}

    def transaction_entry(self, resource: Resource) -> dict[str, Any]:
        """References inside the Bundle point at entries' `urn:uuid` fullUrls, which the server resolves on load."""
        return super().transaction_entry(self._to_urn(resource))

    def _to_urn(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._to_urn(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: self._to_urn(v) for k, v in node.items()}
        reference = out.get("reference")
        if isinstance(reference, str) and reference.startswith(self.base_url):
            out["reference"] = "urn:uuid:" + reference.rsplit("/", 1)[1]
        return out

    def degrade(self, case: PatientCase) -> None:
        """Birth dates as years, and some diagnosis and relapse dates as months, where that keeps events in order."""
        rng = random.Random(f"{self.seed}/{case.centre_id}/{case.index}/dialect")
        if rng.random() < 0.25:
            case.precision["birth"] = "year"
        origin = case.resection or case.perfusions[0].day
        ceiling = min(d for d in (case.death, case.last_contact) if d is not None)
        amputated = case.amputation[0] if case.amputation else None
        candidates: list[tuple[str, date | None, date, date]] = [
            ("diagnosis", case.diagnosis, case.birth, case.perfusions[0].day),
            ("local_relapse", case.local_relapse, origin, min(ceiling, amputated or ceiling)),
            ("metastasis", case.metastasis[0] if case.metastasis else None, origin, ceiling),
        ]
        for name, day, low, high in candidates:
            if day is None or rng.random() >= 0.3:
                continue
            imputed, _ = parse_fhir_date(day.strftime("%Y-%m"))
            if low < imputed < high:
                case.precision[name] = "month"

    def tumour_size(self, case: PatientCase) -> dict[str, Any]:
        return self.quantity(round(case.size_cm * 10), "mm")

    def drug_doses(self, case: PatientCase, out: Rendered, p: Perfusion, procedure: str,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        total = round(p.melphalan_mg_per_l * p.limb_volume_l, 1)
        out.add(self.observation(case, f"ilp-{p.number}-volume", self.reference("Patient", self.id(case, "patient")),
                                 self.concept("observation", "limb_volume"), self.instant(p.day, p.start_hour),
                                 partOf=[self.reference("Procedure", procedure)],
                                 valueQuantity=self.quantity(p.limb_volume_l, "L")), f"perfusion-{p.number}")
        out.written[f"perfusion-{p.number}"] = {"melphalan_total_mg": total, "limb_volume_l": p.limb_volume_l,
                                                "melphalan_dose_mg_per_l": total / p.limb_volume_l}
        return self.quantity(round(p.tnf_mg * 1000), "ug"), self.quantity(total, "mg"), []

    def timing(self, case: PatientCase, p: Perfusion) -> dict[str, Any]:
        return {"performedDateTime": self.instant(p.day, p.start_hour)}

    def perfusion(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str,
                  p: Perfusion) -> None:
        super().perfusion(case, out, subject, condition, p)
        procedure = self.reference("Procedure", self.id(case, f"ilp-{p.number}"))
        out.add(self.observation(case, f"ilp-{p.number}-duration", subject,
                                 self.concept("observation", "perfusion_duration"), self.instant(p.day, p.start_hour),
                                 partOf=[procedure], valueQuantity=self.quantity(p.duration_min, "min")),
                f"perfusion-{p.number}")

    def anthropometry(self, case: PatientCase, out: Rendered, subject: dict[str, str], when: str) -> None:
        for slot, code, quantity in (("weight", "body_weight", self.quantity(case.weight_kg, "kg")),
                                     ("height", "body_height", self.quantity(case.height_cm, "cm"))):
            out.add(self.observation(case, slot, subject, self.concept("observation", code), when,
                                     valueQuantity=quantity), "patient")

    def comorbidity(self, case: PatientCase, out: Rendered, subject: dict[str, str], name: str, when: str) -> None:
        out.add(self.base("Condition", self.id(case, name), subject, code=self.concept("condition", name),
                          recordedDate=when), "patient")

    def local_relapse(self, case: PatientCase, subject: dict[str, str], condition: str, day: date) -> Resource:
        return self.base("Condition", self.id(case, "local-relapse"), subject,
                         code=self.concept("condition", "local_relapse"),
                         onsetDateTime=self.written(case, "local_relapse", day))


class OwnExtensionsRenderer(StandardRenderer):
    dialect = "own-extensions"
    YES_NO = "http://snomed.info/sct"
    YES, NO = "373066001", "373067005"

    def __init__(self, profile: CentreProfile, seed: int) -> None:
        super().__init__(profile, seed)
        site = f"https://{profile.centre_id}.example.org/fhir"
        self.level_url = f"{site}/StructureDefinition/perfusion-level"
        self.sparing_url = f"{site}/StructureDefinition/limb-preserved"
        self.progression = Coding(f"{site}/CodeSystem/progression", "LOC", "Local progression")

    def ilp_level(self, p: Perfusion) -> dict[str, Any]:
        return {"url": self.level_url, "valueCodeableConcept": self.concept("ilp-level", p.level)}

    def limb_sparing(self, spared: bool) -> dict[str, Any]:
        code, display = (self.YES, "Yes") if spared else (self.NO, "No")
        return {"url": self.sparing_url, "valueCodeableConcept": {"coding": [
            {"system": self.YES_NO, "code": code, "display": display}]}}

    def drug_part_of(self, out: Rendered, row: str, drug_id: str, part_of: list[dict[str, str]]) -> dict[str, Any]:
        """No partOf: the drug is the ILP's because it was given to the patient on the day of the ILP."""
        drugs = out.written.setdefault(row, {}).setdefault("parts_linked_by_date", [])
        drugs.append(f"MedicationAdministration/{drug_id}")
        drugs.sort()
        return {}

    def size_observation(self, case: PatientCase, subject: dict[str, str], when: str,
                         focus: list[dict[str, str]]) -> Resource:
        return self.observation(case, "size", subject, self.concept("observation", "tumour_size"), when,
                                valueQuantity=self.quantity(round(case.size_cm * 10), "mm"))

    def tumour_facts(self, case: PatientCase, out: Rendered, subject: dict[str, str], condition: str) -> None:
        super().tumour_facts(case, out, subject, condition)
        out.written["tumour"] = {"facts_linked_by_subject": [f"Observation/{self.id(case, 'size')}"]}

    def local_relapse(self, case: PatientCase, subject: dict[str, str], condition: str, day: date) -> Resource:
        return self.observation(case, "local-relapse", subject, self.concept("observation", "disease_status"),
                                self.written(case, "local_relapse", day),
                                focus=[self.reference("Condition", condition)],
                                valueCodeableConcept=self.concept("disease-status", "worsened"),
                                method={"coding": [self.progression.as_fhir()]})

    def conceptmap(self) -> dict[str, Any]:
        local_recurrence = valuesets()["disease-status"].primary("local_recurrence")
        return build_conceptmap(f"{self.profile.centre_id}-progression", f"{self.profile.name}: kinds of progression",
                                [(self.progression, local_recurrence)])

    def views(self) -> dict[str, dict[str, str]]:
        # Empty (unknown) where the extension is absent, not false.
        answer = f"coding.where(system = '{self.YES_NO}').code.first() = '{self.YES}'"
        return {"procedure": {
                    "ilp_level": f"extension('{self.level_url}').value.ofType(CodeableConcept)",
                    "limb_sparing": f"extension('{self.sparing_url}').value.ofType(CodeableConcept).{answer}"},
                "observation": {"disease_status": "value.ofType(CodeableConcept).coding | method.coding"}}


def views_toml(views: dict[str, dict[str, str]]) -> str:
    """View overrides as the `[centres.views.<view>]` tables of a centre in the configuration."""
    lines = []
    for view, columns in views.items():
        lines.append(f"[centres.views.{view}]")
        lines += [f"{column} = {json.dumps(path)}" for column, path in columns.items()]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, type[StandardRenderer]] = {
    r.dialect: r for r in (StandardRenderer, LocalCodesRenderer, DivergentRenderer, OwnExtensionsRenderer)}


def renderer_for(profile: CentreProfile, seed: int) -> StandardRenderer:
    try:
        return RENDERERS[profile.dialect](profile, seed)
    except KeyError:
        raise ValueError(f"centre {profile.centre_id}: unknown dialect {profile.dialect!r}; "
                         f"known: {sorted(RENDERERS)}") from None
