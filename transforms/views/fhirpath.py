"""FHIRPath expressions parsed into a small syntax tree, for compiling to Spark (`transforms.views.expressions`).

Why our own parser: the FHIRPath libraries for Python evaluate expressions on one resource at a time in Python;
the views need the expression's structure, to turn it into Spark column expressions that run on a cluster. The
grammar is FHIRPath's (N1): operators with its precedence, invocations, indexers, literals, `%constants`,
`$this`; what the compiler cannot translate is refused there, by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from foundation.errors import ConfigError


class ViewError(ConfigError):
    """A ViewDefinition, override or FHIRPath expression the views cannot compile: the message names where."""


@dataclass(frozen=True)
class Literal:
    value: object  # str, int, float, bool, or None for `{}`
    type: str  # string, integer, decimal, boolean, date, dateTime, time, empty


@dataclass(frozen=True)
class Identifier:
    name: str


@dataclass(frozen=True)
class Constant:
    name: str  # `%name`


@dataclass(frozen=True)
class This:
    pass


@dataclass(frozen=True)
class Member:
    base: Node
    name: str


@dataclass(frozen=True)
class Call:
    base: Node | None  # None: invoked on the focus (`where(...)`, `exists()`)
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


Node = Literal | Identifier | Constant | This | Member | Call | Index | Binary | Unary

TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>@\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T[\d:.]*(?:Z|[+-]\d{2}:\d{2})?)?|@T[\d:.]+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<constant>%(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`|'[^']*'))
  | (?P<special>\$this|\$index|\$total)
  | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
  | (?P<op><=|>=|!=|!~|\{\}|[-+*/&|=~<>().,\[\]])
""", re.VERBOSE | re.DOTALL)
ESCAPES = {"'": "'", '"': '"', "`": "`", "/": "/", "\\": "\\", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# Binary operators by precedence, lowest first (FHIRPath section 6).
LEVELS: tuple[tuple[str, ...], ...] = (("implies",), ("or", "xor"), ("and",), ("in", "contains"),
                                       ("=", "~", "!=", "!~"), ("<", ">", "<=", ">="), ("|",), ("is", "as"),
                                       ("+", "-", "&"), ("*", "/", "div", "mod"))
WORD_OPERATORS = {op for level in LEVELS for op in level if op.isalpha()}


def _unescape(text: str) -> str:
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("u")
                  and len(m.group(1)) == 5 else ESCAPES.get(m.group(1), m.group(1)), text)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise ViewError(f"cannot read {text!r} at position {position}: {text[position:position + 10]!r}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup or "", match.group()))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            found = token[1] if token else "the end"
            raise ViewError(f"in {self.text!r}: expected {value or 'more'}, found {found}")
        self.position += 1
        return token

    def at_operator(self, operators: tuple[str, ...]) -> str | None:
        token = self.peek()
        if token and token[1] in operators and (token[0] == "op" or token[1] in WORD_OPERATORS):
            return token[1]
        return None

    def expression(self, level: int = 0) -> Node:
        if level == len(LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while (op := self.at_operator(LEVELS[level])) is not None:
            self.take()
            if op in ("is", "as"):
                raise ViewError(f"in {self.text!r}: `{op}` is not supported; use ofType()")
            left = Binary(op, left, self.expression(level + 1))
        return left

    def unary(self) -> Node:
        if (op := self.at_operator(("+", "-"))) is not None:
            self.take()
            return Unary(op, self.unary())
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while (token := self.peek()) is not None and token[1] in (".", "["):
            self.take()
            if token[1] == "[":
                node = Index(node, self.expression())
                self.take("]")
                continue
            name = self.name()
            node = Call(node, name, self.arguments()) if self._at("(") else Member(node, name)
        return node

    def _at(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == value

    def name(self) -> str:
        kind, value = self.take()
        if kind != "identifier" and value not in WORD_OPERATORS:
            raise ViewError(f"in {self.text!r}: expected a name, found {value}")
        return value.strip("`")

    def arguments(self) -> tuple[Node, ...]:
        self.take("(")
        args: list[Node] = []
        while not self._at(")"):
            if args:
                self.take(",")
            args.append(self.expression())
        self.take(")")
        return tuple(args)

    def term(self) -> Node:
        kind, value = self.take()
        if kind == "string":
            return Literal(_unescape(value[1:-1]), "string")
        if kind == "number":
            return Literal(float(value), "decimal") if "." in value else Literal(int(value), "integer")
        if kind == "datetime":
            text = value[1:]
            return Literal(text, "time" if text.startswith("T") else "dateTime" if "T" in text else "date")
        if kind == "constant":
            return Constant(value[1:].strip("`'"))
        if kind == "special":
            if value != "$this":
                raise ViewError(f"in {self.text!r}: {value} is not supported")
            return This()
        if value == "{}":
            return Literal(None, "empty")
        if value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind == "identifier":
            if value in ("true", "false"):
                return Literal(value == "true", "boolean")
            return Call(None, value, self.arguments()) if self._at("(") else Identifier(value.strip("`"))
        raise ViewError(f"in {self.text!r}: unexpected {value}")


def extension_urls(node: Node) -> set[str]:
    """The URLs of the `extension('<url>')` calls in an expression."""
    found = set()
    if isinstance(node, Call) and node.name == "extension" and node.args and isinstance(node.args[0], Literal):
        found.add(str(node.args[0].value))
    for value in vars(node).values():
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, Literal | Identifier | Constant | This | Member | Call | Index | Binary | Unary):
                found |= extension_urls(child)
    return found


def parse(text: str) -> Node:
    """The syntax tree of a FHIRPath expression; ViewError when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ViewError(f"not a FHIRPath expression: {text!r}")
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek() is not None:
        raise ViewError(f"in {text!r}: unexpected {parser.peek()[1]}")  # type: ignore[index]
    return node
