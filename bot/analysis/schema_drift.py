"""What `schema.prisma` declares against what the migrations build (pure).

Prisma Migrate's `migrate dev` diffs the database the migrations build against the schema and writes a migration
for the difference; `migrate deploy` only runs the committed migrations. When the two disagree, production gets a
database the code does not expect. This module turns a Prisma schema into the tables, columns and enums Prisma
would create on PostgreSQL (its naming rules: `@map`/`@@map`, `@@schema`, native types, implicit many-to-many
tables), replays the migrations into zdm's schema model, and lists the differences. Anything it cannot read with
confidence (a schema that does not parse, a statement the replay could not read) makes it say nothing rather
than guess.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from bot.analysis import operations as op
from bot.analysis.parser import DEFAULT_SCHEMA, parse_statement, qualified
from bot.analysis.prisma_schema import (
    Block,
    Field,
    ListValue,
    Literal,
    PrismaSchema,
    PrismaSchemaError,
    parse_schema,
)
from bot.analysis.schema import Schema
from bot.analysis.splitter import split_statements

# ------------------------------------------------------------------------------------- where the schema is


def schema_files(root: str, files: Mapping[str, str]) -> dict[str, str] | None:
    """The files of the Prisma schema that goes with the migrations folder `root`, by repository path.

    The location configured in `prisma.config.ts` (`schema: "..."`) or `package.json` (`"prisma": {"schema":
    "..."}`), nearest to the root's parent directory first, else Prisma's default beside the migrations folder:
    `schema.prisma`, or every `*.prisma` file there (a multi-file schema). None when there is no schema or its
    location cannot be read without running code.
    """
    if not root:
        return None  # migrations at the top of the repository: the schema would sit outside it
    parent = posixpath.dirname(root)
    for directory in _upwards(parent):
        for name in ("prisma.config.ts", "package.json"):
            path = posixpath.join(directory, name) if directory else name
            if path not in files:
                continue
            configured = _configured_schema(name, files[path])
            if configured is _UNREADABLE:
                return None
            if isinstance(configured, str):
                return _schema_at(posixpath.normpath(posixpath.join(directory, configured)), files)
    default = posixpath.join(parent, "schema.prisma") if parent else "schema.prisma"
    if default in files:
        return {default: files[default]}
    return _schema_at(parent, files)


_UNREADABLE = object()
_CONFIG_SCHEMA_KEY = re.compile(r"(?<![\w.$])schema\s*:")
_STRING = r"""(?:'[^'\\$]*'|"[^"\\$]*"|`[^`\\$]*`)"""
# `schema: "prisma/schema.prisma"`, or `schema: path.join(__dirname, "prisma", "schema")` (also `resolve`, and
# `join` imported bare): the shapes Prisma's docs and most projects use. The config file's directory is the base.
_CONFIG_SCHEMA_VALUE = re.compile(
    rf"""(?<![\w.$])schema\s*:\s*(?:(?P<literal>{_STRING})|(?:path\.)?(?:join|resolve)\(\s*(?P<parts>[^()]*)\))\s*[,}}\n]"""
)
_DIRECTORY_OF_CONFIG = ("__dirname", "import.meta.dirname")


def _configured_schema(name: str, text: str) -> str | object | None:
    """The schema path a config file names, None when it names none, `_UNREADABLE` when it is computed."""
    if name == "package.json":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        prisma = data.get("prisma") if isinstance(data, dict) else None
        schema = prisma.get("schema") if isinstance(prisma, dict) else None
        return schema if isinstance(schema, str) and schema else None
    code = re.sub(r"/\*.*?\*/|(?<![:\w])//[^\n]*", "", text, flags=re.DOTALL)
    keys = _CONFIG_SCHEMA_KEY.findall(code)
    if not keys:
        return None
    values = list(_CONFIG_SCHEMA_VALUE.finditer(code))
    if len(values) != 1 or len(keys) != 1:
        return _UNREADABLE
    if values[0].group("literal"):
        return values[0].group("literal")[1:-1]
    parts = []
    for argument in (part.strip() for part in values[0].group("parts").split(",")):
        if re.fullmatch(_STRING, argument):
            parts.append(argument[1:-1])
        elif argument not in _DIRECTORY_OF_CONFIG or parts:
            return _UNREADABLE
    return posixpath.join(*parts) if parts else _UNREADABLE


def _schema_at(path: str, files: Mapping[str, str]) -> dict[str, str] | None:
    if path.endswith(".prisma"):
        return {path: files[path]} if path in files else None
    prefix = f"{path}/" if path not in ("", ".") else ""
    found = {p: text for p, text in files.items() if p.startswith(prefix) and p.endswith(".prisma")}
    return found or None


def _upwards(directory: str) -> Iterable[str]:
    while True:
        yield directory
        if not directory:
            return
        directory = posixpath.dirname(directory)


# ------------------------------------------------------------------------------------ what the schema says


@dataclass(frozen=True)
class Place:
    path: str
    line: int | None = None


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    field: str
    # None when zdm cannot tell the database type (an unknown native type): the type is then not compared.
    type: op.TypeSpec | None
    # None for a list: Prisma reads an array column as a list whether or not it is NOT NULL.
    not_null: bool | None
    place: Place


@dataclass(frozen=True)
class DeclaredTable:
    key: str
    model: str
    columns: Mapping[str, DeclaredColumn]
    place: Place
    # An implicit many-to-many table: `model` names both models ("Category and Post").
    join_table: bool = False


@dataclass(frozen=True)
class DeclaredEnum:
    key: str
    name: str
    values: Mapping[str, Place]
    place: Place


@dataclass(frozen=True)
class Declared:
    tables: Mapping[str, DeclaredTable]
    enums: Mapping[str, DeclaredEnum]
    # The database schemas Prisma manages: the datasource's `schemas`, or the one schema of the connection.
    schemas: frozenset[str]
    # `view` blocks: Prisma Migrate leaves views to the migrations' own SQL.
    views: frozenset[str] = frozenset()


def declared(files: Mapping[str, str], replayed: Schema | None = None) -> Declared:
    """The tables, columns and enums Prisma Migrate creates on PostgreSQL for a schema.

    Raises PrismaSchemaError for a schema zdm cannot read with confidence (a syntax error, no PostgreSQL
    datasource, an unknown type). Without `schemas`, Prisma manages the connection's schema: `public` unless the
    URL says `?schema=`, or, when the URL is not in the file, the one schema the migrations qualify names with.
    """
    schema = parse_schema(files)
    datasource = _datasource(schema, files)
    listed = datasource.property("schemas")
    if isinstance(listed, ListValue):
        names = frozenset(item.text for item in listed.items if isinstance(item, Literal))
        multi_schema = True
    else:
        names = frozenset({_connection_schema(datasource, replayed)})
        multi_schema = False
    return _Builder(schema, datasource, names, multi_schema).build()


def _datasource(schema: PrismaSchema, files: Mapping[str, str]) -> Block:
    datasources = schema.of_kind("datasource")
    if len(datasources) != 1:
        path = min(files) if files else "schema.prisma"
        raise PrismaSchemaError(path, 1, f"expected one datasource block, found {len(datasources)}")
    datasource = datasources[0]
    provider = datasource.property("provider")
    if not (isinstance(provider, Literal) and provider.text in ("postgresql", "postgres")):
        raise PrismaSchemaError(
            datasource.path, datasource.line, "the datasource's provider is not PostgreSQL"
        )
    return datasource


def _connection_schema(datasource: Block, replayed: Schema | None) -> str:
    url = datasource.property("url")
    if isinstance(url, Literal) and url.is_string:
        match = re.search(r"[?&]schema=([^&]+)", url.text)
        return match.group(1) if match else DEFAULT_SCHEMA
    if replayed is not None:
        schemas = {_schema_of(key) for key in (*replayed.tables, *replayed.enums)}
        if len(schemas) == 1:
            return schemas.pop()
    return DEFAULT_SCHEMA


def _schema_of(key: str) -> str:
    return key.split(".", 1)[0] if "." in key else DEFAULT_SCHEMA


# Prisma's scalar types and the PostgreSQL type Prisma Migrate gives each without a native type attribute.
_SCALAR_SQL = {
    "String": "TEXT",
    "Int": "INTEGER",
    "BigInt": "BIGINT",
    "Float": "DOUBLE PRECISION",
    "Decimal": "DECIMAL(65,30)",
    "DateTime": "TIMESTAMP(3)",
    "Boolean": "BOOLEAN",
    "Json": "JSONB",
    "Bytes": "BYTEA",
}
# `@db.<Name>(args)` native types of the PostgreSQL connector, as the SQL Prisma writes for them.
_NATIVE_SQL = {
    "Text": "TEXT",
    "Char": "CHAR",
    "VarChar": "VARCHAR",
    "Bit": "BIT",
    "VarBit": "VARBIT",
    "Uuid": "UUID",
    "Xml": "XML",
    "Inet": "INET",
    "Citext": "CITEXT",
    "Boolean": "BOOLEAN",
    "Integer": "INTEGER",
    "SmallInt": "SMALLINT",
    "Oid": "OID",
    "BigInt": "BIGINT",
    "DoublePrecision": "DOUBLE PRECISION",
    "Real": "REAL",
    "Decimal": "DECIMAL",
    "Money": "MONEY",
    "Timestamp": "TIMESTAMP",
    "Timestamptz": "TIMESTAMPTZ",
    "Date": "DATE",
    "Time": "TIME",
    "Timetz": "TIMETZ",
    "Json": "JSON",
    "JsonB": "JSONB",
    "ByteA": "BYTEA",
}


class _Builder:
    def __init__(self, schema: PrismaSchema, datasource: Block, schemas: frozenset[str], multi: bool) -> None:
        self.schema = schema
        self.native_prefix = datasource.name + "."
        self.schemas = schemas
        self.multi = multi
        self.default_schema = next(iter(schemas)) if not multi else DEFAULT_SCHEMA
        self.models = {block.name: block for block in schema.of_kind("model")}
        self.views = {block.name for block in schema.of_kind("view")}
        self.composites = {block.name for block in schema.of_kind("type")}
        self.enums = {block.name: block for block in schema.of_kind("enum")}

    def build(self) -> Declared:
        tables = {}
        for model in self.models.values():
            table = self.table(model)
            tables[table.key] = table
        for table in self.implicit_many_to_many():
            tables[table.key] = table
        enums = {}
        for block in self.enums.values():
            values = {(_mapped(value) or value.name): Place(block.path, value.line) for value in block.fields}
            key = self.key(block)
            enums[key] = DeclaredEnum(key, block.name, values, Place(block.path, block.line))
        views = frozenset(self.key(block) for block in self.schema.of_kind("view"))
        return Declared(tables, enums, self.schemas, views)

    def key(self, block: Block) -> str:
        mapped = block.attribute("map")
        name = (mapped.string("name") if mapped else None) or block.name
        return qualified(name, self.schema_name(block))

    def schema_name(self, block: Block) -> str:
        attribute = block.attribute("schema")
        if not self.multi:
            return self.default_schema
        named = attribute.string("name") if attribute else None
        if named is None:
            raise PrismaSchemaError(block.path, block.line, f"`{block.name}` has no @@schema")
        return named

    def table(self, model: Block) -> DeclaredTable:
        columns = {}
        for item in model.fields:
            if self.is_relation(item) or item.type in self.composites:
                continue  # relation fields carry no column; composite types are MongoDB's
            name = _mapped(item) or item.name
            columns[name] = DeclaredColumn(
                name,
                item.name,
                self.column_type(model, item),
                not_null=None if item.list else not item.optional,
                place=Place(model.path, item.line),
            )
        return DeclaredTable(self.key(model), model.name, columns, Place(model.path, model.line))

    def is_relation(self, item: Field) -> bool:
        return item.type in self.models or item.type in self.views

    def column_type(self, model: Block, item: Field) -> op.TypeSpec | None:
        dims = 1 if item.list else 0
        if item.unsupported is not None:
            return _with_dims(sql_type(item.unsupported), dims)
        if item.type in self.enums:
            return op.TypeSpec(self.key(self.enums[item.type]), (), dims, user_defined=True)
        if item.type not in _SCALAR_SQL:
            raise PrismaSchemaError(
                model.path, item.line, f"unknown type `{item.type}` of `{model.name}.{item.name}`"
            )
        native = next((a for a in item.attributes if a.name.startswith(self.native_prefix)), None)
        if native is None:
            return _with_dims(sql_type(_SCALAR_SQL[item.type]), dims)
        sql = _NATIVE_SQL.get(native.name[len(self.native_prefix) :])
        if sql is None:
            return None
        arguments = [argument.value for argument in native.args]
        if arguments:
            if not all(isinstance(value, Literal) and not value.is_string for value in arguments):
                return None
            sql += "(" + ",".join(value.text for value in arguments if isinstance(value, Literal)) + ")"
        return _with_dims(sql_type(sql), dims)

    def implicit_many_to_many(self) -> list[DeclaredTable]:
        """Prisma's join tables for list relations on both sides: `_AToB` (model names in order) or
        `_<relation name>`, columns "A" and "B" referencing the ids of the first and second model."""
        sides: dict[tuple[str, str, str | None], int] = {}
        for model in self.models.values():
            for item in model.fields:
                if item.list and item.type in self.models:
                    relation = item.attribute("relation")
                    if relation is not None and any(a.name == "fields" for a in relation.args):
                        continue
                    name = relation.string("name") if relation else None
                    pair = sorted((model.name, item.type))
                    key = (pair[0], pair[1], name)
                    sides[key] = sides.get(key, 0) + 1
        tables = []
        for (first, second, name), count in sorted(
            sides.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
        ):
            if count < 2:
                continue
            model_a, model_b = self.models[first], self.models[second]
            id_a, id_b = self.id_column(model_a), self.id_column(model_b)
            if id_a is None or id_b is None:
                continue  # Prisma refuses an implicit many-to-many without a single-field id
            table_name = f"_{name}" if name else f"_{first}To{second}"
            table_key = qualified(table_name, self.schema_name(model_a))
            place = Place(model_a.path, model_a.line)
            columns = {
                "A": DeclaredColumn("A", f"{first}.{id_a.field}", id_a.type, True, place),
                "B": DeclaredColumn("B", f"{second}.{id_b.field}", id_b.type, True, place),
            }
            tables.append(DeclaredTable(table_key, f"{first} and {second}", columns, place, join_table=True))
        return tables

    def id_column(self, model: Block) -> DeclaredColumn | None:
        for item in model.fields:
            if item.attribute("id") is not None:
                return self.table(model).columns.get(_mapped(item) or item.name)
        return None


def _mapped(item: Field) -> str | None:
    attribute = item.attribute("map")
    return attribute.string("name") if attribute else None


def _with_dims(spec: op.TypeSpec | None, dims: int) -> op.TypeSpec | None:
    if spec is None or not dims:
        return spec
    return op.TypeSpec(spec.base, spec.params, spec.array_dims + dims, spec.user_defined)


@lru_cache(maxsize=256)
def sql_type(sql: str) -> op.TypeSpec | None:
    """A PostgreSQL type written as SQL, read by the migration parser itself so both sides agree."""
    text = f'CREATE TABLE "t" ("c" {sql});'
    for raw in split_statements(text):
        for operation in parse_statement(raw, text).operations:
            if isinstance(operation, op.CreateTable) and len(operation.columns) == 1:
                return operation.columns[0].type
    return None


# Types that mean the same column in PostgreSQL: `serial` is an integer with a sequence default (Prisma writes it
# for `@default(autoincrement())`), and a time or character type without a modifier has PostgreSQL's default.
_SERIAL_BASE = {
    "serial": "int4",
    "serial4": "int4",
    "bigserial": "int8",
    "serial8": "int8",
    "smallserial": "int2",
    "serial2": "int2",
}
_DEFAULT_MODIFIER = {
    "timestamp": (6,),
    "timestamptz": (6,),
    "time": (6,),
    "timetz": (6,),
    "bpchar": (1,),
    "bit": (1,),
}


def normalised(spec: op.TypeSpec) -> op.TypeSpec:
    base = _SERIAL_BASE.get(spec.base, spec.base)
    params = spec.params or _DEFAULT_MODIFIER.get(base, ())
    return op.TypeSpec(base, params, spec.array_dims, spec.user_defined)


def same_type(declared: op.TypeSpec, built: op.TypeSpec) -> bool:
    expected, got = normalised(declared), normalised(built)
    if (expected.base, expected.params, expected.array_dims) == (got.base, got.params, got.array_dims):
        return True
    # sqlglot reads a quoted type named like a built-in one (an enum "Interval", "Date", "Json") as the built-in.
    return (
        expected.user_defined
        and not got.user_defined
        and not got.params
        and expected.array_dims == got.array_dims
        and expected.base.rsplit(".", 1)[-1].lower() == got.base
    )


_TYPE_WORDS = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "char",
    "numeric": "decimal",
}


def type_text(spec: op.TypeSpec) -> str:
    """A type as a reader writes it: `integer`, `varchar(50)`, `timestamp(3)`, `"Role"[]`."""
    base = _TYPE_WORDS.get(spec.base, spec.base)
    if spec.user_defined:
        base = ".".join(f'"{part}"' for part in spec.base.split(".", 1))
    text = base + ("(" + ",".join(str(p) for p in spec.params) + ")" if spec.params else "")
    return text + "[]" * spec.array_dims


# -------------------------------------------------------------------------------- what the migrations built


@dataclass(frozen=True)
class Replayed:
    schema: Schema
    # Statements the replay could not read: what they did to the schema is unknown.
    unreadable: tuple[Place, ...]
    # Where each table, column and enum was last created, altered or renamed: ("table", key, ""),
    # ("column", key, column), ("enum", key, "").
    origins: Mapping[tuple[str, str, str], Place] = field(default_factory=dict)
    # The last migration replayed: where to point at what the replay cannot place.
    last_migration: Place | None = None
    # Enums whose CREATE TYPE the replay saw: of the others (values added to a type created elsewhere) it knows
    # only some values.
    defined_enums: frozenset[str] = frozenset()

    def origin(self, table: str, column: str = "") -> Place | None:
        return (
            self.origins.get(("column", table, column)) if column else self.origins.get(("table", table, ""))
        )


def replay(migrations: Sequence[tuple[str, str]]) -> Replayed:
    """Replay (path, text) migrations in order, noting where each object comes from."""
    schema = Schema()
    unreadable: list[Place] = []
    origins: dict[tuple[str, str, str], Place] = {}
    defined_enums: set[str] = set()
    for path, text in migrations:
        schema.begin_file()
        for raw in split_statements(text):
            place = Place(path, raw.line_start)
            for operation in parse_statement(raw, text).operations:
                if isinstance(operation, op.Unrecognized):
                    unreadable.append(place)
                elif isinstance(operation, op.CreateEnum):
                    defined_enums.add(operation.name)
                elif isinstance(operation, op.RenameType) and operation.name in defined_enums:
                    defined_enums.add(operation.new_name)
                _note_origin(operation, place, origins)
                schema.apply(operation)
    last = Place(migrations[-1][0]) if migrations else None
    return Replayed(schema, tuple(unreadable), origins, last, frozenset(defined_enums & set(schema.enums)))


def _note_origin(operation: op.Operation, place: Place, origins: dict[tuple[str, str, str], Place]) -> None:
    if isinstance(operation, op.CreateTable):
        origins[("table", operation.name, "")] = place
        for spec in operation.columns:
            origins[("column", operation.name, spec.name)] = place
    elif isinstance(operation, op.RenameTable):
        origins[("table", operation.new_name, "")] = place
        for (kind, table, column_name), where in list(origins.items()):
            if kind == "column" and table == operation.name:
                origins[("column", operation.new_name, column_name)] = where
    elif isinstance(operation, op.AddColumn):
        origins[("column", operation.on, operation.column.name)] = place
    elif isinstance(operation, op.RenameColumn):
        origins[("column", operation.on, operation.new_name)] = place
    elif isinstance(operation, (op.AlterColumnType, op.SetNotNull, op.DropNotNull)):
        origins[("column", operation.on, operation.column)] = place
    elif isinstance(operation, op.CreateEnum):
        origins[("enum", operation.name, "")] = place
    elif isinstance(operation, (op.AddEnumValue, op.RenameEnumValue)):
        origins[("enum", operation.type_name, "")] = place
    elif isinstance(operation, op.RenameType):
        origins[("enum", operation.new_name, "")] = place


# --------------------------------------------------------------------------------------------- differences


@dataclass(frozen=True)
class Drift:
    """One disagreement. `kind` is one of: missing-table, extra-table, missing-column, extra-column, type,
    nullability, missing-enum, extra-enum, missing-value, extra-value. "missing" means declared by the schema
    and absent from what the migrations build; "extra" the reverse."""

    kind: str
    table: str
    column: str = ""
    # What the schema says and what the migrations built, as text (types, values); "" when not applicable.
    declared: str = ""
    built: str = ""
    # The model and field (or enum) of the schema, when it declares the object; for an implicit many-to-many
    # table, `model` names both models ("Category and Post") and `join_table` is set.
    model: str = ""
    field_name: str = ""
    place: Place = field(default_factory=lambda: Place(""), compare=False)
    join_table: bool = False

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        """What makes two drifts the same one at two commits (their places may have moved)."""
        return (self.kind, self.table, self.column, self.declared, self.built)


def differences(declared_schema: Declared, replayed: Replayed, fallback: Place) -> list[Drift]:
    """Every difference between the schema and the replay; `fallback` is where to point when the replay does
    not know where an object came from (the last migration)."""
    built = replayed.schema
    found: list[Drift] = []

    def managed(key: str) -> bool:
        return _schema_of(key) in declared_schema.schemas

    for key, table in declared_schema.tables.items():
        actual = built.tables.get(key)
        if actual is None:
            found.append(
                Drift("missing-table", key, model=table.model, place=table.place, join_table=table.join_table)
            )
            continue
        if not actual.complete:
            continue
        for name, column in table.columns.items():
            built_column = actual.columns.get(name)
            if built_column is None:
                found.append(
                    Drift(
                        "missing-column",
                        key,
                        name,
                        model=table.model,
                        field_name=column.field,
                        place=column.place,
                        join_table=table.join_table,
                    )
                )
                continue
            if (
                column.type is not None
                and built_column.type is not None
                and not same_type(column.type, built_column.type)
            ):
                found.append(
                    Drift(
                        "type",
                        key,
                        name,
                        type_text(normalised(column.type)),
                        type_text(normalised(built_column.type)),
                        table.model,
                        column.field,
                        column.place,
                    )
                )
            if column.not_null is not None and column.not_null != built_column.not_null:
                found.append(
                    Drift(
                        "nullability",
                        key,
                        name,
                        "required" if column.not_null else "optional",
                        "NOT NULL" if built_column.not_null else "nullable",
                        table.model,
                        column.field,
                        column.place,
                    )
                )
        for name in actual.columns:
            if name not in table.columns:
                place = replayed.origin(key, name) or replayed.origin(key) or fallback
                found.append(
                    Drift(
                        "extra-column", key, name, model=table.model, place=place, join_table=table.join_table
                    )
                )
    for key, actual in built.tables.items():
        if (
            key in declared_schema.tables
            or key in declared_schema.views
            or not managed(key)
            or not actual.complete
            or actual.partition_of
        ):
            continue
        found.append(Drift("extra-table", key, place=replayed.origin(key) or fallback))
    for key, enum in declared_schema.enums.items():
        values = built.enums.get(key)
        if values is None:
            found.append(Drift("missing-enum", key, model=enum.name, place=enum.place))
            continue
        if key not in replayed.defined_enums:
            continue
        # One drift per value: each is its own change, and the one that was already missing at base stays known.
        for value, place in enum.values.items():
            if value not in values:
                found.append(Drift("missing-value", key, declared=value, model=enum.name, place=place))
        origin = replayed.origins.get(("enum", key, "")) or fallback
        for value in values:
            if value not in enum.values:
                found.append(Drift("extra-value", key, built=value, model=enum.name, place=origin))
    for key in built.enums:
        if key not in declared_schema.enums and managed(key) and key in replayed.defined_enums:
            found.append(Drift("extra-enum", key, place=replayed.origins.get(("enum", key, "")) or fallback))
    return found
