"""Shared facts about how Prisma runs a migration file, for the rules that depend on it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect
from bot.rules.base import FileContext, StatementView


def runs_as_one_transaction(file: FileContext) -> bool:
    """Before Prisma 7.4 (or when the version is unknown) the whole file is one implicit transaction."""
    return file.prisma is None or not file.prisma.splits_statements


def version_words(file: FileContext) -> str:
    if file.prisma is None:
        return "Prisma before 7.4 (zdm found no Prisma version: set `prisma_version` in .github/zdm.yml)"
    return f"Prisma {file.prisma}"


def migration_fails(rule_id: str, message: str, alternative: str) -> Effect:
    """A finding about a statement that makes `prisma migrate deploy` fail: an error whatever it locks."""
    return Effect(
        rule_id=rule_id,
        classification=Classification.SAFE,
        message=message,
        safe_alternative=alternative,
        fails_migration=True,
    )


def is_transaction_control(statement: StatementView) -> bool:
    return all(isinstance(o, op.TransactionControl) for o in statement.operations) and bool(
        statement.operations
    )


def real_statements(file: FileContext) -> list[int]:
    return [i for i, s in enumerate(file.statements) if not is_transaction_control(s)]


def inside_explicit_transaction(file: FileContext) -> set[int]:
    """Indexes of statements between a BEGIN and its COMMIT written in the file itself."""
    inside: set[int] = set()
    depth = 0
    for index, statement in enumerate(file.statements):
        for operation in statement.operations:
            if isinstance(operation, op.TransactionControl):
                depth = 1 if operation.kind == "begin" else 0
        if depth and not is_transaction_control(statement):
            inside.add(index)
    return inside


def outside_transaction_only(statement: StatementView) -> tuple[str, str] | None:
    """What in the statement refuses a transaction block, and the SQLSTATE PostgreSQL then fails with."""
    return refuses_transaction(statement.operations)


def refuses_transaction(operations: Sequence[op.Operation]) -> tuple[str, str] | None:
    """`outside_transaction_only` for a statement's operations, wherever they were read."""
    for o in operations:
        if isinstance(o, (op.CreateIndex, op.DropIndex, op.Reindex)) and o.concurrently:
            return "CONCURRENTLY", "25001"
        if isinstance(o, op.Maintenance) and o.kind in ("vacuum", "vacuum_full"):
            return "VACUUM", "25001"
        if isinstance(o, op.DataChange) and o.batched:
            return "a DO block that commits", "2D000"
    return None
