"""enum-value-used-too-early: a value added with ALTER TYPE ... ADD VALUE used in the same transaction."""

from __future__ import annotations

import re

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Severity
from bot.rules.base import STANDARD_SETUP, Example, FileContext, FileRule
from bot.rules.execution_model import migration_fails, runs_as_one_transaction, version_words

ID = "enum-value-used-too-early"


def check_file(file: FileContext) -> list[tuple[int, Effect]]:
    adds_values = any(isinstance(o, op.AddEnumValue) for s in file.statements for o in s.operations)
    if not adds_values or not runs_as_one_transaction(file):
        return []
    added: dict[str, str] = {}  # value -> enum
    found: list[tuple[int, Effect]] = []
    for index, statement in enumerate(file.statements):
        for value, enum in added.items():
            if re.search("'" + re.escape(value.replace("'", "''")) + "'", statement.sql) and not any(
                isinstance(o, op.AddEnumValue) for o in statement.operations
            ):
                message = (
                    f'This uses {value!r}, added to enum "{enum}" earlier in the same file: '
                    f"{version_words(file)} runs the file as one transaction, and PostgreSQL refuses a new enum "
                    "value before the transaction that added it commits (SQLSTATE 55P04): the migration fails."
                )
                alternative = "Add the value in one migration and use it in the next one."
                found.append((index, migration_fails(ID, message, alternative)))
                break
        for o in statement.operations:
            if isinstance(o, op.AddEnumValue):
                added[o.value] = o.type_name
    return found


RULE = FileRule(
    id=ID,
    title="New enum value used in the same migration",
    summary="A value added with `ALTER TYPE ... ADD VALUE` cannot be used before Prisma's transaction commits.",
    why=(
        "Before Prisma 7.4 the file is one transaction, and PostgreSQL forbids using an enum value in the "
        'transaction that added it ("unsafe use of new value"): a default, a backfill or a CHECK using it '
        "makes the migration fail."
    ),
    instead="Split: one migration adds the value, the next one uses it.",
    check_file=check_file,
    severity=Severity.ERROR,
    examples=(
        Example(
            'ALTER TYPE "Role" ADD VALUE \'OWNER\';\nALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'OWNER\';',
            Classification.BRIEF,
            STANDARD_SETUP,
            prisma="6.19.0",
            refused_with='unsafe use of new value "OWNER"',
        ),
    ),
)
