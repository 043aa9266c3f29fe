"""validate-constraint: VALIDATE CONSTRAINT scans without blocking reads or writes."""

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

ID = "validate-constraint"


def check(o: op.ValidateConstraint, ctx: Context) -> Effect:
    constraint = ctx.schema.constraint(o.on, o.name)
    locks = [(o.on, LockMode.SHARE_UPDATE_EXCLUSIVE)]
    if constraint is not None and constraint.ref_table:
        locks.append((constraint.ref_table, LockMode.ROW_SHARE))
    return claim(
        ID,
        ctx,
        f"Validating {quoted_name(o.name)} scans {quoted(o.on)} under SHARE UPDATE EXCLUSIVE: reads and writes continue.",
        locks,
        scans=[o.on],
        looks_up=[constraint.ref_table] if constraint is not None and constraint.ref_table else [],
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Constraint validated online",
    summary="`VALIDATE CONSTRAINT` checks existing rows without blocking reads or writes.",
    why=(
        "This is the second half of the NOT VALID pattern: the scan takes as long as the table is big, but "
        "under SHARE UPDATE EXCLUSIVE (and ROW SHARE on a referenced table), which blocks only other schema "
        "changes and VACUUM."
    ),
    instead="Nothing to change.",
    operations=(op.ValidateConstraint,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" VALIDATE CONSTRAINT "user_bio_nn";',
            Classification.SAFE,
            STANDARD_SETUP
            + 'ALTER TABLE "User" ADD CONSTRAINT "user_bio_nn" CHECK ("bio" IS NOT NULL) NOT VALID;',
        ),
        Example(
            'ALTER TABLE "Tip" VALIDATE CONSTRAINT "Tip_userId_fkey2";',
            Classification.SAFE,
            STANDARD_SETUP
            + 'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey2" FOREIGN KEY ("userId") REFERENCES "User"("id") NOT VALID;',
        ),
        Example(
            'ALTER TABLE "Event" VALIDATE CONSTRAINT "Event_amount_check";',
            Classification.SAFE,
            STANDARD_SETUP
            + PARTITIONED_SETUP
            + 'ALTER TABLE "Event" ADD CONSTRAINT "Event_amount_check" CHECK ("amount" > 0) NOT VALID;',
            title="a partitioned table: every partition is read",
        ),
    ),
)
