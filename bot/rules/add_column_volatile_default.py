"""add-column-volatile-default: ADD COLUMN whose default is volatile (or SERIAL) rewrites the table."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.backfill import BATCH_SIZE, NotProvable, batched_fill
from bot.rules.base import (
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
        f"ALTER TABLE {quoted(o.on)} ADD COLUMN {quoted_name(column.name)} {type_sql};\n"
        f"ALTER TABLE {quoted(o.on)} ALTER COLUMN {quoted_name(column.name)} SET DEFAULT {column.default.sql if column.default else '...'};\n"
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
        fix=_fix(o, ctx),
    )


_SEQUENCE_TYPES = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}


def _fix(o: op.AddColumn, ctx: Context) -> Fix | None:
    """Add the column plain, set the default for new rows, backfill old rows in batches, then NOT NULL."""
    column = o.column
    table, name = quoted(o.on), quoted_name(column.name)
    if column.references or column.unique or column.primary_key or column.check or column.generated:
        return None
    now: list[str] = []
    if column.serial and column.type is not None:
        sequence_type = _SEQUENCE_TYPES[column.type.base]
        sequence = quoted_name(f"{bare(o.on)}_{column.name}_seq")
        now += [
            f"CREATE SEQUENCE {sequence} AS {sequence_type}",
            f"ALTER TABLE {table} ADD COLUMN {name} {sequence_type}",
            f"ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT nextval('{sequence}')",
            f"ALTER SEQUENCE {sequence} OWNED BY {table}.{name}",
        ]
        default_sql = f"nextval('{sequence}')"
    elif column.default is not None and column.type_sql:
        now += [
            f"ALTER TABLE {table} ADD COLUMN {name} {column.type_sql}",
            f"ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT {column.default.sql}",
        ]
        default_sql = column.default.sql
    else:
        return None
    later: tuple[str, ...] = ()
    if column.not_null:
        check_now, later = not_null_steps(o.on, column.name)
        now += check_now
    finish = "then make it NOT NULL without a long lock." if column.not_null else "done."
    try:
        # The NOT NULL CHECK above, added before the fill, lets it walk a table without a key by its pages.
        backfill = batched_fill(
            o.on,
            column.name,
            default_sql,
            ctx.schema,
            checked_not_null=column.not_null,
            postgres_version=ctx.postgres_version,
        )
    except NotProvable:
        return Fix(
            "Add the column without a default, set the default for new rows, backfill old rows in batches, "
            + finish,
            in_place=tuple(now),
            manual=(
                f"Backfill in batches outside the migration, e.g. repeat until it updates no row:\n"
                f"UPDATE {table} SET {name} = {default_sql} WHERE ctid IN "
                f"(SELECT ctid FROM {table} WHERE {name} IS NULL LIMIT 5000);",
            ),
            later=later,
        )
    # The backfill commits every batch, so it runs alone, outside any transaction; the CHECK it satisfies
    # is validated in the next migration.
    return Fix(
        f"Add the column without a default, set the default for new rows, fill old rows in batches of "
        f"about {BATCH_SIZE:,} (a DO block alone in its migration), " + finish,
        in_place=tuple(now),
        alone=(backfill,),
        later=later,
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
