"""Read Prisma schema files (`schema.prisma`, or the files of a multi-file schema folder) into blocks (pure).

The parser knows the Prisma Schema Language's shape, not its meaning: blocks (`model`, `view`, `enum`, `type`,
`datasource`, `generator`), their fields or key-value properties, and attributes with their arguments. What a
model becomes in PostgreSQL is `bot.analysis.schema_drift`'s business. It is strict: anything it cannot read
raises `PrismaSchemaError` with the file and line, so a caller never reasons from half a schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


class PrismaSchemaError(ValueError):
    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Literal:
    """A string (`is_string`), a number, or a bare word (`true`, `Desc`, an enum value)."""

    text: str
    is_string: bool = False


@dataclass(frozen=True)
class Call:
    """A function as a value: `autoincrement()`, `env("DATABASE_URL")`, `dbgenerated("gen_random_uuid()")`,
    or a field reference with arguments inside a list (`[title(sort: Desc)]`)."""

    name: str
    args: tuple[Argument, ...] = ()


@dataclass(frozen=True)
class ListValue:
    items: tuple[Value, ...]


Value = Literal | Call | ListValue


@dataclass(frozen=True)
class Argument:
    name: str | None
    value: Value


@dataclass(frozen=True)
class Attribute:
    """`@name(args)` on a field or enum value, `@@name(args)` on a block; `db.VarChar` keeps its dot."""

    name: str
    args: tuple[Argument, ...]
    line: int

    def argument(self, name: str, position: int = 0) -> Value | None:
        """The argument given by name, else the one at `position` among the unnamed ones."""
        for argument in self.args:
            if argument.name == name:
                return argument.value
        unnamed = [argument.value for argument in self.args if argument.name is None]
        return unnamed[position] if position < len(unnamed) else None

    def string(self, name: str, position: int = 0) -> str | None:
        value = self.argument(name, position)
        return value.text if isinstance(value, Literal) and value.is_string else None


@dataclass(frozen=True)
class Field:
    """A model, view or type field (`name Type? @attr`), or an enum value (then `type` is "")."""

    name: str
    type: str
    optional: bool
    list: bool
    attributes: tuple[Attribute, ...]
    line: int
    # The database type inside `Unsupported("...")`, when the field's type is that.
    unsupported: str | None = None

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass(frozen=True)
class Block:
    kind: str  # model | view | enum | type | datasource | generator
    name: str
    path: str
    line: int
    fields: tuple[Field, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    # `key = value` lines of datasource and generator blocks.
    properties: tuple[tuple[str, Value], ...] = ()

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def property(self, name: str) -> Value | None:
        return next((value for key, value in self.properties if key == name), None)


@dataclass(frozen=True)
class PrismaSchema:
    blocks: tuple[Block, ...]

    def of_kind(self, kind: str) -> list[Block]:
        return [block for block in self.blocks if block.kind == kind]


def parse_schema(files: Mapping[str, str]) -> PrismaSchema:
    """Parse every file of one schema (a multi-file schema's blocks may refer to each other across files)."""
    blocks: list[Block] = []
    for path in sorted(files):
        blocks.extend(_Parser(path, files[path]).blocks())
    # Models, views, enums and types share one namespace.
    seen: dict[str, Block] = {}
    for block in blocks:
        if block.kind in _PROPERTY_BLOCKS:
            continue
        previous = seen.get(block.name)
        if previous is not None:
            raise PrismaSchemaError(
                block.path,
                block.line,
                f"`{block.name}` is defined twice (also {previous.path}:{previous.line})",
            )
        seen[block.name] = block
    return PrismaSchema(tuple(blocks))


# ------------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<newline>\n)
    | (?P<space>[ \t\r\f\v\ufeff]+)
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)
    | (?P<atat>@@)
    | (?P<punct>[@{}()\[\],:=?.!])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


@dataclass(frozen=True)
class _Token:
    kind: str  # newline | string | number | ident | punct (atat counts as punct "@@")
    text: str
    line: int


def _tokens(path: str, text: str) -> list[_Token]:
    found: list[_Token] = []
    line, position = 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PrismaSchemaError(path, line, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "newline":
            found.append(_Token("newline", "\n", line))
            line += 1
        elif kind == "string":
            found.append(_Token("string", _unescape(value[1:-1]), line))
        elif kind in ("number", "ident"):
            found.append(_Token(kind, value, line))
        elif kind in ("atat", "punct"):
            found.append(_Token("punct", value, line))
        elif kind == "comment":
            line += value.count("\n")  # a block comment may span lines; it ends none
        position = match.end()
    found.append(_Token("newline", "\n", line))
    return found


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# ------------------------------------------------------------------------------------------------- parser

_FIELD_BLOCKS = ("model", "view", "type")
_PROPERTY_BLOCKS = ("datasource", "generator")


class _Parser:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.tokens = _tokens(path, text)
        self.index = 0
        # Newlines inside (), [] are not line ends: arguments may span lines.
        self.nesting = 0

    # -- cursor

    def position(self, start: int | None = None) -> int:
        """The index of the next token that counts: inside (), [] newlines do not."""
        index = self.index if start is None else start
        while self.nesting and self.tokens[index].kind == "newline" and index < len(self.tokens) - 1:
            index += 1
        return index

    def peek(self) -> _Token:
        return self.tokens[self.position()]

    def next(self) -> _Token:
        index = self.position()
        # The closing newline stays: reading past the end keeps answering "end of the line".
        self.index = min(index + 1, len(self.tokens) - 1)
        return self.tokens[index]

    def at(self, text: str) -> bool:
        token = self.peek()
        return token.kind == "punct" and token.text == text

    def expect(self, text: str) -> _Token:
        token = self.next()
        if token.kind != "punct" or token.text != text:
            raise self.error(token, f"expected `{text}`, found {_describe(token)}")
        return token

    def name(self) -> _Token:
        token = self.next()
        if token.kind != "ident":
            raise self.error(token, f"expected a name, found {_describe(token)}")
        return token

    def skip_newlines(self) -> None:
        while self.index < len(self.tokens) - 1 and self.tokens[self.index].kind == "newline":
            self.index += 1

    def end_of_line(self) -> None:
        token = self.next()
        if token.kind != "newline":
            raise self.error(token, f"expected the end of the line, found {_describe(token)}")

    def error(self, token: _Token, message: str) -> PrismaSchemaError:
        return PrismaSchemaError(self.path, token.line, message)

    # -- grammar

    def blocks(self) -> list[Block]:
        found: list[Block] = []
        self.skip_newlines()
        while self.index < len(self.tokens) - 1:
            found.append(self.block())
            self.skip_newlines()
        return found

    def block(self) -> Block:
        keyword = self.name()
        kind = keyword.text
        if kind not in (*_FIELD_BLOCKS, *_PROPERTY_BLOCKS, "enum"):
            raise self.error(keyword, f"unknown block `{kind}`")
        name = self.name().text
        self.expect("{")
        if not self.at("}"):  # `model A {}` is a block too
            self.end_of_line()
        fields: list[Field] = []
        attributes: list[Attribute] = []
        properties: list[tuple[str, Value]] = []
        while True:
            self.skip_newlines()
            if self.at("}"):
                self.next()
                break
            if self.peek().kind == "newline":  # end of file inside the block
                raise self.error(keyword, f"`{kind} {name}` is not closed")
            if self.at("@@"):
                attributes.append(self.attribute())
                self.end_of_line()
            elif kind in _PROPERTY_BLOCKS:
                key = self.name().text
                self.expect("=")
                properties.append((key, self.value()))
                self.end_of_line()
            elif kind == "enum":
                value = self.name()
                fields.append(Field(value.text, "", False, False, self.field_attributes(), value.line))
                self.end_of_line()
            else:
                fields.append(self.field())
        return Block(kind, name, self.path, keyword.line, tuple(fields), tuple(attributes), tuple(properties))

    def field(self) -> Field:
        name = self.name()
        type_token = self.name()
        unsupported = None
        if type_token.text == "Unsupported":
            self.expect("(")
            self.nesting += 1
            inner = self.next()
            if inner.kind != "string":
                raise self.error(inner, "expected the database type as a string in `Unsupported(...)`")
            unsupported = inner.text
            self.nesting -= 1
            self.expect(")")
        optional = is_list = False
        if self.at("["):
            self.next()
            self.expect("]")
            is_list = True
        if self.at("?"):
            self.next()
            optional = True
        if self.at("!"):  # the legacy `Type!` spelling of a required field
            self.next()
        field = Field(
            name.text, type_token.text, optional, is_list, self.field_attributes(), name.line, unsupported
        )
        self.end_of_line()
        return field

    def field_attributes(self) -> tuple[Attribute, ...]:
        found: list[Attribute] = []
        while self.at("@"):
            found.append(self.attribute())
        return tuple(found)

    def attribute(self) -> Attribute:
        marker = self.next()
        parts = [self.name().text]
        while self.at("."):
            self.next()
            parts.append(self.name().text)
        args: tuple[Argument, ...] = ()
        if self.at("("):
            args = self.arguments()
        return Attribute(".".join(parts), args, marker.line)

    def arguments(self) -> tuple[Argument, ...]:
        self.expect("(")
        self.nesting += 1
        found: list[Argument] = []
        while not self.at(")"):
            name = None
            token = self.peek()
            if token.kind == "ident" and self.following_is(":"):
                name = self.next().text
                self.expect(":")
            found.append(Argument(name, self.value()))
            if not self.at(")"):
                self.expect(",")
        self.nesting -= 1
        self.expect(")")
        return tuple(found)

    def following_is(self, text: str) -> bool:
        token = self.tokens[self.position(self.position() + 1)]
        return token.kind == "punct" and token.text == text

    def value(self) -> Value:
        token = self.peek()
        if token.kind == "string":
            self.next()
            return Literal(token.text, is_string=True)
        if token.kind == "number":
            self.next()
            return Literal(token.text)
        if self.at("["):
            self.next()
            self.nesting += 1
            items: list[Value] = []
            while not self.at("]"):
                items.append(self.value())
                if not self.at("]"):
                    self.expect(",")
            self.nesting -= 1
            self.expect("]")
            return ListValue(tuple(items))
        if token.kind == "ident":
            parts = [self.next().text]
            while self.at("."):
                self.next()
                parts.append(self.name().text)
            name = ".".join(parts)
            if self.at("("):
                return Call(name, self.arguments())
            return Literal(name)
        raise self.error(token, f"expected a value, found {_describe(token)}")


def _describe(token: _Token) -> str:
    if token.kind == "newline":
        return "the end of the line"
    if token.kind == "string":
        return f'"{token.text}"'
    return f"`{token.text}`"
