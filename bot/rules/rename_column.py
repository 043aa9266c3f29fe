"""rename-column: RENAME COLUMN breaks the application version that is still running."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "rename-column"


def check(o: op.RenameColumn, ctx: Context) -> Effect:
    return claim(
        ID,
        ctx,
        f"Renaming {quoted(o.on)}.{quoted_name(o.column)} to {quoted_name(o.new_name)} is instant, but the running "
        "application still selects the old name: its queries fail from the moment the migration applies "
        "until the new code is deployed everywhere.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        breaking=True,
        alternative=(
            f'Keep the database name and rename only in Prisma: `{o.new_name} ... @map("{o.column}")`. '
            "Or expand/contract: add the new column, write both, backfill, switch reads, drop the old one later."
        ),
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Column renamed under running code",
    summary="`RENAME COLUMN` breaks every query of the application version still running.",
    why=(
        "Prisma Client names every column it selects. Between the migration and the end of the deploy, old "
        "instances query a column that no longer exists."
    ),
    instead='Use `@map("old_name")` on the renamed field, or expand/contract across two deploys.',
    operations=(op.RenameColumn,),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" RENAME COLUMN "discordId" TO "discord_id";',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
    ),
)
