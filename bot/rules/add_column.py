"""add-column: ADD COLUMN with no default or a constant one (metadata-only, brief lock)."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    quoted,
    quoted_name,
)

ID = "add-column"


def check(o: op.AddColumn, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"Adding column {quoted_name(o.column.name)} is metadata-only but takes a brief ACCESS EXCLUSIVE lock on "
        f"{quoted(o.on)}.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Column added (brief lock)",
    summary="`ADD COLUMN` without a volatile default only changes the catalog, under a brief ACCESS EXCLUSIVE lock.",
    why=(
        "Since PostgreSQL 11 a column with no default or a constant default is added without touching the "
        "rows. The lock is still ACCESS EXCLUSIVE: it waits behind long transactions on the table and blocks "
        "everything queued after it, so run it with a `lock_timeout`."
    ),
    instead="Keep it; set `lock_timeout` so a long transaction cannot turn the wait into an outage.",
    operations=(op.AddColumn,),
    check=check,
    examples=(
        Example('ALTER TABLE "User" ADD COLUMN "nickname" TEXT;', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "User" ADD COLUMN "active" BOOLEAN NOT NULL DEFAULT true;',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ADD COLUMN "joined" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Event" ADD COLUMN "note" TEXT;',
            Classification.BRIEF,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: every partition is locked too",
        ),
    ),
)
