"""backfill: UPDATE/DELETE of existing rows inside a migration."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted_name

ID = "backfill"
# Row locks only exist on rows: the examples need some.
_WITH_ROWS = (
    STANDARD_SETUP
    + """INSERT INTO "User" ("email") SELECT 'u' || g || '@example.com' FROM generate_series(1, 50) AS g;
INSERT INTO "Tip" ("userId", "amount") SELECT 1 + g % 50, CASE WHEN g % 3 = 0 THEN NULL ELSE g END FROM generate_series(1, 200) AS g;
"""
)


def check(o: op.DataChange, ctx: Context) -> Effect:
    reads = [(t, LockMode.ACCESS_SHARE) for t in o.reads]
    if o.kind == "select" or o.target is None:
        return claim(ID, ctx, "Reads data; takes no lock that blocks others.", reads, scans=o.reads)
    locks = [*reads, (o.target, LockMode.ROW_EXCLUSIVE)]
    if o.kind == "insert":
        return claim(
            ID,
            ctx,
            f"Inserts rows into {quoted_name(o.target)}; writes by others continue.",
            locks,
            scans=o.reads,
        )
    if not ctx.live(o.target):
        return claim(
            ID,
            ctx,
            f"Changes rows of {quoted_name(o.target)}, created in this migration.",
            locks,
            scans=o.reads,
        )
    return claim(
        ID,
        ctx,
        f"This {o.kind.upper()} rewrites existing rows of {quoted_name(o.target)} inside the migration: each row it "
        "touches stays locked against other writes until the migration's transaction ends, and on a big table "
        "it runs as one long transaction.",
        locks,
        scans=[o.target, *o.reads],
        classification=Classification.BLOCKING,
        alternative=(
            "Backfill outside the migration, in batches of a few thousand rows by primary key, each in its own "
            "transaction; keep only the schema change in the migration."
        ),
        table=o.target,
    )


RULE = Rule(
    id=ID,
    title="Data backfilled inside the migration",
    summary="`UPDATE`/`DELETE` on a live table in a migration holds row locks on every row it touches.",
    why=(
        "The statement runs as one transaction over the whole table: every touched row is locked against "
        "other writes until it ends, dead rows pile up, and replicas lag. Before Prisma 7.4 the whole file "
        "is one transaction, so locks taken by earlier statements are held for the whole backfill too."
    ),
    instead="Backfill in batches from a script or job, outside `migration.sql`.",
    operations=(op.DataChange,),
    check=check,
    examples=(
        Example('UPDATE "User" SET "bio" = \'x\' WHERE "bio" IS NULL;', Classification.BLOCKING, _WITH_ROWS),
        Example('DELETE FROM "Tip" WHERE "amount" IS NULL;', Classification.BLOCKING, _WITH_ROWS),
        Example(
            'INSERT INTO "Log" ("id", "message") VALUES (1, \'hello\');', Classification.SAFE, STANDARD_SETUP
        ),
    ),
)
