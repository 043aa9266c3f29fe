"""table-rewrite: CLUSTER, VACUUM FULL, SET LOGGED/UNLOGGED and REINDEX rewrite or rebuild under a strong lock."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, LockMode
from bot.rules.base import STANDARD_SETUP, Context, Example, Rule, claim, quoted, quoted_name

ID = "table-rewrite"


def check(o: op.Maintenance | op.SetLogged | op.Reindex, ctx: Context) -> Effect | None:
    if isinstance(o, op.SetLogged):
        word = "LOGGED" if o.logged else "UNLOGGED"
        return claim(
            ID,
            ctx,
            f"SET {word} rewrites {quoted(o.on)} under ACCESS EXCLUSIVE: no reads or writes until it is done.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            rewrites=[o.on],
            scans=[o.on],
            table=o.on,
            alternative="Do this in a maintenance window, not in a deploy migration.",
        )
    if isinstance(o, op.Reindex):
        if o.concurrently:
            return claim(ID, ctx, "REINDEX CONCURRENTLY rebuilds without blocking writes.", {})
        table = ctx.schema.index_table(o.target) or o.target
        return claim(
            ID,
            ctx,
            f"REINDEX blocks writes to {quoted(table)} (and reads that use the index) for the whole rebuild.",
            {table: LockMode.SHARE},
            scans=[table],
            alternative=f"REINDEX INDEX CONCURRENTLY {quoted_name(o.target)};",
            table=table,
        )
    if o.kind in ("vacuum", "analyze"):
        return claim(
            ID,
            ctx,
            f"{o.kind.upper()} reads the table under SHARE UPDATE EXCLUSIVE: reads and writes continue.",
            [(t, LockMode.SHARE_UPDATE_EXCLUSIVE) for t in o.tables],
        )
    tables = o.tables
    what = "VACUUM FULL" if o.kind == "vacuum_full" else "CLUSTER"
    if not tables:
        return claim(
            ID,
            ctx,
            f"{what} without a table rewrites every table it covers under ACCESS EXCLUSIVE.",
            {},
            classification=Classification.BLOCKING,
            alternative="Use pg_repack or do it in a maintenance window.",
        )
    return claim(
        ID,
        ctx,
        f"{what} rewrites {', '.join(quoted(t) for t in tables)} under ACCESS EXCLUSIVE: no reads or writes "
        "until the copy is done.",
        [(t, LockMode.ACCESS_EXCLUSIVE) for t in tables],
        rewrites=tables,
        scans=tables,
        alternative="Use pg_repack (online) or run it in a maintenance window, not in a migration.",
        table=tables[0],
    )


RULE = Rule(
    id=ID,
    title="Table rewritten by maintenance",
    summary="`CLUSTER`, `VACUUM FULL`, `SET LOGGED/UNLOGGED` rewrite the table under ACCESS EXCLUSIVE.",
    why="Each copies the whole table into new files while it is locked against reads and writes.",
    instead="pg_repack, or a maintenance window; plain `VACUUM`/`ANALYZE` are fine.",
    operations=(op.Maintenance, op.SetLogged, op.Reindex),
    check=check,
    examples=(
        Example('CLUSTER "Tip" USING "Tip_pkey";', Classification.BLOCKING, STANDARD_SETUP),
        Example('ALTER TABLE "Tip" SET UNLOGGED;', Classification.BLOCKING, STANDARD_SETUP),
        Example('ANALYZE "Tip";', Classification.SAFE, STANDARD_SETUP),
    ),
)
