"""Disclosure control holds: an attacker who subtracts across every published table of the demo consortium's
report recovers no suppressed count, while with small-cell suppression alone the same attacker recovers many."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from analytics import AnalysisPlan, read_snapshot
from analytics.analysis import protected
from analytics.outputs import OUTPUTS
from foundation.publication import published_snapshot

DemoRun = tuple[Path, str]
MIN_CELL = 5
COUNTED = {"table1", "table2", "outcomes", "table3", "competing_risks", "cox", "fine_gray", "logrank"}
LEVEL = re.compile(r"(?P<label>[^;]+?): n=(?P<n>\d+), O=(?P<o>\d+), E=[\d.]+")
Cell = tuple[str, int, str]  # (table, row, column)


def _counts(table: pd.DataFrame, name: str) -> list[str]:
    if name == "logrank":
        return [c for c in table.columns if c.startswith(("n:", "O:"))]
    output = next(o for o in OUTPUTS if o.name == name)
    return [c for c in table.columns if any(c == n or (n.endswith("*") and c.startswith(n[:-1]))
                                            for n in output.counts)]


def _levels_as_counts(table: pd.DataFrame) -> pd.DataFrame:
    """The log-rank table with each group's n and observed events, read from its `levels` text, as columns."""
    parsed = [{f"{kind}:{m['label'].strip()}": float(m[key]) for m in LEVEL.finditer(str(text))
               for kind, key in (("n", "n"), ("O", "o"))} for text in table["levels"].fillna("")]
    return pd.concat([table, pd.DataFrame(parsed, index=table.index)], axis=1)


def _equations(truth: dict[str, pd.DataFrame]) -> tuple[list[list[Cell]], list[list[Cell]]]:
    """What the attacker knows of the tables' structure: sums (the first cell is the sum of the others) and
    equalities. To be stronger than a real one, it knows which totals are equal in truth, and which "Yes" counts
    equal a total (a denominator of another variable: resected, amputated patients)."""
    sums: list[list[Cell]] = []
    equal: list[list[Cell]] = []
    descriptive = ("table1", "table2", "outcomes")
    for name, table in truth.items():
        keys = (["variable", "level"] if name in descriptive else ["endpoint", "factor"] if name == "logrank"
                else ["endpoint"] if "model" not in table else [])
        if keys:
            for _, rows in table.groupby(keys, dropna=False):
                pooled = rows.index[rows["group"] == "pooled"]
                centres = list(rows.index[rows["group"] != "pooled"])
                sums += [[(name, pooled[0], c), *((name, i, c) for i in centres)]
                         for c in _counts(table, name) if len(pooled) == 1 and centres]
        if name in descriptive:
            counted = table[table["statistic"].str.startswith("n (%)")]
            for _, rows in counted.groupby(["group", "variable"]):
                if len(rows) > 1 and rows["n"].sum() == rows["total"].iloc[0]:
                    sums.append([(name, rows.index[0], "total"), *((name, i, "n") for i in rows.index)])
        if "model" in table:
            for _, rows in table.dropna(subset=["n"]).groupby(["endpoint", "model"]):
                equal += [[(name, i, c) for i in rows.index] for c in ("n", "events")]
            for _, rows in table.dropna(subset=["n"]).groupby("endpoint"):
                pooled = rows[rows["model"] == "stratified by centre"]
                parts = rows[rows["model"].str.startswith("centre ")].groupby("model").head(1)
                if len(pooled) and len(parts):
                    sums += [[(name, pooled.index[0], c), *((name, i, c) for i in parts.index)]
                             for c in ("n", "events")]
    for group in truth["table1"]["group"].unique():  # a denominator is a total, and another table's "Yes" count
        totals: dict[float, list[Cell]] = {}
        yes: list[tuple[float, Cell]] = []
        for name in descriptive:
            rows = truth[name][truth[name]["group"] == group]
            for i, row in rows.iterrows():
                totals.setdefault(float(row["total"]), []).append((name, int(i), "total"))  # type: ignore[call-overload]
                if row["level"] == "Yes":
                    yes.append((float(row["n"]), (name, int(i), "n")))  # type: ignore[call-overload]
        equal += [cells + [cell for count, cell in yes if count == value] for value, cells in totals.items()
                  if len(cells) + sum(count == value for count, _ in yes) > 1]
    return sums, equal


def _attack(published: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame]
            ) -> tuple[set[Cell], dict[Cell, float]]:
    """(suppressed cells, the values of those recovered by subtraction and equality)."""
    known: dict[Cell, float] = {}
    hidden: set[Cell] = set()
    for name, table in published.items():
        for column in _counts(truth[name], name):
            for i in table.index:
                value = table.at[i, column] if column in table.columns else None  # withheld: not published
                real = truth[name].at[i, column]
                if pd.notna(value):
                    known[(name, i, column)] = float(value)
                elif pd.notna(real):
                    hidden.add((name, i, column))
    sums, equal = _equations(truth)
    progress = True
    while progress:
        progress = False
        for cells in sums:
            unknown = [c for c in cells if c not in known]
            if len(unknown) == 1 and all(c in known or c in hidden for c in cells):
                whole, parts = cells[0], cells[1:]
                if unknown[0] == whole:
                    known[whole] = sum(known[c] for c in parts)
                else:
                    known[unknown[0]] = known[whole] - sum(known[c] for c in parts if c != unknown[0])
                progress = True
        for cells in equal:
            seen = [known[c] for c in cells if c in known]
            if seen and any(c not in known for c in cells):
                for cell in cells:
                    known.setdefault(cell, seen[0])
                progress = True
    return hidden, {c: known[c] for c in hidden if c in known}


@pytest.fixture(scope="module")
def reports(demo_run: DemoRun) -> dict[str, dict[str, pd.DataFrame]]:
    """The demo report's tables, as computed and as published (protected by default), after a CSV round trip."""
    data = read_snapshot(published_snapshot(demo_run[0] / "zones"))
    truth = {o.name: o.build(data, AnalysisPlan()) for o in OUTPUTS}
    made = {"truth": truth, "protected": protected(truth, AnalysisPlan())}
    for label, tables in made.items():
        made[label] = {n: pd.read_csv(io.StringIO(tables[n].to_csv(index=False))) for n in COUNTED}
        made[label]["logrank"] = _levels_as_counts(made[label]["logrank"])
    return made


def test_an_attacker_subtracting_across_every_table_recovers_nothing(
        reports: dict[str, dict[str, pd.DataFrame]]) -> None:
    hidden, recovered = _attack(reports["protected"], reports["truth"])
    small = {c for c in hidden if 0 < reports["truth"][c[0]].at[c[1], c[2]] < MIN_CELL}
    assert len(small) >= 20, "the demo report should have small cells to protect"
    assert not recovered, f"recovered by subtraction: {sorted(recovered)[:10]}"
    for name, table in reports["protected"].items():
        counts = table[_counts(table, name)].apply(pd.to_numeric, errors="coerce")
        assert not ((counts > 0) & (counts < MIN_CELL)).any().any(), f"{name} shows a small count"


def test_small_cell_suppression_alone_gives_cells_back_to_the_same_attacker(
        reports: dict[str, dict[str, pd.DataFrame]]) -> None:
    """Why complementary suppression is needed: blank only the small counts, and subtraction restores them."""
    primary = {}
    for name, table in reports["truth"].items():
        counts = _counts(table, name)
        values = table[counts].apply(pd.to_numeric, errors="coerce")
        small = (values > 0) & (values < MIN_CELL)
        primary[name] = table.copy()
        primary[name][counts] = values.mask(small)
    hidden, recovered = _attack(primary, reports["truth"])
    assert len(recovered) >= 10, (len(hidden), len(recovered))
    for (name, row, column), value in recovered.items():  # and what it recovers is the true count
        assert value == pytest.approx(float(reports["truth"][name].at[row, column]))


def test_the_report_says_what_was_suppressed_and_why(reports: dict[str, dict[str, pd.DataFrame]]) -> None:
    table1 = reports["protected"]["table1"]
    reasons = set(table1["disclosure"].dropna())
    assert reasons == {"suppressed: count below 5", "suppressed: would give back a suppressed count"}
    medians = table1[table1["statistic"] == "median [min-max]"]
    assert medians["lower"].isna().all() and medians["estimate"].notna().any(), "ranges are withheld"
    assert reports["protected"]["logrank"][["levels", "smallest_group", "fewest_events"]].isna().all().all()
    table3 = reports["protected"]["table3"]
    at_risk = table3[[c for c in table3.columns if c.startswith("at_risk_")]]
    assert not ((at_risk > 0) & (at_risk < MIN_CELL)).any().any()


def test_the_consortium_report_of_a_default_run_is_protected(demo_run: DemoRun) -> None:
    """The demo's `ilp run` used the default configuration: its published report suppresses small cells."""
    snapshot = published_snapshot(demo_run[0] / "zones")
    tables = demo_run[0] / "zones" / "reports" / snapshot.name / "tables"
    for name in ("table1", "table3", "cox"):
        table = pd.read_csv(tables / f"{name}.csv")
        counts = table[_counts(table, name)].apply(pd.to_numeric, errors="coerce")
        assert not ((counts > 0) & (counts < MIN_CELL)).any().any(), name
    assert "suppressed: count below 5" in set(pd.read_csv(tables / "table1.csv")["disclosure"].dropna())
