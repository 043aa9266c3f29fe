"""The vocabulary of an analysis: lock modes, classifications, findings and per-statement results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.analysis.lock_time import Duration
    from bot.analysis.rollback import RollbackPlan


class LockMode(IntEnum):
    """PostgreSQL's table-level lock modes, weakest first, so `max()` gives the strongest."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def sql_name(self) -> str:
        return self.name.replace("_", " ")

    @classmethod
    def from_pg(cls, mode: str) -> LockMode:
        """`AccessExclusiveLock` (pg_locks.mode) or `ACCESS EXCLUSIVE` -> LockMode."""
        text = mode.removesuffix("Lock")
        if " " not in text and "_" not in text:
            text = "".join("_" + ch if ch.isupper() else ch for ch in text).lstrip("_")
        return cls[text.upper().replace(" ", "_")]

    @property
    def blocks_writes(self) -> bool:
        # SHARE is the weakest mode that conflicts with ROW EXCLUSIVE (INSERT/UPDATE/DELETE).
        return self >= LockMode.SHARE

    @property
    def blocks_reads(self) -> bool:
        return self is LockMode.ACCESS_EXCLUSIVE


class Classification(Enum):
    """What a statement does to live tables, from harmless to dangerous.

    `unknown` ranks above `brief` and below `blocking`: a statement zdm cannot read must be reviewed, but a
    statement proven to block is the stronger claim.
    """

    SAFE = "safe"
    BRIEF = "brief"
    UNKNOWN = "unknown"
    BLOCKING = "blocking"

    @property
    def rank(self) -> int:
        return _CLASSIFICATION_RANK[self]

    @property
    def needs_review(self) -> bool:
        return self in (Classification.BLOCKING, Classification.UNKNOWN)


_CLASSIFICATION_RANK = {
    Classification.SAFE: 0,
    Classification.BRIEF: 1,
    Classification.UNKNOWN: 2,
    Classification.BLOCKING: 3,
}


def worst(classifications: list[Classification] | tuple[Classification, ...]) -> Classification:
    return max(classifications, key=lambda c: c.rank, default=Classification.SAFE)


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Keys:
    """What a statement that moves later changes the meaning of (see `dependencies`)."""

    # Names that matter wherever they are mentioned: types, constraints, indexes, dropped tables.
    names: frozenset[str]
    # Column names: they matter where their table is mentioned too (an unqualified name resolves against it).
    columns: frozenset[str]
    # Bare names of the tables the statement works on.
    tables: frozenset[str]


@dataclass(frozen=True, slots=True)
class Touches:
    """What one operation does to objects that exist before it runs, and which finished states of earlier
    statements it needs, as atoms (`dependencies.touches_of`): `table:t`, `column:t.c`, `constraint:t.n`,
    `index:n` changed (dropped, renamed, altered); `not-null:t.c` needed (`not-null:t.*`: some column of t)."""

    changes: frozenset[str] = frozenset()
    needs: frozenset[str] = frozenset()
    # What it does cannot be read (a DO block, dynamic SQL, a statement zdm does not understand).
    opaque: bool = False
    # The tables and columns it works on, by bare lower-case name (empty: zdm cannot tell).
    tables: frozenset[str] = frozenset()
    columns: frozenset[str] = frozenset()
    # Tables it adds a column to: a column's position is the order of the ADD COLUMNs on its table.
    appends: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Fix:
    """A safe rewrite of one operation, in Prisma's terms: what replaces it in its own migration, what must run
    alone (outside any transaction), what waits for a following migration, and what no migration should do."""

    summary: str
    in_place: tuple[str, ...] = ()
    # Statements that cannot run in a transaction block (CONCURRENTLY): each in a migration of its own before
    # Prisma 7.4; `alone_always` when even 7.4 runs their file as one batch (DROP INDEX CONCURRENTLY).
    alone: tuple[str, ...] = ()
    alone_always: bool = False
    # Statements that run right after `alone`, where the operation stood, before the rest of the file: the
    # swap of an online column change, once its backfill and index builds (`alone`) are done.
    after: tuple[str, ...] = ()
    # Views over the operation's table that the file dropped before it: the file's own DROP VIEW statements
    # right before the operation run right before `after` instead, so the views stay readable during `alone`.
    views_dropped_at_swap: tuple[str, ...] = ()
    # Done by hand or by a job between migrations (a batched backfill), before `later`.
    manual: tuple[str, ...] = ()
    later: tuple[str, ...] = ()
    # What the application deploy between this migration and `later` must contain; empty: no deploy needed.
    deploy_first: str = ""
    # What moving `later` past the rest of the file could change the meaning of; set by the analyzer from
    # the schema where the statement was written.
    keys: Keys | None = None


@dataclass(frozen=True, slots=True)
class IndexBuild:
    """An index an operation builds under its lock: how long that takes grows with the table and the key."""

    table: str
    columns: tuple[str, ...] = ()
    unique: bool = False


@dataclass(frozen=True, slots=True)
class Effect:
    """One rule's claim about one operation: the locks it takes on live tables and what it makes them do."""

    rule_id: str
    classification: Classification
    message: str
    locks: dict[str, LockMode] = field(default_factory=dict)
    rewrites: frozenset[str] = frozenset()
    scans: frozenset[str] = frozenset()
    breaking: bool = False
    safe_alternative: str = ""
    table: str | None = None
    # The statement makes `prisma migrate deploy` fail (e.g. CONCURRENTLY inside Prisma's transaction).
    fails_migration: bool = False
    fix: Fix | None = None
    # Indexes built on live tables (their scans are part of the build), for the lock-time estimate.
    index_builds: tuple[IndexBuild, ...] = ()
    # Live tables a validation looks every row up in (a foreign key's referenced table).
    looks_up: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Finding:
    """An effect worth telling a reviewer about, after configuration and suppressions were applied."""

    rule_id: str
    classification: Classification
    severity: Severity
    message: str
    safe_alternative: str
    breaking: bool
    table: str | None
    suppressed_reason: str | None = None
    fails_migration: bool = False

    @property
    def suppressed(self) -> bool:
        return self.suppressed_reason is not None

    @property
    def fails_check(self) -> bool:
        # Breaking changes are reported loudly but gate nothing on their own: dropping a column the code no
        # longer reads is the normal end of an expand/contract sequence.
        return (
            not self.suppressed
            and self.severity is Severity.ERROR
            and (self.classification.needs_review or self.fails_migration)
        )


@dataclass(frozen=True, slots=True)
class StatementResult:
    index: int
    line_start: int
    line_end: int
    sql: str
    classification: Classification
    breaking: bool
    locks: dict[str, LockMode]
    rewrites: frozenset[str]
    scans: frozenset[str]
    findings: tuple[Finding, ...]
    kind: str
    # The statement's operations as standalone SQL, and the fix for each (None: keep it), when it can be split.
    parts: tuple[str, ...] | None = None
    fixes: tuple[Fix | None, ...] = ()
    # Tables this statement renames away or drops: their old name stops existing.
    retires: frozenset[str] = frozenset()
    # Per operation (aligned with `parts` when the statement is split), for the planner; empty when the
    # result was analysed without plans.
    touches: tuple[Touches, ...] = ()
    # How long its blocking lock is held, from the tables' sizes (None: no blocking work or sizes unknown);
    # `online_time`: work under a lock that blocks neither reads nor writes (VALIDATE CONSTRAINT).
    lock_time: Duration | None = None
    online_time: Duration | None = None
    # Why a statement some rule offers a rewrite for has none here (a DO block that decides what runs).
    kept_because: str | None = None

    @property
    def has_fix(self) -> bool:
        return any(f is not None for f in self.fixes)

    @property
    def rule_ids(self) -> list[str]:
        return sorted({f.rule_id for f in self.findings})

    @property
    def fails_check(self) -> bool:
        return any(f.fails_check for f in self.findings)


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    statements: tuple[StatementResult, ...]
    notes: tuple[str, ...] = ()
    # The Prisma version the file was judged for (configured or read from the repository), if known.
    prisma_version: str | None = None
    file_findings: tuple[Finding, ...] = ()
    # False when analysed for a report that makes no plan (see `Analyzer`): fixes lack the planner's keys.
    planned: bool = True
    # What undoes the file once deployed (None: analysed without plans).
    rollback: RollbackPlan | None = None

    @property
    def classification(self) -> Classification:
        return worst([s.classification for s in self.statements])

    @property
    def fails_check(self) -> bool:
        return any(s.fails_check for s in self.statements) or any(f.fails_check for f in self.file_findings)
