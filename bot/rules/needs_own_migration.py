"""needs-own-migration: CONCURRENTLY and VACUUM fail inside Prisma's transaction."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Severity
from bot.rules.base import STANDARD_SETUP, Example, FileContext, FileRule
from bot.rules.execution_model import (
    inside_explicit_transaction,
    migration_fails,
    outside_transaction_only,
    real_statements,
    runs_as_one_transaction,
    version_words,
)

ID = "needs-own-migration"


_ALONE = (
    "Move this statement into a migration directory of its own, alone in its migration.sql (name it to sort "
    "right after this one). On a large table apply it by hand with psql, then "
    "`npx prisma migrate resolve --applied <migration_name>`."
)


def check_file(file: FileContext) -> list[tuple[int, Effect]]:
    found: list[tuple[int, Effect]] = []
    refusing = [(i, s, r) for i, s in enumerate(file.statements) if (r := outside_transaction_only(s))]
    if not refusing:
        return found
    real = real_statements(file)
    explicit = inside_explicit_transaction(file)
    for index, statement, (what, sqlstate) in refusing:
        drop_concurrently = any(isinstance(o, op.DropIndex) and o.concurrently for o in statement.operations)
        if index in explicit:
            why = f"it sits between BEGIN and COMMIT written in the file, and {what} cannot run in a transaction block"
        elif len(real) > 1 and runs_as_one_transaction(file):
            why = (
                f"{version_words(file)} sends the whole file as one transaction, and {what} cannot run in a "
                "transaction block"
            )
        elif len(real) > 1 and drop_concurrently:
            why = (
                f"{version_words(file)} cannot split a file holding DROP INDEX CONCURRENTLY into statements and "
                "runs it as one transaction"
            )
        else:
            continue
        message = (
            f"`prisma migrate deploy` fails here (P3018, SQLSTATE {sqlstate}): {why}. Every later deploy then stops "
            "with P3009 until the failed migration is resolved."
        )
        found.append((index, migration_fails(ID, message, _ALONE)))
    return found


RULE = FileRule(
    id=ID,
    title="Statement that cannot run in Prisma's transaction",
    summary="`CONCURRENTLY` and `VACUUM` fail when Prisma runs them together with other statements.",
    why=(
        "Before Prisma 7.4 a migration file is sent as one batch, which PostgreSQL runs as one transaction; "
        "`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX CONCURRENTLY` and `VACUUM` refuse to "
        "run in a transaction block, so the migration fails (P3018) and blocks every later deploy (P3009). "
        "Prisma 7.4 runs statements one by one, except in files it cannot split: DROP INDEX CONCURRENTLY is one."
    ),
    instead="Put the statement alone in its own migration directory.",
    check_file=check_file,
    severity=Severity.ERROR,
    examples=(
        Example(
            'ALTER TABLE "Tip" ADD COLUMN "ref" TEXT;\nCREATE INDEX CONCURRENTLY "Tip_ref_idx" ON "Tip"("ref");',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="before Prisma 7.4",
            prisma="6.19.0",
            refused_with="cannot run inside a transaction block",
        ),
    ),
)
