"""explicit-lock: LOCK TABLE holds its lock until the migration's transaction ends."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "explicit-lock"


def check(o: op.LockTable, ctx: Context) -> Effect:
    mode = LockMode[o.mode]
    return claim(
        ID,
        ctx,
        f"LOCK TABLE takes {mode.sql_name} on {', '.join(quoted(t) for t in o.names)} and keeps it until the "
        "transaction ends: before Prisma 7.4 that is the end of the whole migration file.",
        [(t, mode) for t in o.names],
        table=o.names[0] if o.names else None,
        alternative="Keep the statements that need the lock short and together, and set a `lock_timeout`.",
    )


RULE = Rule(
    id=ID,
    title="Explicit table lock",
    summary="`LOCK TABLE` holds a lock for the rest of the transaction.",
    why=(
        "Migrations lock tables explicitly to make a data fix atomic. The lock lasts until commit: with "
        "Prisma before 7.4 the whole file is one transaction, so everything after the LOCK runs under it."
    ),
    instead="Lock only what the fix needs, as late as possible, with a `lock_timeout`.",
    operations=(op.LockTable,),
    check=check,
    examples=(
        Example('LOCK TABLE "Tip" IN SHARE ROW EXCLUSIVE MODE;', Classification.BRIEF, STANDARD_SETUP),
    ),
)
