"""What a rule is: its id, its user-facing explanation, its detection and lock claim, and its examples.

A rule judges one operation (or, for file rules, a whole file) and returns an `Effect`: the locks the operation
takes on live tables, whether it rewrites or scans them, and the safe alternative. `claim` derives the
classification from those facts, so the words a reviewer reads and the locks the tests measure on a real
PostgreSQL cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.analysis import operations as op
from bot.analysis.history import RootHistory
from bot.analysis.model import Classification, Effect, Fix, IndexBuild, LockMode, Severity
from bot.analysis.prisma import PrismaVersion
from bot.analysis.schema import Schema

AE = LockMode.ACCESS_EXCLUSIVE


@dataclass(frozen=True)
class Context:
    schema: Schema
    postgres_version: int = 15
    # The operation as a standalone statement (no semicolon), when the statement could be split; else "".
    sql: str = ""

    def live(self, table: str | None) -> bool:
        return bool(table) and self.schema.is_live(table or "")


@dataclass(frozen=True)
class Example:
    """A migration that shows the rule, run for real by the lock-truth tests.

    `setup` is an earlier migration (its tables are live); `sql` is the migration under review.
    `classification` is the worst classification zdm must give the statements of `sql`.
    """

    sql: str
    classification: Classification
    setup: str = ""
    title: str = ""
    min_postgres: int = 11
    # For rules that depend on Prisma's execution model: the version the example assumes.
    prisma: str | None = None
    # A migration PostgreSQL refuses: a part of the error it gives, which the tests expect for the statements
    # zdm says fail (and nothing claimed of those is measured: a refused statement holds nothing).
    refused_with: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    summary: str
    why: str
    instead: str
    operations: tuple[type[op.Operation], ...]
    check: Callable[[Any, Context], Effect | None]
    examples: tuple[Example, ...] = ()
    severity: Severity = Severity.ERROR


@dataclass(frozen=True)
class StatementView:
    """What file rules see of each statement: its text, operations and the locks zdm claims for it."""

    line_start: int
    sql: str
    operations: tuple[op.Operation, ...]
    locks: dict[str, LockMode]
    classification: Classification
    # Live tables it reads in full (or may).
    scans: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FileContext:
    statements: tuple[StatementView, ...]
    # Comments before the first statement: where Prisma writes its `/* Warnings: */` block.
    header: str = ""
    prisma: PrismaVersion | None = None
    postgres_version: int = 15


@dataclass(frozen=True)
class FileRule:
    """A rule over a whole file's statements (a missing lock_timeout, Prisma's transaction model)."""

    id: str
    title: str
    summary: str
    why: str
    instead: str
    check_file: Callable[[FileContext], list[tuple[int, Effect]]]
    examples: tuple[Example, ...] = ()
    severity: Severity = Severity.WARNING
    operations: tuple[type[op.Operation], ...] = field(default=())


def claim(
    rule: str,
    ctx: Context,
    message: str,
    locks: Mapping[str, LockMode] | Mapping[str | None, LockMode] | Iterable[tuple[str | None, LockMode]],
    *,
    rewrites: Iterable[str | None] = (),
    scans: Iterable[str | None] = (),
    breaking: bool = False,
    alternative: str = "",
    table: str | None = None,
    classification: Classification | None = None,
    fix: Fix | None = None,
    index_builds: Iterable[IndexBuild] = (),
    looks_up: Iterable[str | None] = (),
    partitions: bool = True,
    partition_lock: LockMode | None = None,
) -> Effect:
    """An effect restricted to live tables, classified from what it does to them.

    blocking: a lock that blocks writes (SHARE or stronger) held while a live table is rewritten or scanned;
    brief: such a lock with neither; safe: anything weaker. Objects created in the same file are not live.

    `partitions`: PostgreSQL takes the statement's locks on every partition of a partitioned table too
    (`partition_lock` instead, where it takes another mode there); False for the statements it does not
    recurse with (RENAME, COMMENT, ROW LEVEL SECURITY...).
    """
    pairs: list[tuple[str | None, LockMode]] = list(locks.items() if isinstance(locks, Mapping) else locks)
    if partitions and ctx.schema.has_partitioned_tables:
        pairs, rewrites, scans, message = _through_partitions(
            ctx, pairs, list(rewrites), list(scans), message, partition_lock
        )
    is_live = ctx.schema.is_live
    live_locks: dict[str, LockMode] = {}
    for name, mode in pairs:
        if name and is_live(name):
            held = live_locks.get(name)
            if held is None or mode > held:
                live_locks[name] = mode
    live_rewrites = frozenset(t for t in rewrites if t and is_live(t)) if rewrites else frozenset()
    live_scans = frozenset(t for t in scans if t and is_live(t)) if scans else frozenset()
    if classification is None:
        classification = classify(live_locks, live_rewrites, live_scans)
    touches_live = bool(live_locks) or bool(table and is_live(table))
    return Effect(
        rule_id=rule,
        classification=classification,
        message=message,
        locks=live_locks,
        rewrites=live_rewrites,
        scans=live_scans,
        breaking=breaking and touches_live,
        safe_alternative=alternative,
        table=table,
        fix=fix if touches_live else None,
        index_builds=tuple(b for b in index_builds if b.table and is_live(b.table)) if index_builds else (),
        looks_up=frozenset(t for t in looks_up if t and is_live(t)) if looks_up else frozenset(),
    )


def _through_partitions(
    ctx: Context,
    pairs: list[tuple[str | None, LockMode]],
    rewrites: list[str | None],
    scans: list[str | None],
    message: str,
    partition_lock: LockMode | None,
) -> tuple[list[tuple[str | None, LockMode]], list[str | None], list[str | None], str]:
    """The locks, rewrites and scans of a statement on partitioned tables, as PostgreSQL spreads them: each
    lock is taken on every partition as well, and the rows rewritten or read are the partitions' (the parent
    holds none). The message names the partitions it adds."""
    named = [name for name, _ in pairs] + rewrites + scans
    if not any(partitioned(ctx, name) for name in named if name):
        return pairs, rewrites, scans, message  # the usual case, answered without walking the schema
    stated = {name for name, _ in pairs}
    spread = list(pairs)
    told: dict[str, str] = {}
    for name, mode in pairs:
        below = ctx.schema.all_partitions(name) if name else []
        # A rule that names partitions of the table itself said which are locked (dropping one partition
        # locks its parent, not the other partitions).
        if not name or not below or stated & set(below):
            continue
        spread += [(partition, partition_lock or mode) for partition in below]
        live = [partition for partition in below if ctx.live(partition)]
        if live and name not in told:
            listed = ", ".join(quoted(p) for p in live[:5]) + (
                f" and {len(live) - 5} more" if len(live) > 5 else ""
            )
            lock = f"a {partition_lock.sql_name} lock" if partition_lock else "the same lock"
            told[name] = (
                f" {quoted(name)} is partitioned: {lock} is taken on each of its partitions ({listed})."
            )

    def rows_of(tables: list[str | None]) -> list[str | None]:
        holders: list[str | None] = []
        for table in tables:
            leaves = ctx.schema.leaf_partitions(table) if table else []
            holders.extend(leaves or [table])
        return holders

    return spread, rows_of(rewrites), rows_of(scans), message + "".join(told.values())


def classify(
    locks: Mapping[str, LockMode], rewrites: frozenset[str], scans: frozenset[str]
) -> Classification:
    strong = {table for table, mode in locks.items() if mode >= LockMode.SHARE}  # blocks writes
    if not strong:
        return Classification.SAFE
    if not strong.isdisjoint(rewrites) or not strong.isdisjoint(scans):
        return Classification.BLOCKING
    return Classification.BRIEF


def also_locks(ctx: Context, tables: Iterable[str], what: tuple[str, str], until: str) -> str:
    """A sentence naming the other live tables a statement takes ACCESS EXCLUSIVE on, and why: `what` is how
    one table and several relate to the statement ("the table its foreign key references", "the tables its
    foreign keys reference"); `until` how long every query on them waits."""
    live = sorted({t for t in tables if ctx.live(t)})
    if not live:
        return ""
    names = ", ".join(quoted(t) for t in live)
    role, pronoun = (what[0], "it") if len(live) == 1 else (what[1], "them")
    return f" It also locks {names} (ACCESS EXCLUSIVE), {role}: every query on {pronoun} waits {until}."


def partitioned(ctx: Context, table: str | None) -> bool:
    """Whether the migrations made `table` a partitioned table (PARTITION BY)."""
    model = ctx.schema.tables.get(table or "")
    return model is not None and model.partitioned


def quoted_name(name: str | None) -> str:
    """A column, index or constraint name as SQL. Unlike table keys these are never schema-qualified, and
    Prisma 2 named indexes `Table.column_unique`: the dot is part of the name."""
    if not name:
        return "?"
    return '"' + name.replace('"', '""') + '"'


def quoted(name: str | None) -> str:
    """A table or type key (`User`, `auth.users`) as SQL."""
    if not name:
        return "?"
    if "." in name:
        schema, _, bare = name.partition(".")
        return f'"{schema}"."{bare}"'
    return f'"{name}"'


# The live tables most examples start from: the shapes Prisma writes for a small app.
STANDARD_SETUP = """
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT,
    "name" VARCHAR(50),
    "bio" TEXT,
    "score" INTEGER,
    "price" DECIMAL(10,2),
    "role" "Role" NOT NULL DEFAULT 'USER',
    "discordId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Tip" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER,
    "amount" INTEGER,
    "note" VARCHAR(10),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Tip_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "Tip_amount_idx" ON "Tip"("amount");
CREATE INDEX "Tip_note_idx" ON "Tip"("note");
ALTER TABLE "Tip" ADD CONSTRAINT "Tip_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE TABLE "Log" ("id" INTEGER NOT NULL, "message" TEXT);
CREATE TABLE "Old" ("id" INTEGER NOT NULL);
CREATE MATERIALIZED VIEW "TipTotals" AS SELECT "userId", count(*) AS "tips" FROM "Tip" GROUP BY "userId";
"""


# A partitioned table with two partitions, on top of STANDARD_SETUP: PostgreSQL spreads most statements on
# "Event" to "Event_1" and "Event_2", where its rows are.
PARTITIONED_SETUP = """
CREATE TABLE "Event" ("id" INTEGER NOT NULL, "userId" INTEGER, "kind" VARCHAR(30), "amount" INTEGER) PARTITION BY RANGE ("id");
CREATE TABLE "Event_1" PARTITION OF "Event" FOR VALUES FROM (0) TO (1000);
CREATE TABLE "Event_2" PARTITION OF "Event" FOR VALUES FROM (1000) TO (2000);
"""
EVENT_USER_FKEY = (
    'ALTER TABLE "Event" ADD CONSTRAINT "Event_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
)


def in_a_do_block(rewrite: str) -> str:
    """What `zdm fix` does with the statement inside a guarded `DO` block (`bot.fixes.do_block`), for a rule's
    `instead`."""
    return (
        " In a `DO` block that guards it with `IF NOT EXISTS` over the constraint (so it can run again), "
        f"`zdm fix` {rewrite}, where the earlier migrations show that the guard runs it."
    )


def bare(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def not_null_steps(table: str, column: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SET NOT NULL without a long ACCESS EXCLUSIVE scan: (now, in a later migration).

    Now: a CHECK (col IS NOT NULL) NOT VALID (brief). Later: VALIDATE it (scans under SHARE UPDATE EXCLUSIVE),
    SET NOT NULL (PostgreSQL 12+ skips its scan thanks to the valid CHECK), then drop the CHECK.
    """
    # Not `<table>_<column>_not_null`: PostgreSQL 18 gives that name to the NOT NULL constraint itself.
    check = quoted_name(f"{bare(table)}_{column}_not_null_check"[:63])
    t, c = quoted(table), quoted_name(column)
    return (
        (f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID",),
        (
            f"ALTER TABLE {t} VALIDATE CONSTRAINT {check}",
            f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
            f"ALTER TABLE {t} DROP CONSTRAINT {check}",
        ),
    )


def with_concurrently(create_index_sql: str) -> str | None:
    """`CREATE [UNIQUE] INDEX ...` as `CREATE [UNIQUE] INDEX CONCURRENTLY ...`."""
    rewritten, count = _CREATE_INDEX.subn(r"\g<head> CONCURRENTLY ", create_index_sql, count=1)
    return rewritten if count else None


_CREATE_INDEX = re.compile(r"^(?P<head>\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\s+(?!CONCURRENTLY\b)", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryExample:
    """A change that shows a history rule: one root's migrations (folder -> SQL) and other files (repository
    path -> text) at the base commit and at the head. The rule's page shows what zdm says about it, and the
    tests check it reports `hazards` of them."""

    title: str
    base: Mapping[str, str]
    head: Mapping[str, str]
    base_files: Mapping[str, str] = field(default_factory=dict)
    head_files: Mapping[str, str] = field(default_factory=dict)
    hazards: int = 1
    root: str = "prisma/migrations"

    def history(self) -> RootHistory:
        return RootHistory(self.root, self.base, self.head, self.base_files, self.head_files)


@dataclass(frozen=True)
class HistoryRule:
    """A rule over a migrations root's history at two commits (an edited or out-of-order migration, drift).

    `check_history` returns (path, line, message, fix) for each hazard; the caller applies the configured
    severity (`rules: {<id>: warning}` in .github/zdm.yml) and drops hazards set to `off`
    (`bot.analysis.history.find_hazards`).
    """

    id: str
    title: str
    summary: str
    why: str
    instead: str
    check_history: Callable[[RootHistory], list[tuple[str, int | None, str, str]]]
    severity: Severity = Severity.ERROR
    examples: tuple[HistoryExample, ...] = ()
