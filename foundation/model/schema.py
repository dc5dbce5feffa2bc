"""Column and table types for the canonical cohort.

The canonical tables are the contract between the stages: transforms write them, expectations check them,
analytics read them. Declaring each column once, with its type, unit, allowed values and meaning, lets every
stage derive what it needs (Spark schema, Arrow schema, value-set checks, the data dictionary) from one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

ColumnType = Literal["string", "int", "double", "boolean", "date", "timestamp", "array<string>"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "array<string>": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    """One canonical column: what it holds, in which unit, and which values are allowed."""

    name: str
    type: ColumnType
    meaning: str
    unit: str | None = None
    allowed: tuple[str, ...] | None = None
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    # Kept only where the source gives it in this form (a centre recording it otherwise leaves it empty): its
    # emptiness at one centre is not a gap (foundation.completeness).
    only_where_given: bool = False

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, _ARROW_TYPES[self.type], nullable=self.nullable)

    def spark_ddl(self) -> str:
        """Spark SQL DDL fragment; Spark spells `int` as `int` and Arrow's date32 as `date`."""
        return f"`{self.name}` {self.type}" + ("" if self.nullable else " NOT NULL")


@dataclass(frozen=True)
class Table:
    """One canonical table: its key, its columns and why it exists."""

    name: str
    meaning: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"table {self.name}: duplicate columns {sorted(duplicates)}")
        missing = set(self.key) - set(names)
        if missing:
            raise ValueError(f"table {self.name}: key columns {sorted(missing)} are not columns")

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.columns])

    def spark_ddl(self) -> str:
        """DDL string accepted by `spark.createDataFrame(..., schema=ddl)` and `spark.read.schema(ddl)`."""
        return ", ".join(c.spark_ddl() for c in self.columns)
