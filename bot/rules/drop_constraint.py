"""drop-constraint: DROP CONSTRAINT locks the table, and for a foreign key the referenced table too."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "drop-constraint"


def check(o: op.DropConstraint, ctx: Context) -> Effect:
    constraint = ctx.schema.constraint(o.on, o.name)
    locks = [(o.on, LockMode.ACCESS_EXCLUSIVE)]
    also = ""
    if constraint is not None and constraint.ref_table:
        locks.append((constraint.ref_table, LockMode.ACCESS_EXCLUSIVE))
        also = f" and on the referenced table {quoted(constraint.ref_table)}"
    return claim(
        ID,
        ctx,
        f"Dropping {quoted_name(o.name)} is catalog-only but takes ACCESS EXCLUSIVE on {quoted(o.on)}{also}: "
        "brief, yet it waits behind running queries and blocks everything queued after it.",
        locks,
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Constraint dropped (brief lock on both tables)",
    summary="`DROP CONSTRAINT` takes ACCESS EXCLUSIVE; for a foreign key, on the referenced table as well.",
    why=(
        "Dropping a foreign key removes triggers on both tables, so both are locked ACCESS EXCLUSIVE for an "
        "instant. With a long transaction on either table, the drop waits and queues every query behind it."
    ),
    instead="Keep it; run it with a `lock_timeout` and retry on timeout.",
    operations=(op.DropConstraint,),
    check=check,
    examples=(
        Example('ALTER TABLE "Tip" DROP CONSTRAINT "Tip_userId_fkey";', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "User" DROP CONSTRAINT "user_bio_nn";',
            Classification.BRIEF,
            STANDARD_SETUP
            + 'ALTER TABLE "User" ADD CONSTRAINT "user_bio_nn" CHECK ("bio" IS NOT NULL) NOT VALID;',
        ),
    ),
)
