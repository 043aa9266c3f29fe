"""add-column-volatile-default: ADD COLUMN whose default is volatile (or SERIAL) rewrites the table."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "add-column-volatile-default"


def check(o: op.AddColumn, ctx: Context) -> Effect | None:
    column = o.column
    volatile = column.default is not None and column.default.volatile
    if not (volatile or column.serial):
        return None
    what = (
        "a SERIAL column"
        if column.serial
        else f"a column with the volatile default {column.default.sql if column.default else ''}"
    )
    type_sql = str(column.type) if column.type else "..."
    alternative = (
        f"ALTER TABLE {quoted(o.on)} ADD COLUMN {quoted(column.name)} {type_sql};\n"
        f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted(column.name)} SET DEFAULT {column.default.sql if column.default else '...'};\n"
        "-- then backfill existing rows in batches, outside the migration"
    )
    return claim(
        ID,
        ctx,
        f"Adding {what} rewrites {quoted(o.on)}: the default is computed for every existing row while an "
        "ACCESS EXCLUSIVE lock blocks all reads and writes.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        rewrites=[o.on],
        scans=[o.on],
        alternative=alternative,
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Column added with a volatile default",
    summary="`ADD COLUMN ... DEFAULT gen_random_uuid()` (or `SERIAL`) rewrites the whole table under ACCESS EXCLUSIVE.",
    why=(
        "A volatile default (`gen_random_uuid()`, `random()`, `clock_timestamp()`, `nextval()`, a user function) "
        "must be evaluated once per existing row, so PostgreSQL rewrites the table while holding ACCESS "
        "EXCLUSIVE: no reads, no writes, for a time that grows with the table."
    ),
    instead=(
        "Add the column without a default, then `SET DEFAULT` (affects new rows only), then backfill existing "
        "rows in batches outside the migration."
    ),
    operations=(op.AddColumn,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ADD COLUMN "uuid" UUID DEFAULT gen_random_uuid();',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example('ALTER TABLE "User" ADD COLUMN "seq" SERIAL;', Classification.BLOCKING, STANDARD_SETUP),
        Example(
            'ALTER TABLE "User" ADD COLUMN "r" DOUBLE PRECISION DEFAULT random();',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
    ),
)
