"""add-column-required: ADD COLUMN ... NOT NULL without a default on a live table."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, not_null_steps, quoted, quoted_name

ID = "add-column-required"


def check(o: op.AddColumn, ctx: Context) -> Effect | None:
    column = o.column
    if not column.not_null or column.default is not None or column.serial or column.generated:
        return None
    type_sql = column.type_sql or (str(column.type) if column.type else "...")
    return claim(
        ID,
        ctx,
        f"Adding required column {quoted_name(column.name)} with no default scans {quoted(o.on)} under ACCESS "
        "EXCLUSIVE, and fails outright if the table has any row. Running code that inserts rows without "
        "the new column breaks as soon as it applies.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        scans=[o.on],
        breaking=True,
        alternative=(
            f"ALTER TABLE {quoted(o.on)} ADD COLUMN {quoted_name(column.name)} {type_sql};\n"
            "-- backfill in batches, then add CHECK (...) NOT VALID, VALIDATE it, and SET NOT NULL"
        ),
        table=o.on,
        fix=_fix(o),
    )


def _fix(o: op.AddColumn) -> Fix | None:
    column = o.column
    if not column.type_sql or column.references or column.unique or column.primary_key or column.check:
        return None
    table, name = quoted(o.on), quoted_name(column.name)
    check_now, check_later = not_null_steps(o.on, column.name)
    return Fix(
        "Add the column nullable; deploy code that writes it; backfill; then make it NOT NULL without a long lock.",
        in_place=(f"ALTER TABLE {table} ADD COLUMN {name} {column.type_sql}", *check_now),
        manual=(f"Backfill {table}.{name} for existing rows in batches outside the migration.",),
        later=check_later,
        deploy_first=f"code that writes {table}.{name} on every insert",
    )


RULE = Rule(
    id=ID,
    title="Required column added without a default",
    summary="`ADD COLUMN ... NOT NULL` with no default fails on a table with rows and breaks running code.",
    why=(
        "PostgreSQL has no value to put in existing rows, so the statement fails if the table is not empty "
        "(Prisma warns about this in the migration header). Even on an empty table it scans under ACCESS "
        "EXCLUSIVE, and the application version still running inserts rows without the column."
    ),
    instead=(
        "Add the column nullable (or with a constant default), deploy code that writes it, backfill in "
        "batches, then add `CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT`, and `SET NOT NULL`."
    ),
    operations=(op.AddColumn,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ADD COLUMN "req" TEXT NOT NULL;', Classification.BLOCKING, STANDARD_SETUP
        ),
    ),
)
