"""Disclosure control for outputs that leave a centre: small counts suppressed, and every count that would give
one back by subtraction suppressed with it.

Primary suppression: a count from 1 to `min_cell - 1`, and in its row every figure derived from the counts
(percent, interval, survival estimates), is blanked and the row says so. Zero is not suppressed: it discloses
nothing about a person.

Complementary suppression: published counts are tied by sums and equalities a reader can use. A pooled count is
the sum of the centres' counts; a variable's levels add up to its total when they cover every patient; a total is
repeated on every row of its variable, and a "Yes" count of one table is the denominator of another (resected
patients). A sum with exactly one blank cell gives that cell back, and so does an equality with some cells blank
and others not. So, until none is left: in a sum with exactly one blank cell, the smallest other cell (a non-zero
one first) is blanked too; in an equality, every cell is blanked. The report says what was suppressed, and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

POOLED = "pooled"
NOTE = "suppressed: count below {min_cell}"
COMPLEMENT = "suppressed: would give back a suppressed count"
Cell = tuple[int, str]  # (row label, column)


@dataclass
class Linked:
    """Cells a reader can combine: `sums` (every cell of one is the sum of the others, whichever way round) and
    `equal` (cells holding the same count)."""

    sums: list[list[Cell]] = field(default_factory=list)
    equal: list[list[Cell]] = field(default_factory=list)

    def __add__(self, other: Linked) -> Linked:
        return Linked(self.sums + other.sums, self.equal + other.equal)


Links = Callable[[pd.DataFrame], Linked]


def no_links(_: pd.DataFrame) -> Linked:
    return Linked()


def suppress(table: pd.DataFrame, counts: Sequence[str], derived: Sequence[str], min_cell: int,
             links: Links = no_links) -> pd.DataFrame:
    """A copy of `table` with small counts in `counts` blanked, those that would give them back blanked too, and
    `derived` blanked on every row with a blank count; `disclosure` says why."""
    result = table.copy()
    present = matching(list(result.columns), counts)
    derived = matching(list(result.columns), derived)
    if not present:
        return result
    values = result[present].apply(pd.to_numeric, errors="coerce")
    hidden = (values > 0) & (values < min_cell)
    primary = hidden.any(axis=1)
    _complete(hidden, values, links(result))
    blanked = [c for c in (*present, *derived) if c in result.columns]
    result[blanked] = result[blanked].astype(object)
    rows = hidden.any(axis=1)
    for column in present:
        result.loc[hidden[column], column] = None
    result.loc[rows, [c for c in derived if c in result.columns]] = None
    notes = result["disclosure"] if "disclosure" in result.columns else pd.Series("", index=result.index)
    notes = notes.where(~rows, COMPLEMENT)
    result["disclosure"] = notes.where(~primary, NOTE.format(min_cell=min_cell))
    return result


def _complete(hidden: pd.DataFrame, values: pd.DataFrame, linked: Linked) -> None:
    """Blank cells until no sum has exactly one blank cell and no equality is partly blank."""
    def known(cells: list[Cell]) -> list[Cell]:
        return [c for c in cells if c[1] in hidden.columns and pd.notna(values.at[c])]

    sums = [known(cells) for cells in linked.sums]
    equal = [known(cells) for cells in linked.equal]
    changed = True
    while changed:
        changed = False
        for cells in sums:
            blank = [c for c in cells if hidden.at[c]]
            if len(blank) == 1:
                others = [c for c in cells if not hidden.at[c]]
                if others:
                    pick = min(others, key=lambda c: (values.at[c] == 0, values.at[c]))
                    hidden.at[pick] = True
                    changed = True
        for cells in equal:
            if any(hidden.at[c] for c in cells) and not all(hidden.at[c] for c in cells):
                for cell in cells:
                    hidden.at[cell] = True
                changed = True


def matching(columns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The columns named, where `name*` names every column that starts so."""
    return [c for c in columns if any(c == n or (n.endswith("*") and c.startswith(n[:-1])) for n in names)]


def across_centres(keys: Sequence[str], columns: Sequence[str]) -> Links:
    """The pooled row's count is the sum of the centres' rows with the same `keys` (`columns` may end in `*`)."""
    def links(table: pd.DataFrame) -> Linked:
        linked = Linked()
        if "group" not in table.columns:
            return linked
        for _, rows in table.groupby(list(keys), dropna=False, sort=False):
            pooled = rows.index[rows["group"] == POOLED]
            centres = rows.index[rows["group"] != POOLED]
            if len(pooled) == 1 and len(centres):
                linked.sums += [[(pooled[0], c), *((i, c) for i in centres)]
                                for c in matching(list(table.columns), columns)]
        return linked
    return links


Withhold = Callable[[pd.DataFrame], pd.DataFrame]


def withhold_nothing(table: pd.DataFrame) -> pd.DataFrame:
    return table


def withhold_ranges(median: str) -> Withhold:
    """Medians without their range: the minimum and the maximum are single patients' values."""
    def withhold(table: pd.DataFrame) -> pd.DataFrame:
        result = table.copy()
        rows = result["statistic"] == median
        result[["lower", "upper"]] = result[["lower", "upper"]].astype(object)
        result.loc[rows, ["lower", "upper"]] = None
        return result
    return withhold


def withhold_columns(columns: Sequence[str]) -> Withhold:
    """Columns not published at all (counts tied to another table's)."""
    return lambda table: table.assign(**{c: None for c in columns if c in table.columns})


def descriptive_links(table: pd.DataFrame) -> Linked:
    """Tables 1-2 and the outcomes, protected together: centre sums of every level's n and total; a variable's
    levels summing to its total when they cover every patient; equal totals in a group, with the "Yes" counts
    that are another variable's denominator."""
    linked = across_centres(("variable", "level"), ("n", "total"))(table)
    counted = table[table["statistic"].astype(str).str.startswith("n (%)")]
    for _, rows in counted.groupby(["group", "variable"], sort=False):
        total = pd.to_numeric(rows["total"], errors="coerce")
        if len(rows) > 1 and total.nunique() == 1 and pd.to_numeric(rows["n"], errors="coerce").sum() == total.iloc[0]:
            linked.sums.append([(rows.index[0], "total"), *((i, "n") for i in rows.index)])
    for _, rows in table.groupby("group", sort=False):
        totals = pd.to_numeric(rows["total"], errors="coerce")
        yes = rows[rows["level"] == "Yes"]
        for value in totals.dropna().unique():
            cells = [(i, "total") for i in totals.index[totals == value]]
            cells += [(i, "n") for i in yes.index if pd.to_numeric(yes.at[i, "n"], errors="coerce") == value]
            if len(cells) > 1:
                linked.equal.append(cells)
    return linked


def model_links(table: pd.DataFrame) -> Linked:
    """Cox and Fine-Gray tables: a model's n and events repeat on each of its terms; the stratified pooled model's
    are the sums of the centre models' (same rows)."""
    linked = Linked()
    if "n" not in table.columns:
        return linked
    for _, rows in table.groupby(["endpoint", "model"], sort=False):
        linked.equal += [[(i, c) for i in rows.index] for c in ("n", "events") if len(rows) > 1]
    for _, rows in table.groupby("endpoint", sort=False):
        pooled = rows.index[rows["model"] == "stratified by centre"]
        centres = [r.index[0] for _, r in rows[rows["model"].astype(str).str.startswith("centre ")].groupby("model")]
        if len(pooled) and centres:
            linked.sums += [[(pooled[0], c), *((i, c) for i in centres)] for c in ("n", "events")]
    return linked
