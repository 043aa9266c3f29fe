"""locks-held-until-commit: before Prisma 7.4, early locks stay held while a later long statement runs."""

from __future__ import annotations

from bot.analysis.model import Classification, Effect
from bot.rules.base import STANDARD_SETUP, Example, FileContext, FileRule, quoted
from bot.rules.execution_model import outside_transaction_only, runs_as_one_transaction, version_words

ID = "locks-held-until-commit"


def check_file(file: FileContext) -> list[tuple[int, Effect]]:
    if not runs_as_one_transaction(file):
        return []
    held: dict[str, int] = {}  # table -> line where the strong lock was taken
    found: list[tuple[int, Effect]] = []
    for index, statement in enumerate(file.statements):
        read = {t: line for t, line in held.items() if t in statement.scans}
        others = {t: line for t, line in held.items() if t not in statement.locks}
        # A statement that refuses a transaction block fails there instead (needs-own-migration says so).
        if (
            statement.classification is not Classification.BLOCKING
            and read
            and not outside_transaction_only(statement)
        ):
            # A read alone lets writers through, but this one reads under the write-blocking lock the
            # transaction already holds: writers wait for the whole read.
            found.append(
                _held(
                    index,
                    f"{version_words(file)} runs the file as one transaction: this statement reads "
                    f"{_where(read)} while the lock taken there, which blocks writes, is still held, so writers "
                    "wait for the whole read.",
                    "Move this statement to a migration of its own, so the lock before it is released first.",
                )
            )
        elif statement.classification is Classification.BLOCKING and others:
            found.append(
                _held(
                    index,
                    f"{version_words(file)} runs the file as one transaction: the locks taken earlier on "
                    f"{_where(others)} stay held until this statement and the rest of the file finish.",
                    "Move this statement to a migration of its own, so the brief locks before it are released "
                    "first.",
                )
            )
        for table, mode in statement.locks.items():
            if mode.blocks_writes:
                held.setdefault(table, statement.line_start)
    return found


def _where(tables: dict[str, int]) -> str:
    return ", ".join(f"{quoted(t)} (line {line})" for t, line in sorted(tables.items()))


def _held(index: int, message: str, alternative: str) -> tuple[int, Effect]:
    return index, Effect(
        rule_id=ID, classification=Classification.BLOCKING, message=message, safe_alternative=alternative
    )


RULE = FileRule(
    id=ID,
    title="Early locks held during a long statement",
    summary=(
        "Before Prisma 7.4, a brief lock early in a file is held while a later statement rewrites or scans, or "
        "reads the locked table."
    ),
    why=(
        "Prisma before 7.4 runs a migration file as one transaction, so every lock is released only at the "
        "end. A metadata-only `ALTER TABLE` on one table followed by an index build on another keeps the first "
        "table blocked for the whole build."
    ),
    instead="Give the long statement its own migration, or upgrade to Prisma 7.4+ where each statement commits.",
    check_file=check_file,
    examples=(
        Example(
            'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\nCREATE INDEX "Tip_createdAt_idx" ON "Tip"("createdAt");',
            Classification.BLOCKING,
            STANDARD_SETUP,
            prisma="6.19.0",
        ),
        Example(
            'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
            'INSERT INTO "Log" ("id", "message") SELECT "id", "email" FROM "User";',
            Classification.BLOCKING,
            STANDARD_SETUP,
            prisma="6.19.0",
        ),
    ),
)
