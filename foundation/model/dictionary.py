"""Render the data dictionary (docs/data-dictionary.md) from the canonical model, so the two never disagree."""

from __future__ import annotations

from pathlib import Path

from foundation.model.endpoints import DEFAULT_ENDPOINTS
from foundation.model.schema import Column, Table
from foundation.model.tables import TABLES

CHECKOUT = Path(__file__).resolve().parents[2]
DICTIONARY_PATH = CHECKOUT / "docs" / "data-dictionary.md"


def in_checkout() -> bool:
    """Whether this is the project's source checkout (with docs/), not an installed copy."""
    project = CHECKOUT / "pyproject.toml"
    return project.exists() and 'name = "ilp-cohort"' in project.read_text(encoding="utf-8")


def _allowed(column: Column) -> str:
    if column.allowed:
        return ", ".join(f"`{a}`" for a in column.allowed)
    bounds = [f">= {column.minimum:g}" if column.minimum is not None else "",
              f"<= {column.maximum:g}" if column.maximum is not None else ""]
    return " and ".join(b for b in bounds if b)


def _table(table: Table) -> list[str]:
    lines = [f"## `{table.name}`", "", table.meaning, "",
             f"Key: {', '.join(f'`{k}`' for k in table.key)}. Partitioned by `centre_id`.", "",
             "| column | type | unit | allowed | required | meaning |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.unit or ''} | {_allowed(c)} | {'' if c.nullable else 'yes'} "
              f"| {c.meaning} |" for c in table]
    return [*lines, ""]


def render() -> str:
    """The whole dictionary as Markdown."""
    lines = ["# Data dictionary", "",
             "Generated from `foundation/model/tables.py` by `ilp dictionary`; a test fails when this file and the "
             "code disagree. Do not edit by hand.", "",
             "Dates are calendar dates (see `foundation/model/dates.py` for partial dates); endpoint times are in "
             "months of 30.4375 days.", ""]
    for table in TABLES:
        lines += _table(table)
    lines += ["## Endpoints (default declaration)", "",
              "| endpoint | origin (first present) | events (earliest) | censored at | excluded when |",
              "|---|---|---|---|---|"]
    for e in DEFAULT_ENDPOINTS:
        excl = "; ".join(f"`{x.column}` = {x.value!r}" + (f" and no {', '.join(x.unless_present)}"
                                                        if x.unless_present else "") for x in e.exclusions)
        lines.append(f"| {e.name} ({e.label}) | {', '.join(e.origins)} | {', '.join(e.events)} "
                     f"| {e.follow_up_end} | {excl} |")
    return "\n".join(lines) + "\n"


def write(path: Path = DICTIONARY_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path
