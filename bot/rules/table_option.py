"""table-option: OWNER TO, REPLICA IDENTITY, storage parameters, SET SCHEMA: catalog changes."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "table-option"


def check(o: op.TableOption, ctx: Context) -> Effect:
    mode = LockMode[o.lock]
    return claim(
        ID,
        ctx,
        f"Changing the {o.option} of {quoted(o.on)} is catalog-only, under a {mode.sql_name} lock.",
        {o.on: mode},
        breaking=o.option == "set schema",
        table=o.on,
        # Owner, replica identity and schema stay the parent's own (measured); partitions keep theirs.
        partitions=False,
    )


RULE = Rule(
    id=ID,
    title="Table option changed",
    summary="Owner, replica identity, storage parameters and schema changes are catalog-only.",
    why=(
        "No rows are touched. Storage parameters take SHARE UPDATE EXCLUSIVE; the others take ACCESS "
        "EXCLUSIVE briefly. Moving a table to another schema breaks queries that name the old one."
    ),
    instead="Keep it; run it with a `lock_timeout`.",
    operations=(op.TableOption,),
    check=check,
    examples=(
        Example('ALTER TABLE "Tip" SET (fillfactor = 90);', Classification.SAFE, STANDARD_SETUP),
        Example('ALTER TABLE "Tip" REPLICA IDENTITY FULL;', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "Event" REPLICA IDENTITY FULL;',
            Classification.BRIEF,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: only the table itself is locked",
        ),
    ),
)
