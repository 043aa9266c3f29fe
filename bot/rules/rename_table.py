"""rename-table: RENAME TO breaks the application version that is still running."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import PARTITIONED_SETUP, STANDARD_SETUP, Context, Example, Rule, claim, quoted

ID = "rename-table"


def check(o: op.RenameTable, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"Renaming table {quoted(o.name)} to {quoted(o.new_name)} is instant, but every query of the running "
        "application names the old table and fails until the new code is deployed.",
        {o.name: LockMode.ACCESS_EXCLUSIVE},
        breaking=True,
        alternative=f'Keep the table name and rename the model only: `@@map("{o.name}")`.',
        table=o.name,
        partitions=False,
    )


RULE = Rule(
    id=ID,
    title="Table renamed under running code",
    summary="`ALTER TABLE ... RENAME TO` breaks every query of the application version still running.",
    why="The old application version keeps querying the old table name until every instance is replaced.",
    instead='Rename the Prisma model and keep the table with `@@map("OldName")`, or expand/contract.',
    operations=(op.RenameTable,),
    check=check,
    examples=(
        Example('ALTER TABLE "Log" RENAME TO "AuditLog";', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "Event" RENAME TO "Events";',
            Classification.BRIEF,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: only the table itself is locked",
        ),
    ),
)
