"""add-unique-constraint: UNIQUE (or EXCLUDE) constraints build an index under ACCESS EXCLUSIVE."""

from __future__ import annotations

import re

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, IndexBuild, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    in_a_do_block,
    partitioned,
    quoted,
    quoted_name,
)

ID = "add-unique-constraint"


def check(o: op.AddConstraint | op.AddColumn, ctx: Context) -> Effect | None:
    columns: tuple[str, ...]
    if isinstance(o, op.AddColumn):
        if not o.column.unique or o.column.primary_key:
            return None
        name, columns, using_index = f"{o.on}_{o.column.name}_key", (o.column.name,), None
    else:
        if o.constraint.kind not in ("unique", "exclude"):
            return None
        name, columns, using_index = (
            o.constraint.name or "...",
            o.constraint.columns,
            o.constraint.using_index,
        )
    if using_index:
        return claim(
            ID,
            ctx,
            f"Attaching the already-built index {quoted_name(using_index)} as a constraint is catalog-only, under a "
            f"brief ACCESS EXCLUSIVE lock on {quoted(o.on)}.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            table=o.on,
        )
    cols = ", ".join(quoted_name(c) for c in columns)
    return claim(
        ID,
        ctx,
        f"Adding unique constraint {quoted_name(name)} builds its index by reading all of {quoted(o.on)} while an "
        "ACCESS EXCLUSIVE lock blocks every read and write.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        scans=[o.on],
        index_builds=[IndexBuild(o.on, columns, unique=True)],
        # Before 18 each partition's index is built under SHARE, as CREATE INDEX builds it (measured on 15).
        partition_lock=LockMode.SHARE if ctx.postgres_version < 18 else None,
        alternative=(
            f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name(name)} ON {quoted(o.on)} ({cols});\n"
            f"-- next migration:\nALTER TABLE {quoted(o.on)} ADD CONSTRAINT {quoted_name(name)} UNIQUE USING INDEX {quoted_name(name)};"
        ),
        table=o.on,
        # PostgreSQL builds no index CONCURRENTLY on a partitioned table.
        fix=None if partitioned(ctx, o.on) else _fix(o, ctx.sql, name, cols),
    )


# Index options the rewrite would have to carry into CREATE UNIQUE INDEX: rare enough to leave to a person.
_INDEX_OPTIONS = re.compile(r"\b(INCLUDE|NULLS|WITH|TABLESPACE)\b", re.IGNORECASE)
_DEFERRABLE = re.compile(
    r"\b(?:NOT\s+)?DEFERRABLE\b(?:\s+INITIALLY\s+(?:DEFERRED|IMMEDIATE))?", re.IGNORECASE
)


def _fix(o: op.AddConstraint | op.AddColumn, sql: str, name: str, cols: str) -> Fix | None:
    if isinstance(o, op.AddColumn) or o.constraint.kind != "unique" or not o.constraint.name or not cols:
        return None
    if _INDEX_OPTIONS.search(sql):
        return None
    # DEFERRABLE belongs to the constraint, not the index: `USING INDEX` takes it as it is.
    deferrable = " ".join(m.group(0).upper() for m in _DEFERRABLE.finditer(sql))
    return Fix(
        "Build the unique index CONCURRENTLY, then attach it as the constraint (catalog-only).",
        alone=(f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name(name)} ON {quoted(o.on)} ({cols})",),
        later=(
            f"ALTER TABLE {quoted(o.on)} ADD CONSTRAINT {quoted_name(name)} UNIQUE USING INDEX {quoted_name(name)}"
            + (f" {deferrable}" if deferrable else ""),
        ),
    )


RULE = Rule(
    id=ID,
    title="Unique constraint built while locked",
    summary="`ADD CONSTRAINT ... UNIQUE` builds an index under ACCESS EXCLUSIVE: no reads or writes meanwhile.",
    why=(
        "The constraint needs a unique index, and building it inside `ALTER TABLE` holds ACCESS EXCLUSIVE for "
        "the whole build, which is worse than a plain `CREATE UNIQUE INDEX` (that one at least allows reads)."
    ),
    instead=(
        "Build the index with `CREATE UNIQUE INDEX CONCURRENTLY`, then attach it: "
        "`ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX ...` (catalog-only). Prisma's `@unique` only "
        "needs the index, so the constraint step is optional."
        + in_a_do_block("builds the index before the block and attaches it in the block")
    ),
    operations=(op.AddConstraint, op.AddColumn),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "User" ADD CONSTRAINT "User_discordId_key" UNIQUE ("discordId");',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "User" ADD CONSTRAINT "User_score_key2" UNIQUE USING INDEX "User_score_key";',
            Classification.BRIEF,
            STANDARD_SETUP + 'CREATE UNIQUE INDEX "User_score_key" ON "User"("score");',
        ),
        Example(
            'ALTER TABLE "Event" ADD CONSTRAINT "Event_id_key" UNIQUE ("id");',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: each partition's index is built under SHARE before PostgreSQL 18, ACCESS EXCLUSIVE from 18",
        ),
        Example(
            "DO $$ BEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'User_discordId_key') THEN\n"
            '    ALTER TABLE "User" ADD CONSTRAINT "User_discordId_key" UNIQUE ("discordId");\n  END IF;\nEND $$;',
            Classification.BLOCKING,
            STANDARD_SETUP,
            title="inside a DO block, guarded so it can run again: the index built CONCURRENTLY before the block, "
            "attached in it",
        ),
    ),
)
