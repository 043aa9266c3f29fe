"""prisma-warnings: the `/* Warnings: */` header `prisma migrate dev` writes, as findings on the statements."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect
from bot.analysis.prisma import PrismaWarning, header_warnings
from bot.rules.base import STANDARD_SETUP, Example, FileContext, FileRule, StatementView

ID = "prisma-warnings"


def _bare(name: str | None) -> str:
    return (name or "").rsplit(".", 1)[-1]


def _matches(warning: PrismaWarning, statement: StatementView) -> bool:
    """Does this statement carry out what the warning is about?"""
    for o in statement.operations:
        table = _bare(o.table)
        if warning.kind == "required-column" and isinstance(o, op.AddColumn):
            hit = (table, o.column.name) == (warning.table, warning.column)
        elif warning.kind == "data-loss" and isinstance(o, (op.DropColumn, op.AlterColumnType)):
            hit = (table, o.column) == (warning.table, warning.column)
        elif warning.kind == "data-loss" and isinstance(o, op.DropTable):
            hit = warning.column is None and table == warning.table
        elif warning.kind == "unique" and isinstance(o, (op.CreateIndex, op.AddConstraint)):
            hit = table == warning.table
        elif warning.kind == "enum-values" and isinstance(o, op.CreateEnum):
            hit = _bare(o.name) == f"{warning.table}_new"
        else:
            hit = False
        if hit:
            return True
    return False


def check_file(file: FileContext) -> list[tuple[int, Effect]]:
    if not file.statements:
        return []
    found: list[tuple[int, Effect]] = []
    for warning in header_warnings(file.header):
        index = next((i for i, s in enumerate(file.statements) if _matches(warning, s)), 0)
        fails = warning.kind in ("required-column", "unique", "enum-values")
        found.append(
            (
                index,
                Effect(
                    rule_id=ID,
                    classification=Classification.SAFE,
                    message=f"Prisma warned when it wrote this migration: {warning.text}",
                    breaking=warning.kind in ("data-loss", "enum-values"),
                    safe_alternative=(
                        "Check production data before deploying: this fails, or loses data, on a non-empty table."
                        if fails
                        else "Make sure no running code reads this data any more, and that a backup exists."
                    ),
                ),
            )
        )
    return found


RULE = FileRule(
    id=ID,
    title="Prisma's own migration warnings",
    summary="The `/* Warnings: */` block Prisma writes above a migration: data loss and statements that fail on existing rows.",
    why=(
        "`prisma migrate dev` knows when a change drops data, adds a required column to a table that may have "
        "rows, adds a unique constraint over existing values or removes enum values, and says so in a comment "
        "that reviewers rarely read. zdm puts each warning on the statement it is about."
    ),
    instead="Read each warning against production data before the deploy.",
    check_file=check_file,
    examples=(
        Example(
            "/*\n  Warnings:\n\n  - You are about to drop the column `score` on the `User` table. All the data in "
            'the column will be lost.\n\n*/\n-- AlterTable\nALTER TABLE "User" DROP COLUMN "score";',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
    ),
)
