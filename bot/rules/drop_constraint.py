"""drop-constraint: DROP CONSTRAINT locks the table, and for a foreign key the referenced table too."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import (
    EVENT_USER_FKEY,
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    also_locks,
    claim,
    quoted,
    quoted_name,
)

ID = "drop-constraint"


def check(o: op.DropConstraint, ctx: Context) -> Effect:
    constraint = ctx.schema.constraint(o.on, o.name)
    locks = [(o.on, LockMode.ACCESS_EXCLUSIVE)]
    also = ""
    # A foreign key is enforced by triggers on both tables: dropping it removes the referenced table's too.
    if constraint is not None and constraint.ref_table and constraint.ref_table != o.on:
        locks.append((constraint.ref_table, LockMode.ACCESS_EXCLUSIVE))
        also = also_locks(
            ctx,
            [constraint.ref_table],
            ("the table its foreign key references", "the tables its foreign key references"),
            "until the drop commits",
        )
    return claim(
        ID,
        ctx,
        f"Dropping {quoted_name(o.name)} is catalog-only but takes ACCESS EXCLUSIVE on {quoted(o.on)}: "
        f"brief, yet it waits behind running queries and blocks everything queued after it.{also}",
        locks,
        table=o.on,
    )


_PARTITIONED = (
    PARTITIONED_SETUP
    + EVENT_USER_FKEY
    + 'ALTER TABLE "Event" ADD CONSTRAINT "Event_kind_check" CHECK ("kind" <> \'\');\n'
)

RULE = Rule(
    id=ID,
    title="Constraint dropped (brief lock on both tables)",
    summary="`DROP CONSTRAINT` takes ACCESS EXCLUSIVE; for a foreign key, on the referenced table as well.",
    why=(
        "Dropping a foreign key removes triggers on both tables, so both are locked ACCESS EXCLUSIVE for an "
        'instant: dropping "Session"\'s key to "User" stops every query on "User" while it waits. With a long '
        "transaction on either table, the drop waits and queues every query behind it. On a partitioned "
        "table, every partition is locked too."
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
            title="not a foreign key: only its table is locked",
        ),
        Example(
            'ALTER TABLE "Node" DROP CONSTRAINT "Node_parentId_fkey";',
            Classification.BRIEF,
            STANDARD_SETUP
            + 'CREATE TABLE "Node" ("id" INTEGER NOT NULL, "parentId" INTEGER, CONSTRAINT "Node_pkey" PRIMARY KEY ("id"));\n'
            'ALTER TABLE "Node" ADD CONSTRAINT "Node_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Node"("id");',
            title="a foreign key to its own table",
        ),
        Example(
            'ALTER TABLE "Event" DROP CONSTRAINT "Event_userId_fkey";',
            Classification.BRIEF,
            STANDARD_SETUP + _PARTITIONED,
            title="a foreign key of a partitioned table: every partition and the referenced table",
        ),
        Example(
            'ALTER TABLE "Event" DROP CONSTRAINT "Event_kind_check";',
            Classification.BRIEF,
            STANDARD_SETUP + _PARTITIONED,
            title="a CHECK of a partitioned table: every partition",
        ),
    ),
)
