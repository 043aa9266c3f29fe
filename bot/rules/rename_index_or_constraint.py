"""rename-index-or-constraint: renaming an index or constraint is catalog-only."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "rename-index-or-constraint"


def check(o: op.RenameIndex | op.RenameConstraint, ctx: Context) -> Effect:
    if isinstance(o, op.RenameIndex):
        return claim(ID, ctx, f"Renaming index {quoted_name(o.name)} does not lock its table.", {})
    return claim(
        ID,
        ctx,
        f"Renaming constraint {quoted_name(o.name)} takes a brief ACCESS EXCLUSIVE lock on {quoted(o.on)}.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Index or constraint renamed",
    summary="Renaming an index locks only the index; renaming a constraint locks its table briefly.",
    why="Both are catalog changes. Prisma writes them when `@@index`/`@@unique` names or `map:` change.",
    instead="Nothing to change; a `lock_timeout` covers the constraint rename.",
    operations=(op.RenameIndex, op.RenameConstraint),
    check=check,
    examples=(
        Example(
            'ALTER INDEX "Tip_amount_idx" RENAME TO "Tip_amount_index";', Classification.SAFE, STANDARD_SETUP
        ),
        Example(
            'ALTER TABLE "Tip" RENAME CONSTRAINT "Tip_userId_fkey" TO "Tip_user_fkey";',
            Classification.BRIEF,
            STANDARD_SETUP,
        ),
    ),
)
