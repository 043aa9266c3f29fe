"""create-index: CREATE INDEX without CONCURRENTLY on a live table."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, IndexBuild, LockMode
from bot.rules.base import (
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    partitioned,
    quoted,
    quoted_name,
    with_concurrently,
)

ID = "create-index"
_PARTITIONED_SETUP = """
CREATE TABLE "Event" ("id" TEXT NOT NULL, "kind" TEXT, "createdAt" TIMESTAMP(3) NOT NULL) PARTITION BY RANGE ("createdAt");
CREATE TABLE "Event_2026" PARTITION OF "Event" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO "Event" ("id", "kind", "createdAt") VALUES ('a', 'x', '2026-06-01');
"""


def check(o: op.CreateIndex, ctx: Context) -> Effect:
    kind = "unique index" if o.unique else "index"
    if o.if_not_exists and o.name and ctx.schema.index_table(o.name) == o.on:
        # PostgreSQL still takes the lock before it notices the index exists, then builds nothing.
        mode = LockMode.SHARE_UPDATE_EXCLUSIVE if o.concurrently else LockMode.SHARE
        return claim(
            ID, ctx, f"{quoted_name(o.name)} already exists: nothing is built.", {o.on: mode}, table=o.on
        )
    if o.concurrently:
        return claim(
            ID,
            ctx,
            f"Builds the {kind} on {quoted(o.on)} without blocking writes (SHARE UPDATE EXCLUSIVE).",
            {o.on: LockMode.SHARE_UPDATE_EXCLUSIVE},
            scans=[o.on],
            table=o.on,
        )
    if partitioned(ctx, o.on):
        return _on_partitioned_table(o, ctx)
    statement = f"CREATE {'UNIQUE ' if o.unique else ''}INDEX CONCURRENTLY {quoted_name(o.name)} ON {quoted(o.on)} (...)"
    return claim(
        ID,
        ctx,
        f"Building this {kind} holds a SHARE lock on {quoted(o.on)} while it reads the whole table: "
        "every INSERT, UPDATE and DELETE on it waits until the build finishes, for a time that grows "
        "with the table.",
        {o.on: LockMode.SHARE},
        scans=[o.on],
        index_builds=[IndexBuild(o.on, o.columns, o.unique)],
        alternative=f"{statement};",
        table=o.on,
        fix=_fix(ctx.sql),
    )


def _on_partitioned_table(o: op.CreateIndex, ctx: Context) -> Effect:
    """PostgreSQL refuses CONCURRENTLY on a partitioned table; the build recurses into every partition, each
    locked and read in turn. Partitions are often created by the application, not by migrations: zdm knows
    only those the migrations made, so the statement is blocking whatever it saw."""
    partitions = ctx.schema.partitions_of(o.on)
    kind = "unique index" if o.unique else "index"
    name = quoted_name(o.name)
    return claim(
        ID,
        ctx,
        f"Building this {kind} on the partitioned table {quoted(o.on)} holds a SHARE lock on it and on each "
        "partition while every partition is read: writes to them wait until the build finishes. PostgreSQL "
        "cannot build it CONCURRENTLY on a partitioned table, so zdm has no automatic rewrite.",
        [(o.on, LockMode.SHARE), *((p, LockMode.SHARE) for p in partitions)],
        scans=partitions,
        index_builds=[IndexBuild(p, o.columns, o.unique) for p in partitions],
        # Blocking once the table is in use, whatever partitions zdm saw; on a table this migration creates
        # nothing waits.
        classification=Classification.BLOCKING if ctx.live(o.on) else None,
        alternative=(
            f"Create the parent's index without building anything, `CREATE {'UNIQUE ' if o.unique else ''}INDEX "
            f"{name} ON ONLY {quoted(o.on)} (...)`; then, for each partition, `CREATE "
            f"{'UNIQUE ' if o.unique else ''}INDEX CONCURRENTLY` the same index on the partition (alone in its "
            f"migration before Prisma 7.4) and `ALTER INDEX {name} ATTACH PARTITION` it. The parent's index "
            "becomes valid once every partition's is attached. Partitions created later get the index by "
            "themselves."
        ),
        table=o.on,
    )


def _fix(sql: str) -> Fix | None:
    concurrent = with_concurrently(sql)
    if concurrent is None:
        return None
    return Fix(
        "Build the index CONCURRENTLY, in a migration of its own before Prisma 7.4.", alone=(concurrent,)
    )


RULE = Rule(
    id=ID,
    title="Index built without CONCURRENTLY",
    summary="`CREATE INDEX` on an existing table blocks writes to it until the index is built.",
    why=(
        "A plain `CREATE INDEX` takes a SHARE lock: reads go on, but every write waits while PostgreSQL "
        "scans the whole table and sorts it. On a table with millions of rows that is minutes of failed "
        "or queued requests. Indexes on tables created in the same migration are fine: nothing uses them yet."
    ),
    instead=(
        "Build it with `CREATE INDEX CONCURRENTLY` (writes continue; it takes longer and cannot run inside a "
        "transaction block). Before Prisma 7.4 the statement must be alone in its `migration.sql`; on a large "
        "table, apply it by hand and mark the migration applied with `npx prisma migrate resolve --applied`."
    ),
    operations=(op.CreateIndex,),
    check=check,
    examples=(
        Example(
            'CREATE INDEX "Tip_createdAt_idx" ON "Tip"("createdAt");', Classification.BLOCKING, STANDARD_SETUP
        ),
        Example(
            'CREATE UNIQUE INDEX "User_email_key" ON "User"("email");',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'CREATE TABLE "New" ("id" INTEGER NOT NULL, "userId" INTEGER);\n'
            'CREATE INDEX "New_userId_idx" ON "New"("userId");',
            Classification.SAFE,
            STANDARD_SETUP,
            title="an index on a table created in the same migration",
        ),
        Example(
            'CREATE INDEX CONCURRENTLY "Tip_userId_idx" ON "Tip"("userId");',
            Classification.SAFE,
            STANDARD_SETUP,
        ),
        Example(
            'CREATE INDEX "Event_kind_idx" ON "Event"("kind");',
            Classification.BLOCKING,
            _PARTITIONED_SETUP,
            title="an index on a partitioned table: every partition is locked and read; no CONCURRENTLY",
        ),
    ),
)
