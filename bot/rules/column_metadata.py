"""column-metadata: DROP NOT NULL, SET/DROP DEFAULT and column options: catalog changes under a brief lock."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "column-metadata"

_LOCKS = {
    "statistics or attribute options": LockMode.SHARE_UPDATE_EXCLUSIVE,
}


def check(
    o: op.DropNotNull | op.SetDefault | op.DropDefault | op.AlterColumnOption | op.AlterColumnIdentity,
    ctx: Context,
) -> Effect:
    mode = LockMode.ACCESS_EXCLUSIVE
    if isinstance(o, op.AlterColumnOption):
        mode = _LOCKS.get(o.option, LockMode.ACCESS_EXCLUSIVE)
    what = {
        op.DropNotNull: "DROP NOT NULL",
        op.SetDefault: "SET DEFAULT",
        op.DropDefault: "DROP DEFAULT",
    }.get(type(o), "this column change")
    return claim(
        ID,
        ctx,
        f"{what} on {quoted(o.on)}.{quoted_name(o.column)} changes only the catalog, under a brief "
        f"{mode.sql_name} lock.",
        {o.on: mode},
        table=o.on,
    )


RULE = Rule(
    id=ID,
    title="Column metadata change (brief lock)",
    summary="`DROP NOT NULL`, `SET DEFAULT`, `DROP DEFAULT` and column options change only the catalog.",
    why=(
        "No row is read or written, but most of these take ACCESS EXCLUSIVE for an instant: with a long "
        "transaction open on the table, the statement waits and every query queues behind it. A new DEFAULT "
        "applies to future rows only, so even a volatile one is cheap here."
    ),
    instead="Keep it; run it with a `lock_timeout`.",
    operations=(op.DropNotNull, op.SetDefault, op.DropDefault, op.AlterColumnOption, op.AlterColumnIdentity),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET DEFAULT \'hi\';', Classification.BRIEF, STANDARD_SETUP
        ),
        Example('ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;', Classification.BRIEF, STANDARD_SETUP),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "createdAt" DROP NOT NULL;', Classification.BRIEF, STANDARD_SETUP
        ),
        Example(
            'ALTER TABLE "User" ALTER COLUMN "bio" SET STATISTICS 200;', Classification.SAFE, STANDARD_SETUP
        ),
    ),
)
