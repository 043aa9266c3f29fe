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
from bot.analysis.model import Classification, Effect, Fix, LockMode, Severity
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
) -> Effect:
    """An effect restricted to live tables, classified from what it does to them.

    blocking: a lock that blocks writes (SHARE or stronger) held while a live table is rewritten or scanned;
    brief: such a lock with neither; safe: anything weaker. Objects created in the same file are not live.
    """
    pairs: Iterable[tuple[str | None, LockMode]] = locks.items() if isinstance(locks, Mapping) else locks
    live_locks: dict[str, LockMode] = {}
    for name, mode in pairs:
        if name and ctx.live(name):
            live_locks[name] = max(mode, live_locks.get(name, mode))
    live_rewrites = frozenset(t for t in rewrites if t and ctx.live(t))
    live_scans = frozenset(t for t in scans if t and ctx.live(t))
    if classification is None:
        classification = classify(live_locks, live_rewrites, live_scans)
    touches_live = bool(live_locks) or ctx.live(table)
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
    )


def classify(
    locks: Mapping[str, LockMode], rewrites: frozenset[str], scans: frozenset[str]
) -> Classification:
    strong = {table for table, mode in locks.items() if mode.blocks_writes}
    if strong & (rewrites | scans):
        return Classification.BLOCKING
    if strong:
        return Classification.BRIEF
    return Classification.SAFE


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
class HistoryRule:
    """A rule over a migrations root's history at two commits (an edited or out-of-order migration, drift).

    `check_history` returns (path, line, message, fix) for each hazard; the caller applies the configured
    severity (`rules: {<id>: warning}` in .github/zdm.yml) and drops hazards set to `off`.
    """

    id: str
    title: str
    summary: str
    why: str
    instead: str
    check_history: Callable[[RootHistory], list[tuple[str, int | None, str, str]]]
    severity: Severity = Severity.ERROR
