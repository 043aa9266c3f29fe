"""lock-timeout-missing: strong locks on live tables without a lock_timeout."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect
from bot.rules.base import STANDARD_SETUP, Example, FileContext, FileRule, quoted

ID = "lock-timeout-missing"


def check_file(file: FileContext) -> list[tuple[int, Effect]]:
    timeout_set = False
    for index, statement in enumerate(file.statements):
        for operation in statement.operations:
            if isinstance(operation, op.SetSetting) and "lock_timeout" in operation.name:
                timeout_set = True
        strong = sorted(t for t, mode in statement.locks.items() if mode.blocks_writes)
        if strong and not timeout_set:
            tables = ", ".join(quoted(t) for t in strong)
            effect = Effect(
                rule_id=ID,
                classification=Classification.SAFE,
                message=(
                    f"This statement waits for a lock on {tables} with no `lock_timeout`: behind one long "
                    "transaction it queues every read and write on the table for as long as it waits."
                ),
                safe_alternative="SET lock_timeout = '5s';",
                table=strong[0],
            )
            return [(index, effect)]
    return []


RULE = FileRule(
    id=ID,
    title="No lock_timeout before a blocking lock",
    summary="A migration that takes a strong lock on a live table should set `lock_timeout` first.",
    why=(
        "Even a metadata-only change needs its lock granted. While it waits behind a long query, every "
        "new query on the table queues behind it: a one-millisecond ALTER becomes an outage. With "
        "`lock_timeout` the migration fails fast instead, and can be retried."
    ),
    instead=(
        "Start the migration with `SET lock_timeout = '5s';` (it lasts for the session, so it covers every "
        "statement of the file in both of Prisma's execution models), or add `options=-c lock_timeout=5000` "
        "to the migration connection string."
    ),
    check_file=check_file,
    examples=(
        Example('ALTER TABLE "User" ADD COLUMN "nickname" TEXT;', Classification.BRIEF, STANDARD_SETUP),
    ),
)
