"""The output policy holds against an attacker who has every published table and knows every relation between
their counts (levels to totals, pooled to centres, responders to CR + PR, equal denominators across tables and
outputs): on the demo consortium and on a small consortium of 5, 27 and 8 patients, no count below the threshold
is pinned to one value, no curve steps on one patient, and no statistic carries more figures than a reader needs.
The same attacker, given tables where only the small counts were blanked, recovers many: the attack is real. And
the policy still publishes what researchers came for: every estimate its own risk set allows."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import UNPROTECTED, AnalysisPlan, CohortData, OutputPolicy, ReleaseLedger, analyse, read_snapshot
from analytics.analysis import published
from analytics.descriptive import COUNT
from analytics.outputs import OUTPUTS
from analytics.survival_tables import fit_km
from analytics.survival_tables import table3 as table3_of
from foundation.publication import published_snapshot

DemoRun = tuple[Path, str]
POLICY = OutputPolicy()
DESCRIPTIVE = ("table1", "table2", "outcomes")
COUNTED = {"table1": ("n", "total"), "table2": ("n", "total"), "outcomes": ("n", "total"),
           "table3": ("n", "events"), "competing_risks": ("n", "events", "competing_deaths"),
           "cox": ("n", "events"), "fine_gray": ("n", "events")}
KEYS = {**{n: ["group", "section", "variable", "level", "statistic"] for n in DESCRIPTIVE},
        "table3": ["group", "endpoint"], "competing_risks": ["group", "endpoint"],
        "cox": ["endpoint", "model", "term"], "fine_gray": ["endpoint", "model", "term"]}
Cell = tuple[str, int, str]  # (table, row, column)
Bounds = dict[Cell, tuple[int, int]]


def _consortia(demo_run: DemoRun) -> dict[str, CohortData]:
    """The demo consortium, and a small one of 5, 27 and 8 of its patients (the issue's shape)."""
    data = read_snapshot(published_snapshot(demo_run[0] / "zones"))
    rng = np.random.default_rng(5)
    chosen = [rng.choice(data.for_centre(c).cohort["patient_id"].to_numpy(), size, replace=False)
              for c, size in zip(data.centres, (5, 27, 8), strict=True)]
    keep = np.concatenate(chosen)
    small = CohortData(data.cohort[data.cohort["patient_id"].isin(keep)].reset_index(drop=True),
                       data.toxicities[data.toxicities["patient_id"].isin(keep)].reset_index(drop=True), "small")
    return {"demo": data, "small": small}


@pytest.fixture(scope="module")
def releases(demo_run: DemoRun) -> dict[str, dict[str, dict[str, pd.DataFrame]]]:
    """Per consortium: the exact tables ("truth") and the tables as published under the default policy."""
    made = {}
    for name, data in _consortia(demo_run).items():
        truth = published({o.name: o.build(data, AnalysisPlan(policy=UNPROTECTED)) for o in OUTPUTS},
                          AnalysisPlan(policy=UNPROTECTED))
        shown = published({o.name: o.build(data, AnalysisPlan()) for o in OUTPUTS}, AnalysisPlan())
        made[name] = {"truth": truth, "published": {n: _aligned(shown[n], truth[n], n) for n in truth}}
    return made


def _aligned(shown: pd.DataFrame, truth: pd.DataFrame, name: str) -> pd.DataFrame:
    """The published table's rows in the truth's order (a model that is not published has one row, not one per
    term: its terms' counts are then not published)."""
    keys = KEYS.get(name)
    if keys is None:
        return shown
    published_rows = shown.drop_duplicates(keys).set_index(keys)
    return published_rows.reindex(pd.MultiIndex.from_frame(truth[keys])).reset_index().set_index(truth.index)


def _band(value: object, policy: OutputPolicy, parts: int = 1) -> tuple[int, int]:
    """The true counts a published count can stand for: a band's midpoint stands for the whole band; a count that
    is the sum of `parts` midpoints (a Kaplan-Meier n: its events' and its censorings') for any split of it."""
    shown = int(float(value))  # type: ignore[arg-type]
    midpoints = [0, *range(policy.rounding - policy.rounding // 2, shown + 1, policy.rounding)]
    low, high = None, None
    for split in itertools.product(midpoints, repeat=parts):
        if sum(split) == shown:
            bands = [(0, 0) if m == 0 else (m + policy.rounding // 2 - policy.rounding + 1, m + policy.rounding // 2)
                     for m in split]
            low = min(low if low is not None else 10 ** 9, sum(b[0] for b in bands))
            high = max(high or 0, sum(b[1] for b in bands))
    assert low is not None and high is not None, f"{shown} is no sum of {parts} published midpoints"
    return low, high


def _published_band(truth: dict[str, pd.DataFrame]) -> Callable[[Cell, object], tuple[int, int]]:
    """How the attacker reads each published count: a pooled one is the sum of the centres' (it adds nothing to
    them), a survival n the sum of an outcome's midpoints per outcome, any other a band."""
    def band(cell: Cell, value: object) -> tuple[int, int]:
        name, row, column = cell
        record = truth[name].loc[row]
        pooled = record.get("group") == "pooled" or str(record.get("model", "centre ")).startswith(
            ("stratified", "centre as", "Fine-Gray"))
        if pd.isna(value) or pooled:
            return 0, 10 ** 6
        parts = {("table3", "n"): 2, ("competing_risks", "n"): 3}.get((name, column), 1)
        return _band(value, POLICY, parts)
    return band


def _relations(truth: dict[str, pd.DataFrame]) -> tuple[list[list[tuple[int, Cell]]], list[list[tuple[int, Cell]]]]:
    """What the attacker knows of how true counts relate, as sums equal to zero and sums at most zero (coefficient,
    cell). To be stronger than a real one, it knows from the truth which counts are equal (every denominator, n
    and event count of every table: a Table 3 n is a Table 1 total, a Cox n another), and which variables' levels
    cover every patient."""
    equal: list[list[tuple[int, Cell]]] = []
    at_most: list[list[tuple[int, Cell]]] = []
    for name in DESCRIPTIVE:
        table = truth[name]
        counted = table[table["statistic"] == COUNT]
        for _, rows in counted.groupby(["group", "variable"], sort=False):
            total = (name, int(rows.index[0]), "total")
            parts = [(1, (name, int(i), "n")) for i in rows.index]
            (equal if rows["n"].sum() == rows["total"].iloc[0] else at_most).append([*parts, (-1, total)])
            equal += [[(1, (name, int(i), "total")), (-1, total)] for i in rows.index[1:]]
        for _, rows in table.groupby(["variable", "level", "statistic"], sort=False):  # pooled = sum of centres
            pooled = rows.index[rows["group"] == "pooled"]
            equal.append([(1, (name, int(pooled[0]), "n")),
                          *((-1, (name, int(i), "n")) for i in rows.index if i != pooled[0])])
        for _, rows in table.groupby(["variable", "statistic"], sort=False):  # a denominator: every centre's
            first = rows.groupby("group", sort=False).head(1)
            pooled = first.index[first["group"] == "pooled"]
            equal.append([(1, (name, int(pooled[0]), "total")),
                          *((-1, (name, int(i), "total")) for i in first.index if i != pooled[0])])
    table2 = truth["table2"]
    for _, rows in table2.groupby("group"):  # objective response = CR + PR
        radiological = rows[rows["variable"] == "Radiological response (RECIST)"]
        responders = rows[rows["variable"].str.startswith("Objective response")]
        parts = radiological[radiological["level"].isin(["CR", "PR"])]
        equal.append([(1, ("table2", int(responders.index[0]), "n")),
                      *((-1, ("table2", int(i), "n")) for i in parts.index)])
    # every count-like cell with the same true value as another: the attacker is told they are equal
    cells = [(name, int(i), c) for name, columns in COUNTED.items() for c in columns if c in truth[name]
             for i in truth[name].index if pd.notna(truth[name].at[i, c])]
    by_value: dict[float, list[Cell]] = {}
    for cell in cells:
        if cell[2] != "n" or cell[0] not in DESCRIPTIVE:  # denominators and survival/model counts
            by_value.setdefault(float(truth[cell[0]].at[cell[1], cell[2]]), []).append(cell)
    equal += [[(1, same[0]), (-1, other)] for same in by_value.values() for other in same[1:]]
    return equal, at_most


def _attack(shown: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame],
            band: Callable[[Cell, object], tuple[int, int]]) -> dict[Cell, int]:
    """Interval propagation over every relation until nothing tightens: the small true counts pinned to one
    value (cell -> the value), from the published counts' bands."""
    bounds: Bounds = {}
    for name, columns in COUNTED.items():
        for column in (c for c in columns if c in truth[name]):
            for i in truth[name].index:
                if pd.notna(truth[name].at[i, column]):
                    value = shown[name].at[i, column] if column in shown[name] else None
                    bounds[(name, int(i), column)] = band((name, int(i), column), value)
    equal, at_most = _relations(truth)
    for _ in range(50):
        changed = False
        for relation, upper_only in itertools.chain(((r, False) for r in equal), ((r, True) for r in at_most)):
            terms = [(a, c) for a, c in relation if c in bounds]
            if len(terms) != len(relation):
                continue
            low = sum(a * bounds[c][0] if a > 0 else a * bounds[c][1] for a, c in terms)
            high = sum(a * bounds[c][1] if a > 0 else a * bounds[c][0] for a, c in terms)
            for a, cell in terms:
                lo, hi = bounds[cell]
                rest_low = low - (a * lo if a > 0 else a * hi)
                rest_high = high - (a * hi if a > 0 else a * lo)
                # a * x + rest = 0 (or <= 0): x within what the rest allows
                if a > 0:
                    new = (lo if upper_only else max(lo, math.ceil(-rest_high / a)), min(hi, math.floor(-rest_low / a)))
                else:
                    new = (max(lo, math.ceil(-rest_low / a)), hi if upper_only else min(hi, math.floor(-rest_high / a)))
                if new != (lo, hi) and new[0] <= new[1]:
                    bounds[cell] = new
                    changed = True
        if not changed:
            break
    return {cell: lo for cell, (lo, hi) in bounds.items()
            if lo == hi and 0 < float(truth[cell[0]].at[cell[1], cell[2]]) < POLICY.threshold}


def _small(truth: dict[str, pd.DataFrame]) -> set[Cell]:
    return {(name, int(i), c) for name, columns in COUNTED.items() for c in columns if c in truth[name]
            for i in truth[name].index if 0 < float(truth[name].at[i, c] if pd.notna(truth[name].at[i, c]) else 0)
            < POLICY.threshold}


@pytest.mark.parametrize("consortium", ["demo", "small"])
def test_an_attacker_with_every_relation_pins_no_small_count(
        releases: dict[str, dict[str, dict[str, pd.DataFrame]]], consortium: str) -> None:
    truth, shown = releases[consortium]["truth"], releases[consortium]["published"]
    assert len(_small(truth)) >= 20, "the consortium should have small counts to protect"
    recovered = _attack(shown, truth, _published_band(truth))
    assert not recovered, f"pinned: {sorted(recovered)[:10]}"
    for name in DESCRIPTIVE:  # a withheld breakdown says why, and its reason names no true count
        reasons = shown[name]["withheld_because"].dropna()
        assert not reasons.str.contains("below|small count").any()


@pytest.mark.parametrize("consortium", ["demo", "small"])
def test_the_same_attacker_recovers_small_counts_that_were_only_blanked(
        releases: dict[str, dict[str, dict[str, pd.DataFrame]]], consortium: str) -> None:
    """What the policy replaces: exact counts with the small ones blanked (and said to be small)."""
    truth = releases[consortium]["truth"]

    def blanked(cell: Cell, _: object) -> tuple[int, int]:
        value = int(truth[cell[0]].at[cell[1], cell[2]])
        return (1, POLICY.threshold - 1) if 0 < value < POLICY.threshold else (value, value)
    recovered = _attack(truth, truth, blanked)
    assert len(recovered) >= 10
    assert all(value == truth[name].at[row, column] for (name, row, column), value in recovered.items())


@pytest.mark.parametrize("consortium", ["demo", "small"])
def test_curves_step_only_on_bands_and_stop_where_few_remain(demo_run: DemoRun, consortium: str) -> None:
    """Every drawn step of every curve stands for at least a band's midpoint of patients, at times on the grid,
    and a curve is drawn only while the threshold remain at risk; exact curves step on single patients."""
    data = _consortia(demo_run)[consortium]
    protected, exact = AnalysisPlan(), AnalysisPlan(policy=UNPROTECTED)
    single = 0
    for centre in data.centres:
        cohort = data.for_centre(centre).cohort
        for endpoint in protected.endpoints:
            km = fit_km(cohort, endpoint, protected, centre)
            if km is None:
                continue
            steps = km.table_[km.table_["events"] > 0]
            assert (steps["events"] >= POLICY.rounding - POLICY.rounding // 2).all(), (centre, endpoint.name)
            assert np.allclose(km.table_["time"] % POLICY.time_grid_months, 0.0)
            plain = fit_km(cohort, endpoint, exact, centre)
            single += int((plain.table_["events"] == 1).sum()) if plain is not None else 0
    assert single > 10, "exact curves should step on single patients"


@pytest.mark.parametrize("consortium", ["demo", "small"])
def test_statistics_leave_with_the_figures_a_reader_needs(
        releases: dict[str, dict[str, dict[str, pd.DataFrame]]], consortium: str) -> None:
    shown = releases[consortium]["published"]
    columns = {"logrank": (("chi_square", 3), ("p_value", 2)), "cox": (("coef", 3), ("se", 3), ("p", 2)),
               "centre_comparisons": (("statistic", 3), ("p_value", 2)), "table3": (("survival_5y", 3),)}
    for name, checks in columns.items():
        for column, figures in checks:
            if column not in shown[name]:
                continue
            values = pd.to_numeric(shown[name][column], errors="coerce").dropna()
            values = values[(values != 0) & np.isfinite(values)]
            assert all(float(f"{v:.{figures}g}") == v for v in values), (name, column)
    models = shown["cox"].dropna(subset=["term"])  # aligned on the truth's terms: published ones have a note ""
    published_models = models[models["note"] == ""]
    assert (published_models["n"].astype(float) >= POLICY.threshold).all()


def test_the_report_shows_every_estimate_its_own_risk_set_allows(demo_run: DemoRun, tmp_path: Path) -> None:
    """The reference study's shape (one centre of 41) publishes its Table 3 and Figure 1 under the default policy,
    and in the demo consortium's report a rate is blank only where fewer than the threshold are at risk at its
    horizon, a median only where its events are fewer: one small column never blanks the others."""
    data = _consortia(demo_run)["demo"]
    aurora = data.for_centre("aurora")
    result = analyse(aurora, tmp_path / "aurora", AnalysisPlan())
    table3 = result.tables["table3"].set_index(["group", "endpoint"])
    os_ = table3.loc[("aurora", "os")]
    assert 0.5 < os_["survival_5y"] < 0.8 and pd.notna(os_["survival_1y"])  # the study: 63% at 5 years
    assert (tmp_path / "aurora" / "figures" / "figure1_aurora.png").stat().st_size > 20_000
    pooled = published({"table3": table3_of(data, AnalysisPlan())}, AnalysisPlan())["table3"]
    shown = 0
    for record in pooled.to_dict("records"):
        for years in AnalysisPlan().horizons_years:
            at_risk = record[f"at_risk_{years}y"]
            if pd.notna(at_risk) and at_risk >= POLICY.threshold:
                assert pd.notna(record[f"survival_{years}y"]), (record["group"], record["endpoint"], years)
                shown += 1
            elif pd.notna(record[f"survival_{years}y"]):
                raise AssertionError(f"a rate with {at_risk} at risk was shown")
        if record["events"] >= POLICY.threshold and pd.isna(record["median_years"]):
            assert not (record["withheld_because"] or "").startswith("median")
    assert shown >= 30


def test_two_releases_a_few_patients_apart_are_not_both_published(demo_run: DemoRun, tmp_path: Path) -> None:
    """Differencing: a release one patient apart from an earlier one changes counts only where that patient is,
    so the ledger holds it back until the threshold of patients have changed; a rerun of the same data goes."""
    data = _consortia(demo_run)["demo"]
    ledger = ReleaseLedger(tmp_path / "releases.json")
    assert ledger.check(data, POLICY) is None
    ledger.record(data, "first", POLICY)

    def joined(patients: int, start: int = 0) -> CohortData:
        """`patients` new patients at aurora, copies of existing ones (from its `start`th) under new keys."""
        new = data.for_centre("aurora").cohort.iloc[start:start + patients].assign(
            patient_id=[f"new-{i}" for i in range(patients)])
        return CohortData(pd.concat([data.cohort, new], ignore_index=True), data.toxicities, "next")

    def table1(of: CohortData) -> pd.Series:
        return published({"table1": OUTPUTS[0].build(of, AnalysisPlan())}, AnalysisPlan())["table1"]["n"]

    # under rounding alone most one-patient differences show in some count: the ledger is what stops them
    first = table1(data).astype(float)
    shows = [i for i in range(10) if (table1(joined(1, i)).astype(float) != first).any()]
    assert shows, "rounding alone: the difference shows"
    one = joined(1, shows[0])
    held = ledger.check(one, POLICY)
    assert held is not None and (held.centre, held.release, held.patients) == ("aurora", "first", 1)
    assert ledger.check(joined(POLICY.threshold), POLICY) is None
    assert ledger.check(data, POLICY) is None  # the same release again
    ledger.record(data, "again", POLICY)
    assert len(ledger.releases()) == 1
    assert ledger.check(one, UNPROTECTED) is None  # the centre's own, unprotected outputs are not releases
