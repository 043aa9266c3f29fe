"""drop-table: DROP TABLE breaks code that still uses it and locks tables referencing it."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "drop-table"


def check(o: op.DropTable, ctx: Context) -> Effect:
    locks = [(o.name, LockMode.ACCESS_EXCLUSIVE)]
    locks += [(t, LockMode.ACCESS_EXCLUSIVE) for t in ctx.schema.referencing_tables(o.name)]
    return claim(
        ID,
        ctx,
        f"Dropping {quoted(o.name)} loses its data and breaks any running code that still queries it; "
        "tables with foreign keys to it are locked too.",
        locks,
        breaking=True,
        alternative="Deploy code that no longer uses the table first, then drop it in a later migration.",
        table=o.name,
        fix=Fix(
            "Drop the table in a later migration, after the code that stopped using it is deployed.",
            later=(ctx.sql,),
            deploy_first=f"code that no longer uses {quoted(o.name)}",
        )
        if ctx.sql
        else None,
    )


RULE = Rule(
    id=ID,
    title="Table dropped",
    summary="`DROP TABLE` is irreversible and breaks code still using the table.",
    why=(
        "The drop is quick under ACCESS EXCLUSIVE, but the data is gone and the application version still "
        "running fails on every query of that model."
    ),
    instead="Remove the model from the code and deploy; drop the table in a later migration.",
    operations=(op.DropTable,),
    check=check,
    examples=(Example('DROP TABLE "Old";', Classification.BRIEF, STANDARD_SETUP),),
)
