"""schema-drift: the schema Prisma would build against the one the migrations build.

The fixtures are schemas and the SQL Prisma's own schema engine wrote for them (tests/fixtures/schema_drift): the
replay of that SQL must match its schema exactly, and every single edit of a schema made without its migration
must be reported, as the kind of drift it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from bot.analysis import operations as op
from bot.analysis.history import RootHistory
from bot.analysis.prisma_schema import Block, Call, Field, ListValue, Literal, Value, parse_schema
from bot.analysis.schema_drift import (
    Place,
    Replayed,
    declared,
    differences,
    replay,
    same_type,
    schema_files,
    sql_type,
)
from bot.rules import HISTORY_RULES
from bot.rules.base import HistoryExample
from bot.rules.schema_drift import RULE, check_history, new_drifts

FIXTURES = Path(__file__).parent / "fixtures" / "schema_drift"
ROOT = "prisma/migrations"
SCHEMA = "prisma/schema.prisma"


@dataclass(frozen=True)
class Version:
    case: str
    number: int

    @property
    def id(self) -> str:
        return f"{self.case}-v{self.number}"

    @property
    def schema(self) -> str:
        return (FIXTURES / self.case / f"v{self.number}.prisma").read_text()

    @property
    def migrations(self) -> dict[str, str]:
        """Every migration up to this version, as Prisma's folders."""
        return {
            f"2024010{n}000000_v{n}": (FIXTURES / self.case / f"v{n}.sql").read_text()
            for n in range(1, self.number + 1)
        }


VERSIONS = [
    Version(case.name, int(path.stem[1:]))
    for case in sorted(p for p in FIXTURES.iterdir() if p.is_dir())
    for path in sorted(case.glob("v*.prisma"))
]


@cache
def replayed(version: Version) -> Replayed:
    migrations = version.migrations
    return replay([(f"{ROOT}/{name}/migration.sql", migrations[name]) for name in sorted(migrations)])


def drift_kinds(version: Version, schema_text: str) -> list[tuple[str, str, str]]:
    replay_result = replayed(version)
    found = differences(
        declared({SCHEMA: schema_text}, replay_result.schema), replay_result, Place("fallback")
    )
    return sorted((d.kind, d.table, d.column) for d in found)


# ------------------------------------------------------------------------------- what Prisma writes matches


def test_there_are_fixtures_for_every_case() -> None:
    assert {v.case for v in VERSIONS} == {"shop", "multischema", "relations"}
    assert len(VERSIONS) == 7


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.id)
def test_the_sql_prisma_writes_replays_to_exactly_its_schema(version: Version) -> None:
    assert replayed(version).unreadable == ()
    assert drift_kinds(version, version.schema) == []


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.id)
def test_a_whole_history_in_step_with_its_schema_is_not_reported(version: Version) -> None:
    previous = Version(version.case, version.number - 1)
    base = previous.migrations if version.number > 1 else {}
    base_files = {SCHEMA: previous.schema} if version.number > 1 else {}
    history = RootHistory(ROOT, base, version.migrations, base_files, {SCHEMA: version.schema})
    assert check_history(history) == []


@pytest.mark.parametrize("version", [v for v in VERSIONS if v.number > 1], ids=lambda v: v.id)
def test_a_schema_change_without_its_migration_is_reported(version: Version) -> None:
    """The real edit between two versions, committed without the SQL Prisma wrote for it."""
    previous = Version(version.case, version.number - 1)
    history = RootHistory(
        ROOT, previous.migrations, previous.migrations, {SCHEMA: previous.schema}, {SCHEMA: version.schema}
    )
    assert new_drifts(history)


@pytest.mark.parametrize("version", [v for v in VERSIONS if v.number > 1], ids=lambda v: v.id)
def test_a_migration_without_its_schema_change_is_reported(version: Version) -> None:
    """The SQL Prisma wrote for the next version, committed with the schema left as it was."""
    previous = Version(version.case, version.number - 1)
    files = {SCHEMA: previous.schema}
    history = RootHistory(ROOT, previous.migrations, version.migrations, files, files)
    found = new_drifts(history)
    assert found
    new_migration = f"{ROOT}/{sorted(version.migrations)[-1]}/migration.sql"
    assert all(d.place.path in (new_migration, SCHEMA) for d in found)


# ------------------------------------------------------------------------------ every single edit is caught


@dataclass(frozen=True)
class Edit:
    what: str
    schema: str
    expected: list[tuple[str, str, str]]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _insert_after(text: str, line: int, new_line: str) -> str:
    lines = _lines(text)
    return "\n".join([*lines[:line], new_line, *lines[line:]])


def _replace_line(text: str, line: int, new_line: str | None) -> str:
    lines = _lines(text)
    return "\n".join([*lines[: line - 1], *([new_line] if new_line is not None else []), *lines[line:]])


def _names_in(value: Value) -> Iterator[str]:
    if isinstance(value, Literal) and not value.is_string:
        yield value.text
    elif isinstance(value, ListValue):
        for item in value.items:
            yield from _names_in(item)
    elif isinstance(value, Call):
        yield value.name


class _Editor:
    """Single edits of one schema version, with the drift each must cause."""

    def __init__(self, version: Version) -> None:
        self.text = version.schema
        self.schema = parse_schema({SCHEMA: self.text})
        self.models = {b.name: b for b in self.schema.of_kind("model")}
        self.enums = {b.name: b for b in self.schema.of_kind("enum")}
        replay_result = replayed(version)
        self.declared = declared({SCHEMA: self.text}, replay_result.schema)
        self.table_of = {t.model: t.key for t in self.declared.tables.values()}
        self.enum_key = {e.name: e.key for e in self.declared.enums.values()}

    def column(self, item: Field) -> str:
        mapped = item.attribute("map")
        return (mapped.string("name") if mapped else None) or item.name

    def plain_fields(self, model: Block) -> Iterator[Field]:
        """Scalar fields no block attribute, relation or implicit many-to-many depends on."""
        used: set[str] = set()
        for attribute in model.attributes:
            for argument in attribute.args:
                used.update(_names_in(argument.value))
        for item in model.fields:
            relation = item.attribute("relation")
            for argument in relation.args if relation else ():
                if argument.name == "fields":
                    used.update(_names_in(argument.value))
        for item in model.fields:
            if item.type in self.models or item.name in used or item.attribute("id") is not None:
                continue
            yield item

    def added_fields(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            schema = _insert_after(self.text, model.line, "  zdmAdded String?")
            yield Edit(
                f"add a field to {name}", schema, [("missing-column", self.table_of[name], "zdmAdded")]
            )

    def removed_fields(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            for item in self.plain_fields(model):
                yield Edit(
                    f"remove {name}.{item.name}",
                    _replace_line(self.text, item.line, None),
                    [("extra-column", self.table_of[name], self.column(item))],
                )

    def toggled_optional(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            for item in self.plain_fields(model):
                if item.list:
                    continue
                line = _lines(self.text)[item.line - 1]
                pattern = rf"^(\s*{item.name}\s+\S+?)(\?)?(?=\s|$)"
                edited = re.sub(pattern, lambda m: m.group(1) + ("" if m.group(2) else "?"), line, count=1)
                assert edited != line, line
                yield Edit(
                    f"make {name}.{item.name} {'required' if item.optional else 'optional'}",
                    _replace_line(self.text, item.line, edited),
                    [("nullability", self.table_of[name], self.column(item))],
                )

    def changed_types(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            for item in self.plain_fields(model):
                if item.unsupported is not None or any(a.name.startswith("db.") for a in item.attributes):
                    continue
                if item.type in self.enums or item.attribute("default") is not None:
                    continue  # a default must stay valid for the new type
                new_type = "Int" if item.type == "String" else "String"
                line = _lines(self.text)[item.line - 1]
                edited = re.sub(rf"^(\s*{item.name}\s+){item.type}", rf"\g<1>{new_type}", line, count=1)
                yield Edit(
                    f"change {name}.{item.name} to {new_type}",
                    _replace_line(self.text, item.line, edited),
                    [("type", self.table_of[name], self.column(item))],
                )

    def mapped_fields(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            for item in model.fields:
                if item.type in self.models or item.attribute("map") is not None:
                    continue
                line = _lines(self.text)[item.line - 1]
                edited = re.sub(
                    rf"^(\s*{item.name}\s+(?:Unsupported\([^)]*\)\S*|\S+))",
                    r'\1 @map("zdm_renamed")',
                    line,
                    count=1,
                )
                table = self.table_of[name]
                expected = sorted(
                    [("missing-column", table, "zdm_renamed"), ("extra-column", table, item.name)]
                )
                yield Edit(
                    f"rename {name}.{item.name} with @map",
                    _replace_line(self.text, item.line, edited),
                    expected,
                )

    def mapped_models(self) -> Iterator[Edit]:
        for name, model in self.models.items():
            if model.attribute("map") is not None:
                continue
            old = self.table_of[name]
            new = old.rsplit(".", 1)[0] + ".zdm_mapped" if "." in old else "zdm_mapped"
            schema = _insert_after(self.text, model.line, '  @@map("zdm_mapped")')
            yield Edit(
                f"rename {name}'s table with @@map",
                schema,
                sorted([("missing-table", new, ""), ("extra-table", old, "")]),
            )

    def added_models(self) -> Iterator[Edit]:
        multi = self.declared.schemas != frozenset({"public"})
        in_schema = '\n  @@schema("public")' if multi else ""
        schema = self.text + f"\nmodel ZdmAdded {{\n  id Int @id{in_schema}\n}}\n"
        yield Edit("add a model", schema, [("missing-table", "ZdmAdded", "")])

    def added_enum_values(self) -> Iterator[Edit]:
        for name, enum in self.enums.items():
            yield Edit(
                f"add a value to {name}",
                _insert_after(self.text, enum.line, "  ZDM_ADDED"),
                [("missing-value", self.enum_key[name], "")],
            )

    def removed_enum_values(self) -> Iterator[Edit]:
        for name, enum in self.enums.items():
            last = enum.fields[-1]
            yield Edit(
                f"remove {name}.{last.name}",
                _replace_line(self.text, last.line, None),
                [("extra-value", self.enum_key[name], "")],
            )


EDITS: dict[str, Callable[[_Editor], Iterator[Edit]]] = {
    "add a field": _Editor.added_fields,
    "remove a field": _Editor.removed_fields,
    "make optional or required": _Editor.toggled_optional,
    "change a type": _Editor.changed_types,
    "rename a column with @map": _Editor.mapped_fields,
    "rename a table with @@map": _Editor.mapped_models,
    "add a model": _Editor.added_models,
    "add an enum value": _Editor.added_enum_values,
    "remove an enum value": _Editor.removed_enum_values,
}
EDITED = [(version, kind) for version in VERSIONS for kind in EDITS]


@pytest.mark.parametrize(("version", "kind"), EDITED, ids=[f"{v.id}-{k}" for v, k in EDITED])
def test_every_single_edit_without_its_migration_is_reported(version: Version, kind: str) -> None:
    edits = list(EDITS[kind](_Editor(version)))
    if kind != "add a model":
        assert edits or kind in ("add an enum value", "remove an enum value"), "no field to edit"
    wrong = []
    for edit in edits:
        parse_schema({SCHEMA: edit.schema})  # the edit is still a schema
        found = drift_kinds(version, edit.schema)
        if found != edit.expected:
            wrong.append(f"{edit.what}: expected {edit.expected}, found {found}")
    assert not wrong, "\n".join(wrong)


def test_the_edits_cover_hundreds_of_cases() -> None:
    counted = sum(len(list(EDITS[kind](_Editor(version)))) for version, kind in EDITED)
    assert counted > 500


def test_an_edit_is_reported_through_the_rule_at_the_field_line() -> None:
    version = Version("shop", 3)
    text = version.schema
    user = next(b for b in parse_schema({SCHEMA: text}).of_kind("model") if b.name == "User")
    edited = _insert_after(text, user.line, "  nickname2 String?")
    migrations = version.migrations
    history = RootHistory(ROOT, migrations, migrations, {SCHEMA: text}, {SCHEMA: edited})
    [(path, line, message, fix)] = check_history(history)
    assert (path, line) == (SCHEMA, user.line + 1)
    assert 'Field `User.nickname2` declares column "users"."nickname2", but no migration adds it' in message
    assert "npx prisma migrate dev --create-only" in fix


@pytest.mark.parametrize(
    ("declared_sql", "built_sql", "same"),
    [
        ("INTEGER", "SERIAL", True),
        ("INTEGER", "serial4", True),
        ("BIGINT", "BIGSERIAL", True),
        ("SMALLINT", "SMALLSERIAL", True),
        ("TIMESTAMP(6)", "TIMESTAMP", True),
        ("TIMESTAMPTZ(6)", "timestamp with time zone", True),
        ("TIME(6)", "TIME", True),
        ("CHAR(1)", "CHAR", True),
        ("VARCHAR(10)", "character varying(10)", True),
        ("DOUBLE PRECISION", "float8", True),
        ("DECIMAL(65,30)", "numeric(65, 30)", True),
        ('"Role"', '"public"."Role"', True),
        ('"Role"[]', '"Role"[]', True),
        ("TIMESTAMP(3)", "TIMESTAMP", False),
        ("VARCHAR(10)", "VARCHAR(20)", False),
        ("VARCHAR", "TEXT", False),
        ("DECIMAL(65,30)", "DECIMAL", False),
        ("INTEGER", "BIGINT", False),
        ("JSONB", "JSON", False),
        ("TEXT[]", "TEXT", False),
        ('"Role"', '"Kind"', False),
    ],
)
def test_types_compare_as_postgresql_stores_them(declared_sql: str, built_sql: str, same: bool) -> None:
    expected, built = sql_type(declared_sql), sql_type(built_sql)
    assert expected is not None and built is not None
    assert same_type(expected, built) is same


def test_an_enum_named_like_a_built_in_type_matches_its_columns() -> None:
    # sqlglot reads the quoted "Interval" of a migration as the built-in interval type.
    enum = sql_type('"Interval"')
    assert enum is not None and not enum.user_defined
    assert same_type(op.TypeSpec("Interval", user_defined=True), enum)
    assert not same_type(op.TypeSpec("Interval", user_defined=True), op.TypeSpec("date"))


# ------------------------------------------------------------------------------------------ base and head

_DATASOURCE = 'datasource db {\n  provider = "postgresql"\n}\n\n'
_USER_SQL = 'CREATE TABLE "User" (\n    "id" SERIAL NOT NULL,\n    "email" TEXT NOT NULL,\n    CONSTRAINT "User_pkey" PRIMARY KEY ("id")\n);\n'
_USER = "model User {\n  id    Int    @id @default(autoincrement())\n  email String\n}\n"
_INIT = {"20240101000000_init": _USER_SQL}


def _history(
    head_migrations: dict[str, str] | None = None,
    head_schema: str | None = None,
    *,
    base_migrations: dict[str, str] | None = None,
    base_schema: str | None = _DATASOURCE + _USER,
    head_files: dict[str, str] | None = None,
) -> RootHistory:
    base = _INIT if base_migrations is None else base_migrations
    head = base if head_migrations is None else head_migrations
    base_files = {SCHEMA: base_schema} if base_schema is not None else {}
    if head_files is None:
        head_files = {SCHEMA: head_schema if head_schema is not None else (base_schema or "")}
    return RootHistory(ROOT, base, head, base_files, head_files)


_WITH_NAME = _DATASOURCE + _USER.replace("  email String\n", "  email String\n  name  String?\n")


def test_a_field_added_without_a_migration_is_reported() -> None:
    [(path, line, message, _)] = check_history(_history(head_schema=_WITH_NAME))
    assert (path, line) == (SCHEMA, 8)
    assert "`User.name`" in message


def test_a_field_added_with_its_migration_is_not_reported() -> None:
    head = _INIT | {"20240201000000_name": 'ALTER TABLE "User" ADD COLUMN "name" TEXT;\n'}
    assert check_history(_history(head, _WITH_NAME)) == []


def test_a_migration_creating_what_the_schema_does_not_declare_points_at_the_migration() -> None:
    head = _INIT | {"20240201000000_audit": '-- CreateTable\nCREATE TABLE "Audit" ("id" INTEGER NOT NULL);\n'}
    [(path, line, message, fix)] = check_history(_history(head))
    assert (path, line) == (f"{ROOT}/20240201000000_audit/migration.sql", 2)
    assert 'The migrations create table "Audit", but the schema declares no model for it' in message
    assert "prisma db pull" in fix


def test_drift_that_existed_at_base_is_not_blamed_on_the_change() -> None:
    drifted = _DATASOURCE + _USER.replace("  email String\n", "  email String\n  legacy Int\n")
    unrelated = _INIT | {"20240201000000_index": 'CREATE INDEX "User_email_idx" ON "User"("email");\n'}
    history = _history(unrelated, drifted, base_schema=drifted)
    assert check_history(history) == []
    # ...while a new drift in the same change still is.
    worse = drifted.replace("  legacy Int\n", "  legacy Int\n  other Int\n")
    [(_, _, message, _)] = check_history(_history(unrelated, worse, base_schema=drifted))
    assert "`User.other`" in message


def test_a_change_that_touches_neither_migrations_nor_schema_is_not_judged() -> None:
    drifted = _DATASOURCE + _USER.replace("  email String\n", "  email String\n  legacy Int\n")
    assert check_history(_history(base_schema=drifted)) == []


def test_a_new_root_with_a_new_schema_is_judged_whole() -> None:
    history = _history(_INIT, _WITH_NAME, base_migrations={}, base_schema=None)
    [(_, _, message, _)] = check_history(history)
    assert "`User.name`" in message


def test_type_nullability_and_enum_drift_messages() -> None:
    schema = _DATASOURCE + (
        "model User {\n  id    Int    @id @default(autoincrement())\n  email String? @db.VarChar(10)\n"
        "  role  Role\n}\n\nenum Role {\n  USER\n  ADMIN\n}\n"
    )
    base_schema = _DATASOURCE + _USER
    head = _INIT | {
        "20240201000000_role": (
            "CREATE TYPE \"Role\" AS ENUM ('USER', 'OWNER');\n"
            'ALTER TABLE "User" ADD COLUMN "role" "Role" NOT NULL;\n'
        )
    }
    messages = sorted(
        message for _, _, message, _ in check_history(_history(head, schema, base_schema=base_schema))
    )
    assert messages == [
        'Enum `Role` declares value `ADMIN`, which no migration adds to type "Role": writing it fails '
        "(invalid input value for enum).",
        'Field `User.email` is `varchar(10)` in the schema, but the migrations make column "User"."email" '
        "`text`: Prisma Client reads and writes it as the schema says, and the next `prisma migrate dev` writes a "
        "type change for it (which can rewrite the table).",
        'Field `User.email` is optional in the schema, but the migrations make column "User"."email" NOT NULL: '
        "writes that leave the field out fail with a NOT NULL violation.",
        'The migrations give enum type "Role" value `OWNER`, which enum `Role` does not declare: Prisma Client '
        "fails on rows that hold it, and the next `prisma migrate dev` rebuilds the type without it.",
    ]


# ------------------------------------------------------------------------------- when zdm cannot be sure


def test_an_unreadable_statement_silences_the_rule() -> None:
    head = _INIT | {
        "20240201000000_dynamic": "DO $$ BEGIN EXECUTE 'ALTER TABLE \"User\" ADD COLUMN x int'; END $$;\n"
    }
    assert check_history(_history(head, _WITH_NAME)) == []


def test_a_schema_that_does_not_parse_silences_the_rule() -> None:
    assert (
        check_history(_history(head_schema=_WITH_NAME.replace("name  String?", "name String? @default(")))
        == []
    )


def test_a_provider_other_than_postgresql_silences_the_rule() -> None:
    mysql = _WITH_NAME.replace('"postgresql"', '"mysql"')
    assert (
        check_history(_history(head_schema=mysql, base_schema=mysql.replace("  name  String?\n", ""))) == []
    )


def test_an_unknown_base_silences_the_rule() -> None:
    # Migrations at base, but no schema zdm can find there: what drifted before is unknown.
    assert check_history(_history(head_schema=_WITH_NAME, base_schema=None)) == []


def test_a_table_the_replay_never_saw_defined_is_not_compared_column_by_column() -> None:
    head = _INIT | {"20240201000000_rename": 'ALTER TABLE "Legacy" RENAME TO "Account";\n'}
    schema = _WITH_NAME + "\nmodel Account {\n  id Int @id\n}\n"
    assert check_history(_history(head, schema.replace("  name  String?\n", ""))) == []


def test_values_added_to_an_enum_the_migrations_never_created_are_not_compared() -> None:
    # The type came from outside the migrations (a baseline made by hand): its other values are unknown.
    head = _INIT | {"20240201000000_role": "ALTER TYPE \"Role\" ADD VALUE 'OWNER';\n"}
    schema = _DATASOURCE + _USER + "\nenum Role {\n  USER\n  OWNER\n}\n"
    assert check_history(_history(head, schema)) == []


def test_tables_outside_the_schemas_prisma_manages_are_not_reported() -> None:
    head = _INIT | {"20240201000000_audit": 'CREATE TABLE "audit"."log" ("id" INTEGER NOT NULL);\n'}
    assert check_history(_history(head)) == []


def test_a_connection_schema_read_from_the_migrations() -> None:
    """Without `schemas`, Prisma manages the connection's schema; when the URL is not in the file, the one
    schema the migrations qualify their names with is it."""
    sql = _USER_SQL.replace('TABLE "User"', 'TABLE "app"."User"')
    schema = _DATASOURCE.replace("}", '  url      = env("DATABASE_URL")\n}') + _USER
    history = _history({"20240101000000_init": sql}, schema, base_migrations={}, base_schema=None)
    assert check_history(history) == []


# -------------------------------------------------------------------------------------- where the schema is


def _split_schema(text: str, folder: str) -> dict[str, str]:
    """One file per block, the way a multi-file schema is laid out."""
    blocks = parse_schema({"schema.prisma": text}).blocks
    lines = _lines(text)
    starts = [b.line for b in blocks] + [len(lines) + 1]
    files = {}
    for block, start, end in zip(blocks, starts, starts[1:], strict=False):
        files[f"{folder}/{block.name.lower()}.prisma"] = "\n".join(lines[start - 1 : end - 1]) + "\n"
    return files


def test_a_multi_file_schema_beside_the_migrations() -> None:
    version = Version("shop", 3)
    files = _split_schema(version.schema, "prisma/schema")
    root = "prisma/schema/migrations"
    migrations = version.migrations
    assert sorted(schema_files(root, files) or {}) == sorted(files)
    assert check_history(RootHistory(root, migrations, migrations, files, files)) == []
    user = "prisma/schema/user.prisma"
    edited = files | {user: files[user].replace("{\n", "{\n  zdmAdded String?\n", 1)}
    [(path, line, _, _)] = check_history(RootHistory(root, migrations, migrations, files, edited))
    assert (path, line) == (user, 2)


@pytest.mark.parametrize(
    ("config_path", "config"),
    [
        ("package.json", json.dumps({"name": "app", "prisma": {"schema": "db/main.prisma"}})),
        (
            "prisma.config.ts",
            'import { defineConfig } from "prisma/config";\n\nexport default defineConfig({\n  schema: "db/main.prisma",\n});\n',
        ),
        (
            "prisma.config.ts",
            "import path from 'node:path'\nexport default defineConfig({\n  // the schema\n  schema: path.join('db', 'main.prisma'),\n  migrations: { path: path.join('db', 'migrations') },\n})\n",
        ),
        (
            "prisma.config.ts",
            "export default defineConfig({ schema: path.join(__dirname, 'db/main.prisma') })\n",
        ),
    ],
)
def test_the_schema_location_set_in_package_json_or_prisma_config(config_path: str, config: str) -> None:
    version = Version("multischema", 2)
    root = "db/migrations"
    migrations = version.migrations
    # A decoy where Prisma's default would look: the configured location must win.
    files = {config_path: config, "db/main.prisma": version.schema, "db/schema.prisma": "not a schema"}
    assert schema_files(root, files) == {"db/main.prisma": version.schema}
    assert check_history(RootHistory(root, migrations, migrations, files, files)) == []
    edited = files | {"db/main.prisma": version.schema.replace("  PAID\n", "  PAID\n  REFUNDED\n")}
    [(path, _, message, _)] = check_history(RootHistory(root, migrations, migrations, files, edited))
    assert path == "db/main.prisma"
    assert "`REFUNDED`" in message


def test_a_schema_location_computed_at_run_time_silences_the_rule() -> None:
    config = "export default defineConfig({ schema: process.env.SCHEMA_PATH })\n"
    files = {"prisma.config.ts": config, SCHEMA: _WITH_NAME}
    assert schema_files(ROOT, files) is None
    assert check_history(_history(head_schema=_WITH_NAME, head_files=files)) == []


def test_the_nearest_package_json_names_the_schema() -> None:
    files = {
        "package.json": json.dumps({"prisma": {"schema": "elsewhere/schema.prisma"}}),
        "packages/db/package.json": json.dumps({"prisma": {"schema": "schema/"}}),
        "packages/db/schema/a.prisma": "a",
        "packages/db/schema/b.prisma": "b",
    }
    assert schema_files("packages/db/migrations", files) == {
        "packages/db/schema/a.prisma": "a",
        "packages/db/schema/b.prisma": "b",
    }


# ---------------------------------------------------------------------------------------------- the rule


def test_the_rule_is_registered_as_a_warning() -> None:
    assert RULE in HISTORY_RULES
    assert RULE.severity.value == "warning"


@pytest.mark.parametrize("example", RULE.examples, ids=lambda e: e.title)
def test_the_documented_examples_report_what_they_say(example: HistoryExample) -> None:
    assert len(check_history(example.history())) == example.hazards
