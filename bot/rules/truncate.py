"""truncate: TRUNCATE empties tables under ACCESS EXCLUSIVE."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "truncate"


def check(o: op.Truncate, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"TRUNCATE deletes every row of {', '.join(quoted(t) for t in o.names)} and swaps in new empty files "
        "under ACCESS EXCLUSIVE.",
        [(t, LockMode.ACCESS_EXCLUSIVE) for t in o.names],
        rewrites=o.names,
        breaking=True,
        alternative="Delete data deliberately outside the deploy path, or drop the table after the code stops using it.",
        table=o.names[0] if o.names else None,
    )


RULE = Rule(
    id=ID,
    title="Table truncated in a migration",
    summary="`TRUNCATE` destroys all rows under ACCESS EXCLUSIVE.",
    why="A migration that empties a production table is rarely intended; the lock also blocks all access.",
    instead="Remove the statement, or run the cleanup deliberately outside the migration.",
    operations=(op.Truncate,),
    check=check,
    examples=(
        Example('TRUNCATE "Old";', Classification.BLOCKING, STANDARD_SETUP),
        Example(
            'TRUNCATE "Event";',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: every partition",
        ),
    ),
)
