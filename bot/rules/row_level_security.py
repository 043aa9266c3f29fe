"""row-level-security: enabling RLS or changing policies locks the table briefly."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "row-level-security"


def check(o: op.RowLevelSecurity, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"{o.action.capitalize()} on {quoted(o.on)} takes a brief ACCESS EXCLUSIVE lock. Enabling row level "
        "security without a policy hides every row from roles that are not the owner.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        table=o.on,
        partitions=False,
    )


RULE = Rule(
    id=ID,
    title="Row level security or policy changed",
    summary="`ENABLE ROW LEVEL SECURITY` and `CREATE/ALTER/DROP POLICY` take ACCESS EXCLUSIVE briefly.",
    why="Catalog-only, but with a long transaction open on the table the lock waits and queues all queries.",
    instead="Keep it; run it with a `lock_timeout`, and create policies in the same migration that enables RLS.",
    operations=(op.RowLevelSecurity,),
    check=check,
    examples=(
        Example('ALTER TABLE "Tip" ENABLE ROW LEVEL SECURITY;', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'CREATE POLICY "tips_read" ON "Tip" FOR SELECT USING (true);',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Event" ENABLE ROW LEVEL SECURITY;',
            Classification.BRIEF,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: only the table itself is locked",
        ),
    ),
)
