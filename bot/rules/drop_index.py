"""drop-index: DROP INDEX without CONCURRENTLY."""

from __future__ import annotations

import re

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, partitioned, quoted, quoted_name

ID = "drop-index"


def check(o: op.DropIndex, ctx: Context) -> Effect:
    table = ctx.schema.index_table(o.name)
    if ctx.schema.is_new(o.name):
        table = None
    if o.concurrently:
        return claim(
            ID, ctx, "Drops the index without blocking queries.", {table: LockMode.SHARE_UPDATE_EXCLUSIVE}
        )
    on = f" on {quoted(table)}" if table else ""
    return claim(
        ID,
        ctx,
        f"Dropping an index takes an ACCESS EXCLUSIVE lock{on}: brief, but it waits behind every running "
        "query on the table and blocks all reads and writes queued after it.",
        {table: LockMode.ACCESS_EXCLUSIVE},
        alternative=f"DROP INDEX CONCURRENTLY {quoted_name(o.name)};",
        table=table,
        # PostgreSQL cannot drop an index of a partitioned table CONCURRENTLY.
        fix=None if partitioned(ctx, table) else _fix(ctx.sql),
        classification=None if table else Classification.BRIEF,
    )


_DROP_INDEX = re.compile(r"^(\s*DROP\s+INDEX)\s+(?!CONCURRENTLY\b)", re.IGNORECASE)


def _fix(sql: str) -> Fix | None:
    concurrent, count = _DROP_INDEX.subn(r"\1 CONCURRENTLY ", sql, count=1)
    # Neither a list of indexes nor CASCADE can be dropped CONCURRENTLY.
    if not count or "," in sql or re.search(r"\bCASCADE\b", sql, re.IGNORECASE):
        return None
    return Fix(
        "Drop the index CONCURRENTLY, alone in its migration (Prisma runs such a file as one batch).",
        alone=(concurrent,),
        alone_always=True,
    )


RULE = Rule(
    id=ID,
    title="Index dropped without CONCURRENTLY",
    summary="`DROP INDEX` takes an ACCESS EXCLUSIVE lock on the index's table.",
    why=(
        "The drop itself is instant, but the ACCESS EXCLUSIVE lock must wait for every transaction using the "
        "table, and every query that arrives meanwhile queues behind it."
    ),
    instead=(
        "`DROP INDEX CONCURRENTLY`, in a migration of its own: it cannot run in a transaction block, and "
        "Prisma (even 7.4+) runs a file holding it as one batch."
    ),
    operations=(op.DropIndex,),
    check=check,
    examples=(
        Example('DROP INDEX "Tip_amount_idx";', Classification.BRIEF, STANDARD_SETUP),
        Example('DROP INDEX CONCURRENTLY "Tip_note_idx";', Classification.SAFE, STANDARD_SETUP),
    ),
)
