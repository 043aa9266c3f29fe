"""schema-drift: `schema.prisma` and the schema the migrations build disagree, newly in this change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.analysis.history import RootHistory
from bot.analysis.model import Severity
from bot.analysis.prisma import prisma_order
from bot.rules.base import HistoryExample, HistoryRule, quoted, quoted_name

if TYPE_CHECKING:
    from bot.analysis.schema_drift import Drift, Replayed

# The schema parser and the comparison load only when a change touches a root's history: `zdm check` of
# migrations alone never needs them.

ID = "schema-drift"


def check_history(history: RootHistory) -> list[tuple[str, int | None, str, str]]:
    return [(d.place.path, d.place.line, message(d), fix(d)) for d in new_drifts(history)]


def new_drifts(history: RootHistory) -> list[Drift]:
    """The drifts at head that were not there at base: older drift is not this change's doing."""
    from bot.analysis.schema_drift import schema_files

    if history.base == history.head and history.base_files == history.head_files:
        return []
    replayed_head = _replay(history, history.head)
    at_head = drifts(history, replayed_head, history.head_files)
    if not at_head:
        return []
    if not history.base and schema_files(history.root, history.base_files) is None:
        known: set[tuple[str, str, str, str, str]] = set()  # a new root with a new schema
    else:
        replayed_base = replayed_head if history.base == history.head else _replay(history, history.base)
        at_base = drifts(history, replayed_base, history.base_files)
        if at_base is None:
            return []  # what drifted before this change is unknown: blaming it all on the change would be a guess
        known = {d.identity for d in at_base}
    return [d for d in at_head if d.identity not in known]


def _replay(history: RootHistory, migrations: Mapping[str, str]) -> Replayed:
    from bot.analysis.schema_drift import replay

    ordered = sorted(migrations, key=prisma_order)
    return replay([(history.migration_path(folder), migrations[folder]) for folder in ordered])


def drifts(history: RootHistory, replayed: Replayed, files: Mapping[str, str]) -> list[Drift] | None:
    """The differences at one commit, or None when zdm cannot compare with confidence: no schema found,
    a schema it cannot read, or a migration statement the replay could not read."""
    from bot.analysis.prisma_schema import PrismaSchemaError
    from bot.analysis.schema_drift import Place, declared, differences, schema_files

    schema = schema_files(history.root, files)
    if schema is None or replayed.unreadable:
        return None
    try:
        declared_schema = declared(schema, replayed.schema)
    except PrismaSchemaError:
        return None
    fallback = replayed.last_migration or Place(min(schema))
    return differences(declared_schema, replayed, fallback)


_DEPLOY = "`prisma migrate deploy` runs only the committed migrations, so production will not have it"


def message(drift: Drift) -> str:
    table = quoted(drift.table)
    column = f"{table}.{quoted_name(drift.column)}"
    field = f"`{drift.model}.{drift.field_name}`"
    kind = drift.kind
    if kind == "missing-table":
        if drift.join_table:
            return (
                f"The implicit many-to-many relation between `{drift.model.replace(' and ', '` and `')}` needs "
                f"table {table}, but no migration creates it: {_DEPLOY}, and every query through the relation "
                "fails."
            )
        return (
            f"Model `{drift.model}` declares table {table}, but no migration creates it: {_DEPLOY}, and every "
            f"query on `{drift.model}` fails (P2021, the table does not exist)."
        )
    if kind == "extra-table":
        return (
            f"The migrations create table {table}, but the schema declares no model for it: the next `prisma "
            "migrate dev` writes a migration that drops it, with its data."
        )
    if kind == "missing-column":
        if drift.join_table:
            return (
                f"The implicit many-to-many table {table} needs column {quoted_name(drift.column)}, but no "
                f"migration adds it: {_DEPLOY}, and every query through the relation fails."
            )
        return (
            f"Field {field} declares column {column}, but no migration adds it: {_DEPLOY}, and Prisma Client "
            f"selects every field of `{drift.model}` unless told otherwise, so its queries fail (P2022, the "
            "column does not exist)."
        )
    if kind == "extra-column":
        owner = "the implicit many-to-many table" if drift.join_table else f"model `{drift.model}`"
        return (
            f"The migrations add column {column}, but {owner} declares no field for it: the next `prisma "
            "migrate dev` writes a migration that drops it, with its data."
        )
    if kind == "type":
        return (
            f"Field {field} is `{drift.declared}` in the schema, but the migrations make column {column} "
            f"`{drift.built}`: Prisma Client reads and writes it as the schema says, and the next `prisma migrate "
            "dev` writes a type change for it (which can rewrite the table)."
        )
    if kind == "nullability":
        if drift.declared == "required":
            return (
                f"Field {field} is required in the schema, but the migrations leave column {column} nullable: "
                "Prisma Client fails on rows where it is NULL, and the next `prisma migrate dev` writes a `SET "
                "NOT NULL` for it (which scans the table under an exclusive lock)."
            )
        return (
            f"Field {field} is optional in the schema, but the migrations make column {column} NOT NULL: writes "
            "that leave the field out fail with a NOT NULL violation."
        )
    if kind == "missing-enum":
        return (
            f"Enum `{drift.model}` declares type {table}, but no migration creates it: {_DEPLOY}, and every "
            "column of that type is missing with it."
        )
    if kind == "extra-enum":
        return (
            f"The migrations create enum type {table}, but the schema declares no enum for it: the next `prisma "
            "migrate dev` writes a migration that drops it."
        )
    if kind == "missing-value":
        return (
            f"Enum `{drift.model}` declares value `{drift.declared}`, which no migration adds to type {table}: "
            "writing it fails (invalid input value for enum)."
        )
    return (
        f"The migrations give enum type {table} value `{drift.built}`, which enum `{drift.model}` does not "
        "declare: Prisma Client fails on rows that hold it, and the next `prisma migrate dev` rebuilds the type "
        "without it."
    )


_CREATE_ONLY = (
    "Run `npx prisma migrate dev --create-only` to write the migration for the schema, review it and commit it "
    "with this change"
)


def fix(drift: Drift) -> str:
    if drift.kind in ("missing-table", "missing-column", "missing-enum", "missing-value"):
        return f"{_CREATE_ONLY}."
    if drift.kind in ("type", "nullability"):
        return f"{_CREATE_ONLY}; if the migrations are right instead, change the field to match them."
    if drift.kind in ("extra-table", "extra-enum"):
        return (
            "Declare it in the schema (`npx prisma db pull` against a database the migrations built writes the "
            "model), or, if nothing uses it, remove it: from the migration if it is new in this change, else in "
            "a new migration."
        )
    return (
        "Declare it in the schema (`@map` keeps another name in the code), or, if nothing uses it, remove it: "
        "from the migration if it is new in this change, else in a new migration."
    )


_SCHEMA = "prisma/schema.prisma"
_HEADER = 'datasource db {\n  provider = "postgresql"\n}\n\n'
_USER = 'CREATE TABLE "User" (\n    "id" SERIAL NOT NULL,\n    "email" TEXT NOT NULL,\n\n    CONSTRAINT "User_pkey" PRIMARY KEY ("id")\n);\n'
_INIT = {"20240101000000_init": _USER}
_MODEL = "model User {\n  id    Int    @id @default(autoincrement())\n  email String\n"

RULE = HistoryRule(
    id=ID,
    title="The schema and the migrations disagree",
    summary=(
        "`schema.prisma` declares tables, columns, types, nullability or enum values that the migrations do not "
        "build, or the migrations build what the schema does not declare."
    ),
    why=(
        "`prisma migrate deploy` runs only the committed migrations; Prisma Client is generated from the schema. "
        "A field added to the schema without its migration reaches production as code that queries a column "
        "that is not there, and every query on the model fails. A table or column a migration creates that the "
        "schema does not declare is dropped, with its data, by the next `prisma migrate dev` of whoever touches "
        "the schema next. zdm builds both sides the way Prisma does (`@map`/`@@map`, `@@schema`, native types, "
        "implicit many-to-many tables) and compares tables, columns, their types and nullability, and enums with "
        "their values (not indexes, constraints or defaults). It reports only disagreements this change "
        "introduces, and says nothing when a migration holds SQL it cannot read or the schema cannot be parsed."
    ),
    instead=(
        "Change the schema, then let Prisma write the migration: `npx prisma migrate dev --create-only`, review "
        "what it wrote, and commit the schema and the migration together. Tables, columns and enum values "
        "created by hand belong in the schema too (`npx prisma db pull` against a database the migrations built "
        "writes them), or in a database schema Prisma does not manage."
    ),
    check_history=check_history,
    severity=Severity.WARNING,
    examples=(
        HistoryExample(
            "a field added to the schema with no migration",
            base=_INIT,
            head=_INIT,
            base_files={_SCHEMA: _HEADER + _MODEL + "}\n"},
            head_files={_SCHEMA: _HEADER + _MODEL + "  name  String?\n}\n"},
        ),
        HistoryExample(
            "a migration adds a column the schema does not declare",
            base=_INIT,
            head=_INIT | {"20240201000000_nickname": 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'},
            base_files={_SCHEMA: _HEADER + _MODEL + "}\n"},
            head_files={_SCHEMA: _HEADER + _MODEL + "}\n"},
        ),
        HistoryExample(
            "a field added with its migration",
            base=_INIT,
            head=_INIT | {"20240201000000_name": 'ALTER TABLE "User" ADD COLUMN "name" TEXT;\n'},
            base_files={_SCHEMA: _HEADER + _MODEL + "}\n"},
            head_files={_SCHEMA: _HEADER + _MODEL + "  name  String?\n}\n"},
            hazards=0,
        ),
    ),
)
