"""set-not-null: ALTER COLUMN ... SET NOT NULL scans the table unless a valid CHECK proves it."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    bare,
    claim,
    not_null_steps,
    quoted,
    quoted_name,
)

ID = "set-not-null"


def check(o: op.SetNotNull, ctx: Context) -> Effect:
    table, column = quoted(o.on), quoted_name(o.column)
    known = ctx.schema.column(o.on, o.column)
    if known is not None and known.not_null:
        return claim(
            ID,
            ctx,
            f"{table}.{column} is already NOT NULL: nothing is checked, the ACCESS EXCLUSIVE lock is brief.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            table=o.on,
        )
    if ctx.postgres_version >= 12 and ctx.schema.has_valid_not_null_check(o.on, o.column):
        return claim(
            ID,
            ctx,
            f"A validated CHECK ({column} IS NOT NULL) already proves the column: SET NOT NULL skips the scan "
            f"and holds ACCESS EXCLUSIVE on {table} only briefly.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            table=o.on,
        )
    constraint = quoted_name(f"{bare(o.on)}_{o.column}_not_null_check"[:63])
    return claim(
        ID,
        ctx,
        f"SET NOT NULL scans all of {table} to check for NULLs while an ACCESS EXCLUSIVE lock blocks every "
        "read and write.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        scans=[o.on],
        alternative=(
            f"ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID;\n"
            f"-- next migration:\nALTER TABLE {table} VALIDATE CONSTRAINT {constraint};\n"
            f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\n"
            f"ALTER TABLE {table} DROP CONSTRAINT {constraint};"
        ),
        table=o.on,
        fix=_fix(o),
    )


def _fix(o: op.SetNotNull) -> Fix:
    now, later = not_null_steps(o.on, o.column)
    return Fix(
        "CHECK (col IS NOT NULL) NOT VALID now; VALIDATE, SET NOT NULL, drop the CHECK next.",
        in_place=now,
        later=later,
    )


RULE = Rule(
    id=ID,
    title="SET NOT NULL scans the table",
    summary="`ALTER COLUMN ... SET NOT NULL` reads every row under ACCESS EXCLUSIVE.",
    why=(
        "PostgreSQL must prove that no row holds NULL, and it does so by scanning the table while holding "
        "ACCESS EXCLUSIVE: no reads or writes until the scan ends. Since PostgreSQL 12 the scan is skipped "
        "when a validated `CHECK (col IS NOT NULL)` constraint already proves it."
    ),
    instead=(
        "Add `CHECK (col IS NOT NULL) NOT VALID` (brief), `VALIDATE CONSTRAINT` in a later migration (scans "
        "without blocking writes), then `SET NOT NULL` (no scan) and drop the CHECK."
    ),
    operations=(op.SetNotNull,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ALTER COLUMN "email" SET NOT NULL;', Classification.BLOCKING, STANDARD_SETUP
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET NOT NULL;',
            Classification.BRIEF,
            STANDARD_SETUP
            + 'ALTER TABLE "User" ADD CONSTRAINT "user_bio_nn" CHECK ("bio" IS NOT NULL) NOT VALID;\n'
            + 'ALTER TABLE "User" VALIDATE CONSTRAINT "user_bio_nn";',
            title="after a validated CHECK (col IS NOT NULL)",
            min_postgres=12,
        ),
        Example(
            'ALTER TABLE "Event" ALTER COLUMN "kind" SET NOT NULL;',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: every partition is locked and read",
        ),
    ),
)
