"""drop-column: DROP COLUMN breaks code that still reads the column."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "drop-column"


def check(o: op.DropColumn, ctx: Context) -> Effect:
    locks = [(o.on, LockMode.ACCESS_EXCLUSIVE)]
    model = ctx.schema.tables.get(o.on)
    if model is not None:
        for constraint in model.constraints.values():
            if constraint.ref_table and o.column in constraint.columns:
                locks.append((constraint.ref_table, LockMode.ACCESS_EXCLUSIVE))
    return claim(
        ID,
        ctx,
        f"Dropping {quoted(o.on)}.{quoted_name(o.column)} is catalog-only, but the application version still "
        "running selects it (Prisma Client names every column) and fails until the new code is everywhere. "
        "The data is gone for good.",
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
        "of a model by name: the version still running fails on each query of that model."
    ),
    instead="Ship the code that stops using the column first; drop it in a later migration.",
    operations=(op.DropColumn,),
    check=check,
    examples=(Example('ALTER TABLE "User" DROP COLUMN "score";', Classification.BRIEF, STANDARD_SETUP),),
)
