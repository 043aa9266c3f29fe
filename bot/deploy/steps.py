"""What `zdm deploy` runs for a pending migration, and how: pure, no database.

A migration runs as written (each statement under a short `lock_timeout`), or, when `zdm fix`'s plan for it
needs no application deploy or manual step between its migrations, as that plan: the same schema, proven by
the corpus proof, without the blocking locks (an index built CONCURRENTLY, a constraint NOT VALID then
VALIDATE, an online column change). Either way the record in `_prisma_migrations` is the original file's.

Statements are grouped into units, each one transaction or one statement that refuses a transaction block,
following the Prisma execution model of the project's version: before 7.4 a migration file is one
transaction (cut by the file's own COMMIT, and by what cannot run inside one), from 7.4 each statement is
its own, except what the file wraps in BEGIN ... COMMIT.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from bot.analysis import operations as op
from bot.analysis.model import Classification, FileResult, LockMode
from bot.analysis.parser import parse_statement
from bot.analysis.prisma import PrismaVersion
from bot.analysis.splitter import split_statements
from bot.deploy.history import checksum
from bot.fixes.plan import plan_file
from bot.rules.execution_model import refuses_transaction


@dataclass(frozen=True)
class Statement:
    sql: str
    # The line of the original migration.sql it runs for (a rewrite's statements carry their original's).
    line: int
    # False: PostgreSQL refuses it inside a transaction block (CONCURRENTLY, VACUUM, a DO block that commits).
    transactional: bool = True
    # The index it builds CONCURRENTLY: checked with `indisvalid` afterwards, dropped and built again if not.
    builds_index: str | None = None
    # The index it drops CONCURRENTLY: already gone on a second run means done.
    drops_index: str | None = None
    # Waits for a lock other sessions' reads or writes could queue behind: it runs under `lock_timeout`.
    # CONCURRENTLY waits only for what no read or write queues behind.
    guarded: bool = True


@dataclass(frozen=True)
class Unit:
    statements: tuple[Statement, ...]
    # One transaction for all its statements; False: one statement in autocommit.
    transaction: bool


@dataclass(frozen=True)
class Residual:
    """A statement that still blocks as deployed, with its estimated time under lock (None: sizes unknown)."""

    line: int
    sql: str
    tables: tuple[str, ...]
    lock_seconds: tuple[float, float] | None


@dataclass(frozen=True)
class MigrationPlan:
    name: str
    script: bytes
    units: tuple[Unit, ...]
    # How it runs, in a sentence: as written, or which rewrite and why.
    how: str
    rewritten: bool
    # Write-blocking locks it takes, per table (for the preflight's questions).
    locks: dict[str, LockMode]
    residuals: tuple[Residual, ...]
    result: FileResult

    @property
    def checksum(self) -> str:
        return checksum(self.script)

    @property
    def statements(self) -> tuple[Statement, ...]:
        return tuple(s for unit in self.units for s in unit.statements)

    @property
    def digest(self) -> str:
        """The statements as planned, in order and grouped as they run: what a progress record counts."""
        shape = [[unit.transaction, [s.sql for s in unit.statements]] for unit in self.units]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def plan_migration(
    name: str, script: bytes, result: FileResult, prisma: PrismaVersion | None, *, as_written: bool = False
) -> MigrationPlan:
    text = script.decode("utf-8", errors="replace")
    splits = prisma is not None and prisma.splits_statements
    locks = _write_locks(result)
    blocking = [s for s in result.statements if s.classification is Classification.BLOCKING]
    if as_written or not blocking:
        return _as_written(
            name, script, text, result, splits, locks, "as written", concurrently=not as_written
        )
    file_plan = plan_file(name, result, prisma, add_lock_timeout=False)
    steps_between = [step for step in file_plan.steps if step.kind != "migration"]
    if not file_plan.changes_anything or steps_between:
        kinds = sorted(
            {"an application deploy" if step.kind == "deploy" else "a manual step" for step in steps_between}
        )
        why = (
            f"as written (zdm fix's rewrite needs {' and '.join(kinds)} between its migrations: run `zdm fix`)"
            if steps_between
            else "as written (zdm has no rewrite for its blocking statements)"
        )
        return _as_written(name, script, text, result, splits, locks, why)
    # Each of the plan's migrations runs as Prisma would run it; its statements answer for the original
    # statement they come from.
    lines = {s.index: s.line_start for s in result.statements}
    units: list[Unit] = []
    for step in file_plan.steps:
        assert step.migration is not None
        owners = {_normal(sql): lines.get(owner, 1) for owner, sql in step.pieces}
        units += _units(step.migration.sql, splits, owners)
    remaining = _residuals(result, rewritten=True)
    return MigrationPlan(
        name=name,
        script=script,
        units=tuple(units),
        how="rewritten as zdm fix would (the same schema, proven): " + "; ".join(file_plan.summaries),
        rewritten=True,
        locks=locks,
        residuals=remaining,
        result=result,
    )


def _as_written(
    name: str,
    script: bytes,
    text: str,
    result: FileResult,
    splits: bool,
    locks: dict[str, LockMode],
    how: str,
    *,
    concurrently: bool = True,
) -> MigrationPlan:
    """The file's statements, except that an index build runs CONCURRENTLY where it stood, the guide's manual
    process, whatever else the file needs (a drop waiting for an application deploy is no reason to hold
    writers for the whole build)."""
    concurrent = _concurrent_builds(result) if concurrently else {}
    if concurrent:
        how += (
            f"; {len(concurrent)} index build{'s' if len(concurrent) > 1 else ''} CONCURRENTLY where written"
        )
    kept = frozenset(concurrent)
    return MigrationPlan(
        name=name,
        script=script,
        units=tuple(_units(text, splits, replacements=concurrent)),
        how=how,
        rewritten=bool(concurrent),
        locks=locks,
        residuals=tuple(r for r in _residuals(result, rewritten=False) if r.line not in kept),
        result=result,
    )


def _concurrent_builds(result: FileResult) -> dict[int, str]:
    """Line -> the CONCURRENTLY build, for each blocking index build whose whole fix is that build."""
    builds: dict[int, str] = {}
    for statement in result.statements:
        if statement.classification is not Classification.BLOCKING or len(statement.parts or ()) > 1:
            continue
        fixes = [fix for fix in statement.fixes if fix is not None]
        if len(fixes) != 1 or len(statement.fixes) != 1:
            continue
        fix = fixes[0]
        simple = not (fix.in_place or fix.after or fix.manual or fix.later or fix.deploy_first)
        if simple and len(fix.alone) == 1 and "create-index" in statement.rule_ids:
            builds[statement.line_start] = fix.alone[0]
    return builds


def _write_locks(result: FileResult) -> dict[str, LockMode]:
    locks: dict[str, LockMode] = {}
    for statement in result.statements:
        for table, mode in statement.locks.items():
            locks[table] = max(mode, locks.get(table, mode))
    return locks


def _residuals(result: FileResult, *, rewritten: bool) -> tuple[Residual, ...]:
    """What still blocks: as written, every blocking statement; rewritten, those the plan kept."""
    kept = [
        s
        for s in result.statements
        if s.classification is Classification.BLOCKING and (not rewritten or not s.has_fix)
    ]
    return tuple(
        Residual(
            line=s.line_start,
            sql=s.sql,
            tables=tuple(sorted(t for t, m in s.locks.items() if m.blocks_writes)),
            lock_seconds=(s.lock_time.low, s.lock_time.high) if s.lock_time else None,
        )
        for s in kept
    )


def _units(
    text: str,
    splits: bool,
    owners: Mapping[str, int] | None = None,
    replacements: Mapping[int, str] | None = None,
) -> list[Unit]:
    """The file's statements in units, as Prisma of that model runs them (see the module's docstring)."""
    units: list[Unit] = []
    batch: list[Statement] = []
    explicit = False
    raws = split_statements(text)

    def close() -> None:
        if batch:
            units.append(Unit(tuple(batch), transaction=True))
            batch.clear()

    line = 1
    for raw in raws:
        operations = parse_statement(raw, text).operations
        control = [o.kind for o in operations if isinstance(o, op.TransactionControl)]
        if control and len(control) == len(operations):
            # The file's own BEGIN opens what its COMMIT closes; zdm runs the transaction itself.
            if control[-1] == "begin":
                if splits:
                    close()
                explicit = True
            else:
                explicit = False
                close()
            continue
        # A rewrite's statement answers for the original it comes from; one zdm added (a COMMIT's twin, a
        # rename in a swap) for the statement before it.
        line = raw.line_start if owners is None else owners.get(_normal(raw.text), line)
        replacement = (replacements or {}).get(raw.line_start)
        if replacement is not None:
            operations = parse_statement(split_statements(replacement)[0], replacement).operations
        statement = _statement(replacement or raw.text, line, operations)
        if not statement.transactional:
            close()
            units.append(Unit((statement,), transaction=False))
            continue
        batch.append(statement)
        if splits and not explicit:
            close()
    close()
    return units


def _normal(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip()


def _statement(sql: str, line: int, operations: tuple[op.Operation, ...]) -> Statement:
    builds = next(
        (o.name for o in operations if isinstance(o, op.CreateIndex) and o.concurrently and o.name), None
    )
    drops = next((o.name for o in operations if isinstance(o, op.DropIndex) and o.concurrently), None)
    outside = refuses_transaction(operations) is not None
    concurrent_only = bool(operations) and all(
        isinstance(o, (op.CreateIndex, op.DropIndex, op.Reindex)) and o.concurrently for o in operations
    )
    return Statement(
        sql=sql,
        line=line,
        transactional=not outside,
        builds_index=builds,
        drops_index=drops,
        guarded=not concurrent_only,
    )
