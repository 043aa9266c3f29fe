"""add-primary-key: PRIMARY KEY constraints build an index (and may set NOT NULL) under ACCESS EXCLUSIVE."""

from __future__ import annotations

from bot.analysis import operations as op
from bot.analysis.model import Classification, Effect, Fix, IndexBuild, LockMode
from bot.rules.base import (
    PARTITIONED_SETUP,
    STANDARD_SETUP,
    Context,
    Example,
    Rule,
    claim,
    not_null_steps,
    partitioned,
    quoted,
    quoted_name,
)

ID = "add-primary-key"


def check(o: op.AddConstraint | op.AddColumn, ctx: Context) -> Effect | None:
    columns: tuple[str, ...]
    if isinstance(o, op.AddColumn):
        if not o.column.primary_key:
            return None
        name, columns, using_index = f"{o.on}_pkey", (o.column.name,), None
    else:
        if o.constraint.kind != "primary_key":
            return None
        name, columns, using_index = (
            o.constraint.name or f"{o.on}_pkey",
            o.constraint.columns,
            o.constraint.using_index,
        )
    if using_index:
        nullable = [c for c in columns if not _known_not_null(ctx, o.on, c)]
        return claim(
            ID,
            ctx,
            f"Attaching index {quoted_name(using_index)} as the primary key of {quoted(o.on)} is catalog-only "
            "when its columns are already NOT NULL, under a brief ACCESS EXCLUSIVE lock.",
            {o.on: LockMode.ACCESS_EXCLUSIVE},
            scans=[o.on] if nullable else [],
            table=o.on,
        )
    cols = ", ".join(quoted_name(c) for c in columns)
    return claim(
        ID,
        ctx,
        f"Adding primary key {quoted_name(name)} builds its index (and checks NOT NULL) by reading all of "
        f"{quoted(o.on)} while an ACCESS EXCLUSIVE lock blocks every read and write.",
        {o.on: LockMode.ACCESS_EXCLUSIVE},
        scans=[o.on],
        index_builds=[IndexBuild(o.on, columns, unique=True)],
        # Before 18 each partition's index is built under SHARE, as CREATE INDEX builds it (measured on 15).
        partition_lock=LockMode.SHARE if ctx.postgres_version < 18 else None,
        alternative=(
            f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name(name)} ON {quoted(o.on)} ({cols});\n"
            "-- make the columns NOT NULL with the CHECK ... NOT VALID / VALIDATE / SET NOT NULL sequence, then:\n"
            f"ALTER TABLE {quoted(o.on)} ADD CONSTRAINT {quoted_name(name)} PRIMARY KEY USING INDEX {quoted_name(name)};"
        ),
        table=o.on,
        # PostgreSQL builds no index CONCURRENTLY on a partitioned table.
        fix=None if partitioned(ctx, o.on) else _fix(o, ctx, name, columns),
    )


def _fix(o: op.AddConstraint | op.AddColumn, ctx: Context, name: str, columns: tuple[str, ...]) -> Fix | None:
    if isinstance(o, op.AddColumn) or not columns:
        return None
    now: list[str] = []
    later: list[str] = []
    for column in columns:
        if not _known_not_null(ctx, o.on, column):
            check_now, check_later = not_null_steps(o.on, column)
            now.extend(check_now)
            later.extend(check_later)
    cols = ", ".join(quoted_name(c) for c in columns)
    return Fix(
        "Build the unique index CONCURRENTLY, make the columns NOT NULL without a long lock, then attach the index "
        "as the primary key.",
        in_place=tuple(now),
        alone=(f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name(name)} ON {quoted(o.on)} ({cols})",),
        later=(
            *later,
            f"ALTER TABLE {quoted(o.on)} ADD CONSTRAINT {quoted_name(name)} PRIMARY KEY USING INDEX {quoted_name(name)}",
        ),
    )


def _known_not_null(ctx: Context, table: str, column: str) -> bool:
    model = ctx.schema.column(table, column)
    return model is not None and model.not_null


RULE = Rule(
    id=ID,
    title="Primary key built while locked",
    summary="`ADD CONSTRAINT ... PRIMARY KEY` builds an index under ACCESS EXCLUSIVE.",
    why=(
        "Like a unique constraint, the primary key's index is built while the table is locked against reads "
        "and writes; nullable key columns are also scanned to set NOT NULL."
    ),
    instead=(
        "`CREATE UNIQUE INDEX CONCURRENTLY`, make the columns NOT NULL without a long lock, then "
        "`ADD CONSTRAINT ... PRIMARY KEY USING INDEX ...`."
    ),
    operations=(op.AddConstraint, op.AddColumn),
    check=check,
    examples=(
        Example(
            'ALTER TABLE "Log" ADD CONSTRAINT "Log_pkey" PRIMARY KEY ("id");',
            Classification.BLOCKING,
            STANDARD_SETUP,
        ),
        Example(
            'ALTER TABLE "Log" ADD CONSTRAINT "Log_pkey" PRIMARY KEY USING INDEX "Log_id_key";',
            Classification.BRIEF,
            STANDARD_SETUP + 'CREATE UNIQUE INDEX "Log_id_key" ON "Log"("id");',
        ),
        Example(
            'ALTER TABLE "Event" ADD CONSTRAINT "Event_pkey" PRIMARY KEY ("id");',
            Classification.BLOCKING,
            STANDARD_SETUP + PARTITIONED_SETUP,
            title="a partitioned table: each partition's index is built under SHARE before PostgreSQL 18, ACCESS EXCLUSIVE from 18",
        ),
    ),
)
