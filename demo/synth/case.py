"""Simulate one patient's clinical course: the latent truth every other synthetic artefact is rendered from.

Each patient draws from its own random stream seeded by (seed, centre, index), so any patient can be generated
alone, in any order, in any process, with the same result: the consortium streams to disk at any size.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from demo.synth.profiles import CentreProfile, Survival
from foundation.model import vocabulary as v

K = TypeVar("K")
YEAR = 365.25
# Share of patients whose local and distant relapse share one frailty draw: between independence (RFS too low)
# and full dependence (RFS = MFS), this reproduces the reference study's RFS from its LRFS and MFS.
RELAPSE_DEPENDENCE = 0.5
GIVEN = ("Anna", "Marie", "Sofia", "Eva", "Lena", "Jan", "Pieter", "Lars", "Karl", "Paul", "Louise", "Henrik")
FAMILY = ("Martin", "Bernard", "de Vries", "Jansen", "Andersson", "Johansson", "Dubois", "Visser", "Nilsson")
CTCAE_POSTOP_TERMS = ("wound_infection", "wound_dehiscence", "seroma", "lymphocele", "skin_necrosis",
                      "peripheral_neuropathy")


@dataclass
class Perfusion:
    number: int
    day: date
    start_hour: int
    duration_min: float
    level: str
    tnf_mg: float
    melphalan_mg_per_l: float
    limb_volume_l: float
    temperature_c: float
    leakage_pct: float
    wieberdink: str
    recist: list[tuple[date, str]]  # MRI at 1 and 2 months


@dataclass
class Toxicity:
    scale: str
    grade: str
    day: date
    term: str | None = None
    perfusion: int | None = None  # number of the ILP it followed


@dataclass
class PatientCase:
    """Everything that happened to one patient, at full precision."""

    centre_id: str
    index: int
    national_id: str
    mrn: str
    given: str
    family: str
    sex: str
    birth: date
    diagnosis: date
    site: str
    subsite: str
    laterality: str
    histology: str
    grade: str | None
    size_cm: float
    unresectability: str
    weight_kg: float
    height_cm: float
    smoking: bool
    hypertension: bool
    dyslipidaemia: bool
    perfusions: list[Perfusion]
    toxicities: list[Toxicity]
    resection: date | None = None
    necrosis_pct: float | None = None
    amputation: tuple[date, str] | None = None
    radiotherapy: tuple[date, date] | None = None
    systemic: tuple[date, date] | None = None
    local_relapse: date | None = None
    metastasis: tuple[date, str] | None = None
    death: date | None = None
    last_contact: date = date.min
    # How the centre wrote each date down: field name -> "year" | "month" (absent: full date).
    precision: dict[str, str] = field(default_factory=dict)

    @property
    def bmi(self) -> float:
        return round(self.weight_kg / (self.height_cm / 100) ** 2, 1)


def _pick(rng: random.Random, weights: dict[K, float] | dict[K, int]) -> K:
    keys = list(weights)
    return rng.choices(keys, weights=[float(weights[k]) for k in keys])[0]


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(days=rng.randint(low, high))


def _time_to_event(target: Survival, budget: float, hazard_ratio: float = 1.0) -> float:
    """Years to an event under piecewise-constant hazards that hit the 1/5/10-year survival targets.

    `budget` is the cumulative hazard at which the event happens (an Exp(1) draw); sharing one draw between two
    events makes them dependent, as local and distant relapse are in practice.
    """
    pieces = ((0.0, 1.0, -math.log(target.y1)),
              (1.0, 5.0, -math.log(target.y5 / target.y1) / 4),
              (5.0, math.inf, -math.log(target.y10 / target.y5) / 5))
    for start, end, hazard in pieces:
        rate = hazard * hazard_ratio
        if rate > 0 and budget <= rate * (end - start):
            return start + budget / rate
        budget -= rate * (end - start)
    return math.inf


def _perfusion(rng: random.Random, profile: CentreProfile, number: int, day: date, site: str) -> Perfusion:
    lower = site == "lower_limb"
    if lower:
        level = "femoral" if rng.random() < profile.femoral_share_of_lower else "iliac"
        tnf = _pick(rng, {1.0: 0.15, 2.0: 0.35, 3.0: 0.35, 4.0: 0.15})
        volume = round(rng.uniform(6.0, 14.0), 2)
    else:
        level = _pick(rng, {"axillary": 0.5, "brachial": 0.5})
        tnf = _pick(rng, {0.5: 0.2, 1.0: 0.6, 2.0: 0.2})
        volume = round(rng.uniform(1.5, 4.0), 2)
    first = day + timedelta(days=30 + rng.randint(-3, 5))
    recist_2m = _pick(rng, profile.recist)
    recist_1m = {"CR": "PR", "PR": "SD"}.get(recist_2m, recist_2m) if rng.random() < 0.5 else recist_2m
    return Perfusion(
        number=number, day=day, start_hour=rng.randint(8, 13), duration_min=profile.duration_min, level=level,
        tnf_mg=tnf, melphalan_mg_per_l=10.0 if lower else 13.0, limb_volume_l=volume,
        temperature_c=round(rng.uniform(38.0, 39.5), 1), leakage_pct=round(min(10.0, rng.expovariate(1.2)), 1),
        wieberdink=_pick(rng, profile.wieberdink),
        recist=[(first, recist_1m), (first + timedelta(days=30 + rng.randint(-3, 5)), recist_2m)],
    )


def simulate(profile: CentreProfile, index: int, seed: int) -> PatientCase:
    """The clinical course of patient `index` of a centre; the same arguments always give the same course."""
    rng = random.Random(f"{seed}/{profile.centre_id}/{index}")
    span = (profile.accrual_end - profile.accrual_start).days
    diagnosis = profile.accrual_start + _days(rng, 0, span)
    age = min(85.0, max(18.0, rng.gauss(profile.age_median, 13.0)))
    birth = diagnosis - timedelta(days=int(age * YEAR) + rng.randint(0, 364))
    sex = "female" if rng.random() < profile.female else "male"
    height = rng.gauss(165 if sex == "female" else 178, 7)
    bmi = min(45.0, max(17.0, rng.lognormvariate(math.log(profile.bmi_median), 0.17)))
    site = "lower_limb" if rng.random() < profile.lower_limb else "upper_limb"
    subsite = _pick(rng, {"thigh": 0.44, "leg": 0.46, "foot": 0.10} if site == "lower_limb"
                    else {"arm": 0.40, "forearm": 0.46, "hand": 0.14})
    grade = _pick(rng, profile.grade) or None
    case = PatientCase(
        centre_id=profile.centre_id, index=index,
        national_id=f"{rng.randrange(10**9, 10**10)}", mrn=f"{profile.centre_id[:3].upper()}{index:07d}",
        given=rng.choice(GIVEN), family=rng.choice(FAMILY), sex=sex, birth=birth, diagnosis=diagnosis,
        site=site, subsite=subsite, laterality=rng.choice(v.LATERALITY), histology=_pick(rng, profile.histology),
        grade=grade, size_cm=round(min(40.0, max(1.0, rng.lognormvariate(math.log(profile.size_median_cm), 0.5))), 1),
        unresectability=_pick(rng, profile.unresectability),
        weight_kg=round(bmi * (height / 100) ** 2, 1), height_cm=round(height, 0),
        smoking=rng.random() < profile.smoking, hypertension=rng.random() < profile.hypertension,
        dyslipidaemia=rng.random() < profile.dyslipidaemia, perfusions=[], toxicities=[],
    )
    first = _perfusion(rng, profile, 1, diagnosis + _days(rng, 14, 75), site)
    case.perfusions.append(first)
    _course(rng, profile, case, first)
    return case


def _course(rng: random.Random, profile: CentreProfile, case: PatientCase, first: Perfusion) -> None:
    """Toxicity, response-driven treatment, relapses, death and follow-up after the first ILP."""
    ilp = first.day
    wieberdink = Toxicity("wieberdink", first.wieberdink, ilp + _days(rng, 2, 7), perfusion=1)
    case.toxicities.append(wieberdink)
    response = first.recist[-1][1]
    if rng.random() < profile.early_death:  # e.g. the reference study's thrombosis two days after ILP
        death = ilp + _days(rng, 2, 100)
        wieberdink.day = min(wieberdink.day, death)
        first.recist = [r for r in first.recist if r[0] < death]
        case.toxicities.append(Toxicity("ctcae", "5", death, rng.choice(("pulmonary_embolism", "cardiac_arrest")), 1))
        case.death = case.last_contact = death
        return
    if first.wieberdink == "V":
        case.amputation = (ilp + _days(rng, 10, 40), "toxicity")
    elif response == "PD":
        if rng.random() < 0.5:
            case.amputation = (ilp + _days(rng, 60, 100), "progression")
        else:
            start = ilp + _days(rng, 60, 90)
            case.systemic = (start, start + _days(rng, 90, 150))
    elif rng.random() < profile.resection_if_not_pd:
        surgery = first.recist[-1][0] + _days(rng, 14, 45)
        if rng.random() < profile.limb_sparing:
            case.resection = surgery
            case.necrosis_pct = _necrosis(rng, _pick(rng, profile.pathological))
        else:
            case.amputation = (surgery, "tumour_extent")
    elif response != "CR":
        start = ilp + _days(rng, 70, 110)
        case.radiotherapy = (start, start + _days(rng, 35, 45))
    if case.resection and rng.random() < profile.postoperative_rt:
        start = case.resection + _days(rng, 28, 60)
        case.radiotherapy = (start, start + _days(rng, 35, 45))
    if rng.random() < profile.second_ilp and response != "PD" and case.amputation is None:
        second_day = (case.resection or first.recist[-1][0]) + _days(rng, 30, 120)
        second = _perfusion(rng, profile, 2, second_day, case.site)
        second.level = first.level
        case.perfusions.append(second)
        case.toxicities.append(Toxicity("wieberdink", second.wieberdink, second.day + _days(rng, 2, 7), perfusion=2))
    _complications(rng, profile, case)
    _follow_up(rng, profile, case, response)


def _necrosis(rng: random.Random, category: str) -> float:
    return {"CR": 100.0, "PR": float(rng.randint(50, 99))}.get(category, float(rng.randint(5, 49)))


def _complications(rng: random.Random, profile: CentreProfile, case: PatientCase) -> None:
    if case.resection is None:
        return
    if rng.random() < profile.clavien_dindo:
        grade = _pick(rng, {"I": 0.35, "II": 0.35, "IIIa": 0.15, "IIIb": 0.15})
        case.toxicities.append(Toxicity("clavien_dindo", grade, case.resection + _days(rng, 2, 25)))
    for _ in range(_pick(rng, {0: 0.55, 1: 0.35, 2: 0.10})):
        case.toxicities.append(Toxicity("ctcae", _pick(rng, {"1": 0.45, "2": 0.40, "3": 0.15}),
                                        case.resection + _days(rng, 3, 40), rng.choice(CTCAE_POSTOP_TERMS), 1))


def _follow_up(rng: random.Random, profile: CentreProfile, case: PatientCase, response: str) -> None:
    """Relapses from the relapse origin, death from diagnosis, then censoring at cut-off or loss to follow-up."""
    origin = case.resection or case.perfusions[0].recist[-1][0]
    worse = 2.5 if response == "PD" else 1.0
    end = profile.cutoff - _days(rng, 0, 120)
    if rng.random() < profile.lost_to_follow_up:
        end = min(end, origin + timedelta(days=int(rng.uniform(0.5, 6) * YEAR)))

    def after(start: date, target: Survival, budget: float, ratio: float = 1.0) -> date | None:
        years = _time_to_event(target, budget, ratio)
        return start + timedelta(days=int(years * YEAR)) if math.isfinite(years) else None

    treated_until = max(d for d in _dated(case) if d is not None)
    # OS targets are net of the early deaths simulated before follow-up starts.
    alive = 1 - profile.early_death
    os = Survival(profile.os.y1 / alive, profile.os.y5 / alive, profile.os.y10 / alive)
    death = after(case.diagnosis, os, rng.expovariate(1.0))
    death = max(death, treated_until + timedelta(days=14)) if death else None
    relapse_frailty = rng.expovariate(1.0)
    local_budget = relapse_frailty if rng.random() < RELAPSE_DEPENDENCE else rng.expovariate(1.0)
    local = after(origin + timedelta(days=30), profile.lrfs, local_budget, worse)
    mets = after(origin + timedelta(days=30), profile.mfs, relapse_frailty, worse)
    if death and mets is None and (death - origin).days > 60 and rng.random() < 0.7:
        mets = origin + timedelta(days=rng.randint(30, (death - origin).days - 30))  # deaths mostly follow spread
    horizon = min(end, death) if death else end
    case.death = death if death and death <= end else None
    case.local_relapse = local if local and local < horizon else None
    if mets and mets < horizon:
        site = _pick(rng, {"lung": 0.65, "bone": 0.15, "liver": 0.1, "lymph_node": 0.05, "soft_tissue": 0.05})
        case.metastasis = (mets, site)
    if case.local_relapse and case.amputation is None and rng.random() < 0.15:
        amputation = case.local_relapse + _days(rng, 20, 60)
        if amputation < horizon:
            case.amputation = (amputation, "local_relapse")
    latest = max(d for d in _dated(case) if d is not None)
    if case.death:
        case.last_contact = min(case.death, max(latest, case.death - _days(rng, 0, 60)))
    else:
        case.last_contact = max(latest, end)


def _dated(case: PatientCase) -> list[date | None]:
    """Every event date except death, for keeping last contact after all of them."""
    return [case.diagnosis, case.resection, case.local_relapse, case.metastasis and case.metastasis[0],
            case.amputation and case.amputation[0], case.radiotherapy and case.radiotherapy[1],
            case.systemic and case.systemic[1], *(day for p in case.perfusions for day, _ in p.recist),
            *(t.day for t in case.toxicities)]
