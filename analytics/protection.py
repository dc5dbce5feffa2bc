"""Tables 1-2 and the outcomes as they may leave a centre, and pooled from what the centres release.

A centre releases each level's count and denominator rounded by the output policy, a percent and interval
computed from those, and a median rounded to the policy's figures without its range (the minimum and maximum are
single patients' values). A breakdown of a variable into more non-empty levels than the policy's density allows
for the centre's size is not released at all (DataSHIELD's nfilter.levels.density): with as many levels as
patients every count is 1, whatever the rounding. The pooled rows are the sums of what the centres released (the
hub computes the same from the centres' packages), so subtracting the centres from the pooled gives nothing back.
"""

from __future__ import annotations

import pandas as pd

from analytics.descriptive import COLUMNS, COUNT, MEDIAN, NOT_RECORDED, POOLED, rate_row
from analytics.policy import OutputPolicy

WITHHELD = "withheld_because"
_VARIABLE = ["section", "variable"]
_KEYS = [*_VARIABLE, "level", "statistic"]


def protect_centres(rows: pd.DataFrame, policy: OutputPolicy) -> pd.DataFrame:
    """A table's centre rows (any `group` but pooled) as the centres release them, with `withheld_because`."""
    result = rows.copy().astype({c: object for c in ("n", "total", "estimate", "lower", "upper")})
    result[WITHHELD] = None
    if not policy.protect:
        return result
    for _, variable in result[result["statistic"] == COUNT].groupby(["group", *_VARIABLE], sort=False):
        total = int(variable["total"].iloc[0])
        levels = int((variable["n"] > 0).sum()) + int(total > variable["n"].sum())
        if levels > 1 and levels > policy.levels_density * total:
            result.loc[variable.index, ["n", "total", "estimate", "lower", "upper"]] = None
            result.loc[variable.index, WITHHELD] = (f"{levels} levels for {policy.count(total)} patients (more "
                                                    f"than {policy.levels_density:g} x)")
    for i, row in result[result[WITHHELD].isna()].iterrows():
        n, denominator = policy.count(row["n"]), policy.count(row["total"])
        if row["statistic"] == COUNT:
            rate = rate_row("", "", "", n or 0, denominator or 0)
            result.loc[i, ["n", "total", "estimate", "lower", "upper"]] = [n, denominator, rate["estimate"],
                                                                          rate["lower"], rate["upper"]]
        elif row["statistic"] == MEDIAN:
            result.loc[i, ["n", "total", "lower", "upper"]] = [n, denominator, None, None]
            if policy.too_small(row["n"]):
                result.loc[i, ["estimate", WITHHELD]] = [None, f"median of fewer than {policy.threshold} values"]
            else:
                result.loc[i, "estimate"] = policy.estimate(row["estimate"])
        else:
            result.loc[i, ["n", "total"]] = [n, denominator]
    return result


def pool_centres(released: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows from the centres' released rows (`group` = centre): each level's count and its variable's
    denominator summed over the centres that released them, percent and interval computed again; a median cannot
    be pooled from medians (its n is the sum, the estimate is left empty). A row says which centres withheld it."""
    frame = released.copy()
    frame["released"] = frame["n"].notna()
    keys = ["output", *_KEYS] if "output" in frame else _KEYS
    # variables in the order they first appear, and in each its levels so, "Not recorded" (which some centres
    # lack) last
    variables = {v: i for i, v in enumerate(dict.fromkeys(map(tuple, frame[keys[:-2]].to_numpy().tolist())))}
    frame["_order"] = [(variables[tuple(k)], level == NOT_RECORDED) for k, level in
                       zip(frame[keys[:-2]].to_numpy().tolist(), frame["level"], strict=True)]
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
    rows = []
    for key, level in frame.groupby(keys, sort=False, dropna=False):
        variable = frame[(frame[_VARIABLE] == level[_VARIABLE].iloc[0]).all(axis=1) & frame["released"]]
        if "output" in frame:
            variable = variable[variable["output"] == level["output"].iloc[0]]
        shown = level[level["released"]]
        withheld = sorted(set(level.loc[~level["released"], "group"]))
        total = int(variable.groupby("group")["total"].first().sum())
        n = int(pd.to_numeric(shown["n"]).sum())
        base = dict(zip(keys, key, strict=True))
        if base["statistic"] == COUNT:
            row = {**base, **rate_row(base["section"], base["variable"], base["level"], n, total)}
        else:
            row = {**base, "n": n, "total": total, "estimate": None, "lower": None, "upper": None}
        rows.append({**row, WITHHELD: f"pooled without centres {', '.join(withheld)}" if withheld else None})
    columns = ["output", *COLUMNS[1:], WITHHELD] if "output" in frame else [*COLUMNS[1:], WITHHELD]
    return pd.DataFrame(rows, columns=columns).assign(group=POOLED)


def complete_not_recorded(released: pd.DataFrame) -> pd.DataFrame:
    """The centres' released rows (`group` = centre, with `output`) with a "Not recorded" row of 0 for each
    variable some centre has one for and another has not, as the report's rows have them (`descriptive`: a
    centre with none missing shows 0, not a blank); withheld where the centre's variable is withheld."""
    keys = ["output", *_VARIABLE]
    missing = released.loc[released["level"] == NOT_RECORDED, keys].drop_duplicates()
    added = []
    for _, variable in released.merge(missing, on=keys).groupby([*keys, "group"], sort=False):
        if (variable["level"] == NOT_RECORDED).any():
            continue
        first = variable.iloc[0].to_dict()
        if pd.isna(first["n"]):
            added.append({**first, "level": NOT_RECORDED})
        else:
            zero = rate_row(first["section"], first["variable"], NOT_RECORDED, 0, int(first["total"]))
            added.append({**first, **zero, WITHHELD: None})
    return pd.concat([released, pd.DataFrame(added, columns=released.columns)], ignore_index=True) if added \
        else released


def protect_descriptive(table: pd.DataFrame, policy: OutputPolicy) -> pd.DataFrame:
    """A descriptive table (pooled and centre rows) as it may leave: the centres' rows released under the policy,
    the pooled rows their sums, and a pooled median (from the pooled rows, which only a report with every
    centre's rows has) rounded, without its range."""
    centres = protect_centres(table[table["group"] != POOLED], policy)
    if not policy.protect:
        return table.assign(**{WITHHELD: None})
    pooled = pool_centres(centres)
    exact = table[table["group"] == POOLED].reset_index(drop=True)
    medians = (pooled["statistic"] == MEDIAN).to_numpy()
    for i in pooled.index[medians]:
        match = exact[(exact[_KEYS] == pooled.loc[i, _KEYS]).all(axis=1)]
        if len(match) and not policy.too_small(match["n"].iloc[0]):
            pooled.loc[i, "estimate"] = policy.estimate(match["estimate"].iloc[0])
        else:
            pooled.loc[i, WITHHELD] = f"median of fewer than {policy.threshold} values"
    return pd.concat([pooled[["group", *COLUMNS[1:], WITHHELD]], centres], ignore_index=True)
