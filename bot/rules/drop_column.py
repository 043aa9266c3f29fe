"""drop-column: DROP COLUMN breaks code that still reads the column."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, also_locks, claim, quoted, quoted_name

ID = "drop-column"


def check(o: op.DropColumn, ctx: Context) -> Effect:
    # The column's foreign keys go with it, and with them their triggers on the referenced tables.
    referenced = ctx.schema.referenced_tables(o.on, o.column)
    locks = [(t, LockMode.ACCESS_EXCLUSIVE) for t in (o.on, *referenced)]
    also = also_locks(
        ctx,
        referenced,
        ("the table its foreign key references", "the tables its foreign keys reference"),
        "until the drop commits",
    )
    return claim(
        ID,
        ctx,
        f"Dropping {quoted(o.on)}.{quoted_name(o.column)} is catalog-only, but the application version still "
        "running selects it (Prisma Client names every column) and fails until the new code is everywhere. "
        f"The data is gone for good.{also}",
        locks,
        breaking=True,
        alternative=(
            "Deploy code that no longer reads or writes the column first (remove the field from the Prisma "
            "schema and ship it), then drop the column in a later migration."
        ),
        table=o.on,
        fix=Fix(
            "Drop the column in a later migration, after the code that stopped using it is deployed.",
            later=(ctx.sql,),
            deploy_first=f"code that no longer reads or writes {quoted(o.on)}.{quoted_name(o.column)}",
        )
        if ctx.sql
        else None,
    )


RULE = Rule(
    id=ID,
    title="Column dropped under running code",
    summary="`DROP COLUMN` breaks queries of the running application and loses the data.",
    why=(
        "The drop itself is quick (a brief ACCESS EXCLUSIVE lock), but Prisma Client selects every column "
        "of a model by name: the version still running fails on each query of that model. Dropping a "
        "foreign key column drops its key, which also takes ACCESS EXCLUSIVE on the referenced table."
    ),
    instead="Ship the code that stops using the column first; drop it in a later migration.",
    operations=(op.DropColumn,),
    check=check,
    examples=(
        Example('ALTER TABLE "User" DROP COLUMN "score";', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "Tip" DROP COLUMN "userId";',
            Classification.BRIEF,
            'CREATE TABLE "User" ("id" SERIAL NOT NULL, CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n'
            'CREATE TABLE "Tip" ("id" SERIAL NOT NULL, "userId" INTEGER);\n'
            'ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");',
            title="a foreign key column: the referenced table is locked too",
        ),
    ),
)
