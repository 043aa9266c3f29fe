"""catalog-change: new tables, types, views, functions, extensions, grants, comments, settings."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    quoted,
    quoted_name,
)

ID = "catalog-change"


def check(
    o: op.CreateTable
    | op.CreateEnum
    | op.RenameType
    | op.DropType
    | op.CreateView
    | op.DropView
    | op.CatalogOnly
    | op.SetSetting
    | op.TransactionControl,
    ctx: Context,
) -> Effect:
    if isinstance(o, op.CreateTable):
        return claim(
            ID,
            ctx,
            f"Creates table {quoted(o.name)}.",
            [(t, LockMode.ACCESS_SHARE) for t in o.reads],
            scans=o.reads,
        )
    if isinstance(o, op.CreateView):
        locks = [(t, LockMode.ACCESS_SHARE) for t in o.reads]
        if o.replace and ctx.live(o.name):
            locks.append((o.name, LockMode.ACCESS_EXCLUSIVE))
        # A view only names its tables; a materialized view runs its query, which reads every partition.
        return claim(
            ID,
            ctx,
            f"Creates view {quoted(o.name)}.",
            locks,
            scans=o.reads if o.materialized else (),
            partitions=o.materialized,
        )
    if isinstance(o, op.DropView):
        return claim(
            ID,
            ctx,
            f"Drops view {quoted(o.name)}; code still reading it fails.",
            {o.name: LockMode.ACCESS_EXCLUSIVE},
            breaking=True,
            table=o.name,
        )
    if isinstance(o, op.DropType) and o.cascade:
        columns = ctx.schema.columns_of_type(o.name)
        if columns:
            listed = ", ".join(f"{quoted(t)}.{quoted_name(c)}" for t, c in columns)
            return claim(
                ID,
                ctx,
                f"DROP TYPE ... CASCADE also drops every column of type {quoted(o.name)}: {listed}, under ACCESS "
                "EXCLUSIVE on their tables. Their data is lost and code still reading them fails.",
                [(t, LockMode.ACCESS_EXCLUSIVE) for t, _ in columns],
                breaking=True,
                table=columns[0][0],
            )
    if isinstance(o, op.CatalogOnly):
        return claim(
            ID,
            ctx,
            f"Catalog change ({o.what}); no table is locked.",
            [(t, LockMode[m]) for t, m in o.weak_locks],
            partitions=False,
        )
    return claim(ID, ctx, "Catalog change; no table is locked.", {})


RULE = Rule(
    id=ID,
    title="Catalog change (safe)",
    summary="Creating tables, types, views, functions and extensions, grants, comments and settings lock no live table.",
    why="These statements change only the catalog or objects nothing uses yet.",
    instead="Nothing to change.",
    operations=(
        op.CreateTable,
        op.CreateEnum,
        op.RenameType,
        op.DropType,
        op.CreateView,
        op.DropView,
        op.CatalogOnly,
        op.SetSetting,
        op.TransactionControl,
    ),
    check=check,
    examples=(
        Example(
            'CREATE TABLE "New" ("id" INTEGER NOT NULL, CONSTRAINT "New_pkey" PRIMARY KEY ("id"));',
            Classification.SAFE,
            STANDARD_SETUP,
        ),
        Example('COMMENT ON COLUMN "Tip"."amount" IS \'cents\';', Classification.SAFE, STANDARD_SETUP),
        Example("CREATE TYPE \"Color\" AS ENUM ('RED', 'BLUE');", Classification.SAFE, STANDARD_SETUP),
        Example(
            'CREATE VIEW "BigTips" AS SELECT * FROM "Tip" WHERE "amount" > 100;',
            Classification.SAFE,
            STANDARD_SETUP,
        ),
        Example(
            'DROP TYPE "Role" CASCADE;',
            Classification.BRIEF,
            STANDARD_SETUP,
            title="CASCADE drops the columns",
        ),
        Example(
            'CREATE VIEW "EventKinds" AS SELECT "kind" FROM "Event";',
            Classification.SAFE,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a view of a partitioned table locks no partition",
        ),
        Example(
            "COMMENT ON TABLE \"Event\" IS 'clicks';",
            Classification.SAFE,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a comment on a partitioned table locks no partition",
        ),
    ),
)
