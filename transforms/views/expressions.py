"""FHIRPath compiled to Spark column expressions, typed by the Spark schema of the resources they read.

A compiled expression is a `Value`: a Spark column and the type of its items, either one value (null when the
collection is empty) or an array (`many`). Knowing the schema at compile time is what makes this fast and
checkable: a path through single elements stays a plain struct access (as hand-written Spark would be), a path
through a list becomes one `transform`/`filter`/`flatten`, and a view that asks for one value where the schema
holds many, or a `where` whose criterion is not boolean, is refused before any data is read. Nothing runs as
per-row Python, so the same plan runs on a cluster.

Choice elements (`value[x]`) are a `Value` with `variants` (`valueQuantity`, `valueCodeableConcept`...) until
`ofType()` picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    NullType,
    NumericType,
    StringType,
    StructType,
)

from transforms.columns import reference_id
from transforms.views.fhirpath import (
    Binary,
    Call,
    Constant,
    Identifier,
    Index,
    Literal,
    Member,
    Node,
    This,
    Unary,
    ViewError,
    parse,
)

LITERAL_TYPES: dict[str, DataType] = {"string": StringType(), "integer": LongType(), "decimal": DoubleType(),
                                      "boolean": BooleanType(), "date": StringType(), "dateTime": StringType(),
                                      "time": StringType(), "empty": NullType()}


@dataclass(frozen=True)
class Value:
    column: Column
    type: DataType  # of each item
    many: bool = False
    variants: Mapping[str, Value] = field(default_factory=dict)  # a choice element's types, by type name

    def items(self) -> Column:
        """The collection as an array (empty, never null)."""
        if self.many:
            return F.coalesce(self.column, F.array().cast(ArrayType(self.type)))
        return F.filter(F.array(self.column), lambda item: item.isNotNull())

    def map(self, function: Callable[[Column], Column], item_type: DataType) -> Value:
        """`function` applied to each item."""
        return Value(F.transform(self.column, function) if self.many else function(self.column), item_type,
                     self.many)


def empty() -> Value:
    return Value(F.lit(None), NullType())


@dataclass(frozen=True)
class Scope:
    """What an expression is evaluated against: the focus (`$this`), the resource, the view's constants, and the
    row's index in its `forEach`. `strict`: an element the schema lacks is an error (our resources have a
    declared schema), not an empty collection (a schema inferred from examples)."""

    focus: Value
    resource: Value
    resource_type: str
    constants: Mapping[str, Value] = field(default_factory=dict)
    row_index: Column | None = None
    strict: bool = True

    def at(self, focus: Value) -> Scope:
        return replace(self, focus=focus)


def compile_path(text: str, scope: Scope) -> Value:
    return _compile(parse(text), scope)


def truth(value: Value, what: str) -> Column:
    """A boolean column of a criterion: FHIRPath's single boolean (an empty collection is false)."""
    if isinstance(value.type, NullType):
        return F.lit(False)
    if not isinstance(value.type, BooleanType) or value.many:
        raise ViewError(f"{what} does not yield one boolean")
    return F.coalesce(value.column, F.lit(False))


def _compile(node: Node, scope: Scope) -> Value:
    match node:
        case Literal(value=value, type=kind):
            return empty() if kind == "empty" else Value(F.lit(value).cast(LITERAL_TYPES[kind]), LITERAL_TYPES[kind])
        case Constant(name=name):
            return _constant(name, scope)
        case This():
            return scope.focus
        case Identifier(name=name):
            if name == scope.resource_type and scope.focus is scope.resource:
                return scope.resource
            return member(scope.focus, name, scope.strict)
        case Member(base=base, name=name):
            return member(_compile(base, scope), name, scope.strict)
        case Index(base=base, index=index):
            return _index(_compile(base, scope), _compile(index, scope))
        case Call(base=Binary(op="|", left=left, right=right), name="first", args=()):
            # `(a | b).first()` of single values is the first present: a coalesce, not an array built per row
            a, b = _compile(left, scope), _compile(right, scope)
            if not a.many and not b.many and not a.variants and not b.variants and a.type == b.type:
                return Value(F.coalesce(a.column, b.column), a.type)
            return _first(_binary("|", a, b), (), scope)
        case Call(base=base, name=name, args=args):
            focus = scope.focus if base is None else _compile(base, scope)
            return _call(focus, name, args, scope)
        case Unary(op=op, operand=operand):
            value = _compile(operand, scope)
            return value if op == "+" else replace(value, column=-value.column)
        case Binary(op=op, left=left, right=right):
            return _binary(op, _compile(left, scope), _compile(right, scope))
    raise ViewError(f"cannot compile {node}")  # pragma: no cover - every node kind is matched


def _constant(name: str, scope: Scope) -> Value:
    if name == "rowIndex":
        return Value(scope.row_index if scope.row_index is not None else F.lit(0).cast(LongType()), LongType())
    if name not in scope.constants:
        raise ViewError(f"%{name} is not a constant of the view")
    return scope.constants[name]


def member(value: Value, name: str, strict: bool) -> Value:
    """`value.name`: the element of each item, flattened."""
    if isinstance(value.type, NullType):
        return empty()
    if not isinstance(value.type, StructType):
        raise ViewError(f"`{name}` of a {value.type.simpleString()} value")
    fields = {f.name: f.dataType for f in value.type.fields}
    if name in fields:
        return _field(value, name, fields[name])
    variants = {n[len(name):]: _field(value, n, t) for n, t in fields.items()
                if n.startswith(name) and len(n) > len(name) and n[len(name)].isupper()}
    if variants:
        return Value(F.lit(None), NullType(), variants=variants)
    if strict:
        raise ViewError(f"`{name}` is not an element of the read schema here (known: {', '.join(sorted(fields))})")
    return empty()


def _field(value: Value, name: str, kind: DataType) -> Value:
    if not value.many:
        column = value.column[name]
        return Value(column, kind.elementType, True) if isinstance(kind, ArrayType) else Value(column, kind)
    # The element of every item at once (an array of it, null for an item that lacks it), nulls dropped: no
    # lambda per item (cheaper to run, and to build: a lambda costs a dozen driver-to-JVM calls).
    if isinstance(kind, ArrayType):
        return Value(F.flatten(F.array_compact(value.column[name])), kind.elementType, True)
    return Value(F.array_compact(value.column[name]), kind, True)


def _index(value: Value, index: Value) -> Value:
    if value.many:
        return Value(F.get(value.column, index.column.cast("int")), value.type)
    return Value(F.when(index.column == 0, value.column), value.type)


def _type_name(node: Node) -> str:
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Member) and isinstance(node.base, Identifier):  # FHIR.Quantity, System.String
        return node.name
    raise ViewError(f"ofType() takes a type name, not {node}")


def _arity(name: str, args: tuple[Node, ...], allowed: tuple[int, ...]) -> None:
    if len(args) not in allowed:
        raise ViewError(f"{name}() takes {' or '.join(map(str, allowed))} argument(s), not {len(args)}")


def _call(focus: Value, name: str, args: tuple[Node, ...], scope: Scope) -> Value:
    """A function of the focus collection."""
    if name in FUNCTIONS:
        function, allowed = FUNCTIONS[name]
        _arity(name, args, allowed)
        return function(focus, args, scope)
    raise ViewError(f"the function {name}() is not supported (supported: {', '.join(sorted(FUNCTIONS))})")


def _first(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(F.get(focus.column, 0), focus.type) if focus.many else focus


def _last(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(F.get(focus.column, F.size(focus.column) - 1), focus.type) if focus.many else focus


def _where(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    def keep(item: Column) -> Column:
        return truth(_compile(args[0], scope.at(Value(item, focus.type))), "where()'s criterion")

    if focus.many:
        return Value(F.filter(focus.column, keep), focus.type, True)
    return Value(F.when(keep(focus.column), focus.column), focus.type)


def _exists(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    if args:
        focus = _where(focus, args, scope)
    if focus.variants:
        present = [v.column.isNotNull() if not v.many else F.size(v.items()) > 0 for v in focus.variants.values()]
        return Value(F.greatest(*present) if len(present) > 1 else present[0], BooleanType())
    if isinstance(focus.type, NullType):
        return Value(F.lit(False), BooleanType())
    return Value(F.size(focus.items()) > 0 if focus.many else focus.column.isNotNull(), BooleanType())


def _empty(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(~_exists(focus, args, scope).column, BooleanType())


def _not(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(~focus.column, BooleanType()) if isinstance(focus.type, BooleanType) and not focus.many else \
        Value(~truth(focus, "not()'s focus"), BooleanType())


def _count(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(F.size(focus.items()).cast(LongType()), LongType())


def _of_type(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    type_name = _type_name(args[0])
    if focus.variants:
        return focus.variants.get(type_name[:1].upper() + type_name[1:], empty())
    return focus


def _extension(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    url = _compile(args[0], scope)
    extensions = member(focus, "extension", scope.strict)
    if isinstance(extensions.type, NullType):
        return extensions
    return Value(F.filter(extensions.items(), lambda e: e["url"] == url.column), extensions.type, True)


def _join(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    separator = ""
    if args:
        if not isinstance(args[0], Literal) or not isinstance(args[0].value, str):
            raise ViewError("join() takes a string literal")
        separator = args[0].value
    return Value(F.array_join(focus.items().cast(ArrayType(StringType())), separator), StringType())


def _resource_key(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return member(scope.resource, "id", scope.strict)


def _reference_key(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    """The id a reference points at, in any style (`Patient/1`, an absolute URL, `urn:uuid:1`); with a type,
    only references to that type."""
    references = member(focus, "reference", scope.strict)
    wanted = _type_name(args[0]) if args else None

    def key(reference: Column) -> Column:
        identifier = reference_id(reference)
        if wanted is None:
            return identifier
        return F.when(F.try_element_at(F.split(reference, "/"), F.lit(-2)) == F.lit(wanted), identifier)

    keys = references.map(key, StringType())
    return Value(F.filter(keys.column, lambda k: k.isNotNull()), StringType(), True) if keys.many else keys


def _distinct(focus: Value, args: tuple[Node, ...], scope: Scope) -> Value:
    return Value(F.array_distinct(focus.column), focus.type, True) if focus.many else focus


Function = Callable[[Value, tuple[Node, ...], Scope], Value]
FUNCTIONS: dict[str, tuple[Function, tuple[int, ...]]] = {
    "first": (_first, (0,)), "last": (_last, (0,)), "where": (_where, (1,)), "exists": (_exists, (0, 1)),
    "empty": (_empty, (0,)), "not": (_not, (0,)), "count": (_count, (0,)), "ofType": (_of_type, (1,)),
    "extension": (_extension, (1,)), "join": (_join, (0, 1)), "getResourceKey": (_resource_key, (0,)),
    "getReferenceKey": (_reference_key, (0, 1)), "distinct": (_distinct, (0,)),
}


def _single(value: Value, op: str) -> Column:
    if value.many:
        raise ViewError(f"`{op}` needs one value on each side, not a collection: use first() or where()")
    return value.column


def _binary(op: str, left: Value, right: Value) -> Value:
    if op in ("and", "or", "implies", "xor"):
        a, b = _single(left, op), _single(right, op)
        combined = {"and": lambda: a & b, "or": lambda: a | b, "implies": lambda: ~a | b,
                    "xor": lambda: (a | b) & ~(a & b)}[op]()
        return Value(combined, BooleanType())
    if op in ("=", "!=", "~", "!~"):
        if left.many or right.many:
            a, b = left.items(), right.items()
            equal = F.when((F.size(a) > 0) & (F.size(b) > 0), a == b)
        else:
            a, b = left.column, right.column
            equal = F.lower(a) == F.lower(b) if op in ("~", "!~") else a == b
        return Value(equal if op in ("=", "~") else ~equal, BooleanType())
    if op in ("in", "contains"):
        item, collection = (left, right) if op == "in" else (right, left)
        return Value(F.when(_single(item, op).isNotNull(), F.array_contains(collection.items(), item.column)),
                     BooleanType())
    if op == "|":
        return Value(F.array_union(left.items(), right.items()), left.type, True)
    a, b = _single(left, op), _single(right, op)
    if op in ("<", ">", "<=", ">="):
        return Value({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op], BooleanType())
    if op == "&":
        return Value(F.concat(F.coalesce(a, F.lit("")), F.coalesce(b, F.lit(""))), StringType())
    if op == "+" and isinstance(left.type, StringType):
        return Value(F.concat(a, b), StringType())
    numeric = isinstance(left.type, NumericType) and isinstance(right.type, NumericType)
    if not numeric:
        raise ViewError(f"`{op}` needs numbers on both sides")
    result = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
              "div": lambda: F.floor(a / b).cast(LongType()), "mod": lambda: a % b}[op]()
    kind = DoubleType() if op == "/" or not (isinstance(left.type, LongType) and isinstance(right.type, LongType)) \
        else left.type
    return Value(result, kind)
