"""SQL-on-FHIR v2 ViewDefinitions, compiled to one Spark `select` over parsed resources.

A view's rows for a resource are a Spark expression too: one struct when the view yields one row per resource,
else an array of structs that is exploded once. `forEach` is a `transform` over the collection (with
`%rowIndex` its index), nested selects are a cross product, `unionAll` a `concat`. Per-centre overrides replace
a column's path for the rows of one centre (`when(centre_id = ...)`), so every centre still runs in one plan.

Errors name the view (its `name`, else its file) and the column, and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from transforms.views.expressions import LITERAL_TYPES, Scope, Value, compile_path, member, truth
from transforms.views.fhirpath import ViewError

# The types a column can declare that are read as one Spark type (others keep the element's own type).
COLUMN_TYPES: dict[str, DataType] = {
    "boolean": BooleanType(), "integer": LongType(), "positiveInt": LongType(), "unsignedInt": LongType(),
    "integer64": LongType(), "decimal": DoubleType(), "string": StringType(), "code": StringType(),
    "id": StringType(), "uri": StringType(), "url": StringType(), "canonical": StringType(),
    "date": StringType(), "dateTime": StringType(), "instant": StringType(), "time": StringType(),
}
CONSTANT_TYPES = {"Boolean": "boolean", "Integer": "integer", "Integer64": "integer", "PositiveInt": "integer",
                  "UnsignedInt": "integer", "Decimal": "decimal"}


@dataclass(frozen=True)
class ViewDefinition:
    """A parsed ViewDefinition. `source` says where it came from, for error messages."""

    resource: str
    name: str
    select: tuple[Mapping[str, Any], ...]
    where: tuple[str, ...] = ()
    constants: Mapping[str, tuple[str, object]] = field(default_factory=dict)  # name -> (literal type, value)
    source: str = ""

    @classmethod
    def parse(cls, definition: Any, source: str = "") -> ViewDefinition:
        if not isinstance(definition, Mapping):
            raise ViewError(f"{source or 'view'}: a ViewDefinition is a JSON object")
        name = str(definition.get("name") or source or "view")
        where = f"{source}: view {name}" if source and source != name else f"view {name}"
        resource = definition.get("resource")
        if not isinstance(resource, str) or not resource:
            raise ViewError(f"{where}: `resource` (the resource type the view reads) is missing")
        select = definition.get("select")
        if not isinstance(select, list) or not select:
            raise ViewError(f"{where}: `select` is missing or empty")
        constants = {}
        for constant in definition.get("constant") or []:
            values = [(k, v) for k, v in constant.items() if k.startswith("value")]
            if not constant.get("name") or len(values) != 1:
                raise ViewError(f"{where}: constant {constant.get('name')!r} needs a name and one value[x]")
            key, value = values[0]
            constants[constant["name"]] = (CONSTANT_TYPES.get(key[5:], "string"), value)
        paths = [w.get("path") if isinstance(w, Mapping) else None for w in definition.get("where") or []]
        if any(not isinstance(p, str) for p in paths):
            raise ViewError(f"{where}: every `where` needs a FHIRPath `path`")
        view = cls(resource, name, tuple(select), tuple(p for p in paths if isinstance(p, str)), constants,
                   source or name)
        view.columns()  # names unique, every select well-formed
        return view

    @classmethod
    def load(cls, path: Path) -> ViewDefinition:
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ViewError(f"{path}: cannot read the ViewDefinition: {error}") from None
        return cls.parse(definition, str(path))

    @property
    def label(self) -> str:
        return f"{self.source}: view {self.name}" if self.source != self.name else f"view {self.name}"

    def columns(self) -> list[str]:
        """The view's column names, in output order; ViewError when two share a name or unions disagree."""
        names = _names(self.select, self.label)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ViewError(f"{self.label}: column names repeat: {', '.join(duplicates)}")
        return names

    def column(self, name: str) -> Mapping[str, Any]:
        found = _find_column(self.select, name)
        if found is None:
            raise ViewError(f"{self.label}: no column {name!r} (columns: {', '.join(self.columns())})")
        return found


def _names(selects: Sequence[Any], label: str) -> list[str]:
    names: list[str] = []
    for select in selects:
        if not isinstance(select, Mapping):
            raise ViewError(f"{label}: a select is a JSON object")
        for key in ("forEach", "forEachOrNull"):
            if key in select and not isinstance(select[key], str):
                raise ViewError(f"{label}: `{key}` is a FHIRPath expression, not {select[key]!r}")
        if "repeat" in select:
            raise ViewError(f"{label}: `repeat` is not supported")
        for column in select.get("column") or []:
            if not isinstance(column, Mapping) or not column.get("name") or not isinstance(column.get("path"), str):
                raise ViewError(f"{label}: every column needs a `name` and a FHIRPath `path`: {column!r}")
            names.append(column["name"])
        names += _names(select.get("select") or [], label)
        branches = [_names([b], label) for b in select.get("unionAll") or []]
        if branches and any(b != branches[0] for b in branches):
            raise ViewError(f"{label}: the branches of a unionAll have different columns: {branches}")
        names += branches[0] if branches else []
    return names


def _find_column(selects: Sequence[Any], name: str) -> Mapping[str, Any] | None:
    for select in selects:
        for column in select.get("column") or []:
            if column["name"] == name:
                return column
        for nested in (select.get("select") or [], select.get("unionAll") or []):
            if (found := _find_column(nested, name)) is not None:
                return found
    return None


@dataclass(frozen=True)
class Rows:
    """A select's rows for one focus: a struct (one row) or an array of structs."""

    column: Column
    names: tuple[str, ...]
    many: bool

    def fields(self, row: Column) -> list[Column]:
        return [row[n].alias(n) for n in self.names]

    def array(self) -> Column:
        return self.column if self.many else F.array(self.column)


def _product(a: Rows, b: Rows) -> Rows:
    """Every row of `a` with every row of `b`."""
    names = a.names + b.names
    if not a.many and not b.many:
        return Rows(F.struct(*a.fields(a.column), *b.fields(b.column)), names, False)
    if not a.many:
        return Rows(F.transform(b.column, lambda y: F.struct(*a.fields(a.column), *b.fields(y))), names, True)
    if not b.many:
        return Rows(F.transform(a.column, lambda x: F.struct(*a.fields(x), *b.fields(b.column))), names, True)
    return Rows(F.flatten(F.transform(a.column, lambda x: F.transform(
        b.column, lambda y: F.struct(*a.fields(x), *b.fields(y))))), names, True)


# A column's path at each centre that overrides it: centre_id -> path.
Overrides = Mapping[str, Mapping[str, str]]  # column name -> centre -> path


@dataclass
class Compiler:
    view: ViewDefinition
    scope: Scope
    overrides: Overrides = field(default_factory=dict)
    centre: Column = field(default_factory=lambda: F.col("centre_id"))

    def rows(self) -> Rows:
        parts = [self._select(s, self.scope) for s in self.view.select]
        return reduce(_product, parts)

    def condition(self) -> Column:
        conditions = [truth(self._path(p, self.scope, f"where {p!r}"), f"{self.view.label}: where {p!r}")
                      for p in self.view.where]
        return reduce(Column.__and__, conditions, F.lit(True))

    def _path(self, path: str, scope: Scope, what: str) -> Value:
        try:
            return compile_path(path, scope)
        except ViewError as error:
            raise ViewError(f"{self.view.label}: {what}: {path!r}: {error}") from None

    def _select(self, select: Mapping[str, Any], scope: Scope) -> Rows:
        path = select.get("forEach") or select.get("forEachOrNull")
        if path is None:
            return self._body(select, scope)
        collection = self._path(path, scope, f"forEach {path!r}")
        items = collection.items()
        if "forEachOrNull" in select:
            items = F.when(F.size(items) > 0, items).otherwise(F.array(F.lit(None).cast(collection.type)))
        template = self._body(select, scope.at(Value(F.lit(None).cast(collection.type), collection.type)))
        rows = F.transform(items, lambda item, index: self._body(select, replace(
            scope, focus=Value(item, collection.type), row_index=index.cast("long"))).array())
        return Rows(F.flatten(rows), template.names, True)

    def _body(self, select: Mapping[str, Any], scope: Scope) -> Rows:
        parts: list[Rows] = []
        columns = [self._column(c, scope) for c in select.get("column") or []]
        if columns:
            parts.append(Rows(F.struct(*columns), tuple(c["name"] for c in select["column"]), False))
        parts += [self._select(s, scope) for s in select.get("select") or []]
        if branches := [self._select(b, scope) for b in select.get("unionAll") or []]:
            parts.append(Rows(F.concat(*[b.array() for b in branches]), branches[0].names, True))
        if not parts:
            raise ViewError(f"{self.view.label}: a select has no columns")
        return reduce(_product, parts)

    def _column(self, column: Mapping[str, Any], scope: Scope) -> Column:
        name = column["name"]
        expression, kind = self._value(column["path"], column, scope)
        for centre, path in sorted(self.overrides.get(name, {}).items(), reverse=True):
            what = f"the override in centre {centre}'s configuration, [centres.views.{self.view.name}] {name}"
            override, overridden = self._value(path, column, scope, what)
            if overridden.simpleString() != kind.simpleString():
                raise ViewError(f"{self.view.label}: column {name} ({what}): {path!r} yields "
                                f"{overridden.simpleString()}, where the column holds {kind.simpleString()}")
            expression = F.when(self.centre == F.lit(centre), override).otherwise(expression)
        return expression.alias(name)

    def _value(self, path: str, column: Mapping[str, Any], scope: Scope, what: str = "") -> tuple[Column, DataType]:
        """The column's expression for `path`, conformed to its declared type, and the Spark type it has."""
        label = f"column {column['name']}" + (f" ({what})" if what else "")
        value = self._path(path, scope, label)
        if value.variants:
            raise ViewError(f"{self.view.label}: {label}: {path!r} is a choice element: pick its type with ofType()")
        if column.get("type") == "Coding":
            value = codings(value)
        if not column.get("collection") and value.many:  # more than one value is an error when it happens
            items = value.items()
            message = (f"{self.view.label}: {label}: {path!r} yielded more than one value: add first() or "
                       "declare the column `collection: true`")
            value = Value(F.when(F.size(items) > 1, F.raise_error(F.lit(message)).cast(value.type))
                          .otherwise(F.get(items, 0)), value.type)
        declared = COLUMN_TYPES.get(column.get("type") or "")
        if declared is not None and _atomic(value.type) and value.type != declared:
            # Servers send numbers and booleans as text: a value that is not one is null, not an error.
            value = value.map(lambda item: item.try_cast(declared), declared)
        if column.get("collection"):
            return value.items(), ArrayType(value.type)
        return value.column, value.type


def codings(value: Value) -> Value:
    """A `Coding` column's value as Codings, whatever the path yields: a CodeableConcept's codings, or a bare code
    (a `code` extension value) as a Coding without system. ConceptMaps then apply to it alike."""
    if isinstance(value.type, StructType) and "coding" in value.type.fieldNames():
        return member(value, "coding", strict=True)
    if isinstance(value.type, StringType):
        coding = StructType([StructField(n, StringType()) for n in ("system", "code", "display")])
        return value.map(lambda code: F.struct(F.lit(None).cast("string").alias("system"), code.alias("code"),
                                               F.lit(None).cast("string").alias("display")), coding)
    return value


def _atomic(kind: DataType) -> bool:
    return not isinstance(kind, StructType | ArrayType)


def constants(view: ViewDefinition) -> dict[str, Value]:
    return {name: Value(F.lit(value).cast(LITERAL_TYPES[kind]), LITERAL_TYPES[kind])
            for name, (kind, value) in view.constants.items()}


def _compiler(resources: DataFrame, view: ViewDefinition, resource: str, overrides: Overrides | None,
              strict: bool) -> Compiler:
    root = Value(F.col(resource), resources.schema[resource].dataType)
    scope = Scope(focus=root, resource=root, resource_type=view.resource, constants=constants(view), strict=strict)
    for column in overrides or {}:
        view.column(column)  # ViewError when the view has no such column
    return Compiler(view, scope, overrides or {})


def view_columns(resources: DataFrame, view: ViewDefinition, resource: str = "r",
                 overrides: Overrides | None = None) -> dict[str, Column]:
    """The columns of a view with one row per resource and no `where`, as expressions over `resources` (to compute
    beside other columns in a pass that reads the resources anyway)."""
    rows = _compiler(resources, view, resource, overrides, True).rows()
    if rows.many or view.where:
        raise ViewError(f"{view.label}: yields several rows per resource, or none for some: read it with select_view")
    return {name: rows.column[name] for name in rows.names}


def select_view(resources: DataFrame, view: ViewDefinition, keep: Sequence[str] = (), resource: str = "r",
                overrides: Overrides | None = None, strict: bool = True) -> DataFrame:
    """The view's rows from `resources` (a column `resource` holding the parsed resource), with the `keep` columns
    of each resource's rows in front. `overrides` replace columns' paths at some centres (rows carry
    `centre_id`)."""
    compiler = _compiler(resources, view, resource, overrides, strict)
    rows = compiler.rows()
    matching = resources.where((F.col(f"{resource}.resourceType") == F.lit(view.resource)) & compiler.condition())
    if rows.many:
        exploded = matching.select(*keep, F.explode(rows.column).alias("_row"))
    else:
        exploded = matching.select(*keep, rows.column.alias("_row"))
    return exploded.select(*keep, *[F.col("_row")[n].alias(n) for n in rows.names])
