"""add-check-constraint: CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    in_a_do_block,
    quoted,
    quoted_name,
)

ID = "add-check-constraint"


def check(o: op.AddConstraint | op.AddColumn, ctx: Context) -> Effect | None:
    if isinstance(o, op.AddColumn):
        if not o.column.check:
            return None
        return claim(
            ID,
            ctx,
            f"The inline CHECK on new column {quoted_name(o.column.name)} is verified against every row of "
            f"{quoted(o.on)} under ACCESS EXCLUSIVE.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            scans=[o.on],
            alternative="Add the column first, then the CHECK as NOT VALID, then VALIDATE it in a later migration.",
            table=o.on,
        )
    if o.constraint.kind != "check":
        return None
    name = quoted_name(o.constraint.name)
    if o.not_valid:
        return claim(
            ID,
            ctx,
            f"CHECK {name} is added NOT VALID: existing rows are not checked, the ACCESS EXCLUSIVE lock on "
            f"{quoted(o.on)} is brief. Validate it in a later migration.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            table=o.on,
        )
    return claim(
        ID,
        ctx,
        f"Adding CHECK {name} scans all of {quoted(o.on)} to verify existing rows while an ACCESS EXCLUSIVE "
        "lock blocks every read and write.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        scans=[o.on],
        alternative=(
            f"ALTER TABLE {quoted(o.on)} ADD CONSTRAINT {name} CHECK (...) NOT VALID;\n"
            f"-- next migration:\nALTER TABLE {quoted(o.on)} VALIDATE CONSTRAINT {name};"
        ),
        table=o.on,
        fix=_not_valid_then_validate(ctx.sql, o.on, o.constraint.name),
    )


def _not_valid_then_validate(sql: str, table: str, name: str | None) -> Fix | None:
    if not sql or not name:
        return None
    return Fix(
        "Add the constraint NOT VALID now; validate it in the next migration without blocking writes.",
        in_place=(f"{sql} NOT VALID",),
        later=(f"ALTER TABLE {quoted(table)} VALIDATE CONSTRAINT {quoted_name(name)}",),
    )


RULE = Rule(
    id=ID,
    title="CHECK constraint validated while locked",
    summary="`ADD CONSTRAINT ... CHECK` without `NOT VALID` reads every row under ACCESS EXCLUSIVE.",
    why=(
        "Adding a CHECK verifies all existing rows while the table is locked against reads and writes. "
        "With `NOT VALID` only new writes are checked and the lock is brief; `VALIDATE CONSTRAINT` then "
        "verifies old rows under SHARE UPDATE EXCLUSIVE, which lets reads and writes continue."
    ),
    instead="`ADD CONSTRAINT ... CHECK (...) NOT VALID`, then `VALIDATE CONSTRAINT` in a following migration."
    + in_a_do_block("adds it `NOT VALID` in the block and validates it after the block"),
    operations=(op.AddConstraint, op.AddColumn),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ADD CONSTRAINT "user_score_pos" CHECK ("score" > 0);',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ADD CONSTRAINT "user_bio_nn" CHECK ("bio" IS NOT NULL) NOT VALID;',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Event" ADD CONSTRAINT "Event_amount_check" CHECK ("amount" > 0);',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: every partition is locked and read",
        ),
        Example(
            'ALTER TABLE "Event" ADD CONSTRAINT "Event_amount_check" CHECK ("amount" > 0) NOT VALID;',
            Classification.BRIEF,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="NOT VALID on a partitioned table: every partition is locked, none read",
        ),
        Example(
            "DO $$\nBEGIN\n  IF NOT EXISTS (\n    SELECT 1 FROM information_schema.table_constraints\n"
            "    WHERE table_name = 'User' AND constraint_name = 'user_score_pos'\n  ) THEN\n"
            '    ALTER TABLE "User" ADD CONSTRAINT "user_score_pos" CHECK ("score" > 0);\n  END IF;\nEND $$;',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="inside a DO block, guarded so it can run again: `NOT VALID` in the block, validated after it",
        ),
    ),
)
