"""Turn a file's fixes into Prisma migrations: the ordered directories that replace it, and the deploys and
manual steps between them.

Statements keep their order within a phase (`bot.fixes.ordering`): phase 0 is the file's own place, and the
steps a fix defers (`VALIDATE CONSTRAINT`, `SET NOT NULL` after a valid CHECK, a key attached `USING INDEX`,
a drop after the deploy) run in the next phase, with the statements that depend on them. A statement that must
run outside a transaction (`CONCURRENTLY`) gets a migration directory of its own when the Prisma version runs
a file as one transaction (before 7.4), inside the file's own BEGIN ... COMMIT, and always for `DROP INDEX
CONCURRENTLY`. The deploy and the manual steps (a backfill) come right before the phase that waits for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.analysis.model import FileResult, Fix, StatementResult
from bot.analysis.prisma import PrismaVersion
from bot.fixes.ordering import Moves, Unit, UnitId, choose_moves, units_of

LOCK_TIMEOUT = "SET lock_timeout = '5s';"
# CONCURRENTLY and VACUUM refuse a transaction block; a DO block that commits needs to run at top level.
_OUTSIDE_TRANSACTION = re.compile(
    r"\bCONCURRENTLY\b|^\s*VACUUM\b|^\s*DO\b(?=.*\bCOMMIT\b)", re.IGNORECASE | re.DOTALL
)
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b(?:\s+(?:WORK|TRANSACTION))?\s*;?\s*$",
    re.IGNORECASE,
)
_ROLLBACK = re.compile(r"^\s*(?:ROLLBACK|ABORT)\b", re.IGNORECASE)
_OPENS = re.compile(r"^\s*(?:BEGIN|START)\b", re.IGNORECASE)
_SPLITS_BEFORE = {"enum-value-used-too-early", "locks-held-until-commit"}
_DROP_VIEW = re.compile(r"^\s*DROP\s+(?:MATERIALIZED\s+)?VIEW\b", re.IGNORECASE)
_CASCADE = re.compile(r"\bCASCADE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    # Holds one statement that cannot run in a transaction block.
    alone: bool = False


@dataclass(frozen=True)
class Step:
    kind: str  # migration | deploy | manual
    text: str
    migration: Migration | None = None
    # Indices (into the file's statements) of the statements whose SQL or rewrite this step holds or does.
    statements: tuple[int, ...] = ()
    # For a migration: each SQL statement it holds, with the index of the file's statement it comes from.
    pieces: tuple[tuple[int, str], ...] = ()

    def sql_of(self, index: int) -> tuple[str, ...]:
        """What this step holds of statement `index`: its own SQL, without what other statements put here."""
        return tuple(sql for owner, sql in self.pieces if owner == index)


@dataclass(frozen=True)
class FilePlan:
    original: str
    steps: tuple[Step, ...]
    summaries: tuple[str, ...] = ()
    # Statement index -> why zdm offers no automatic rewrite for it (the finding's advice still applies).
    no_rewrite: dict[int, str] = field(default_factory=dict)

    def step_numbers(self, index: int) -> tuple[int, ...]:
        """The 1-based numbers of the steps that hold or do part of statement `index`'s rewrite."""
        return tuple(number for number, step in enumerate(self.steps, 1) if index in step.statements)

    @property
    def migrations(self) -> tuple[Migration, ...]:
        return tuple(s.migration for s in self.steps if s.migration is not None)

    @property
    def changes_anything(self) -> bool:
        return bool(self.summaries)

    def render(self) -> str:
        lines = []
        for number, step in enumerate(self.steps, 1):
            if step.migration is not None:
                lines.append(f"{number}. migration {step.migration.name}: {step.text}")
            else:
                lines.append(f"{number}. {step.kind}: {step.text}")
        return "\n".join(lines)


# A statement of a migration zdm writes, with the index of the file's statement it comes from.
Piece = tuple[int, str]


@dataclass
class _Segment:
    pieces: list[Piece]
    alone: bool
    # Between the file's own BEGIN and COMMIT.
    region: bool
    phase: int


@dataclass
class _Segments:
    """The migrations that replace the file, in order."""

    base: str
    items: list[_Segment] = field(default_factory=list)
    current: list[Piece] = field(default_factory=list)
    index: int = 0
    region: bool = False
    phase: int = 0

    # Tables a statement of the current migration locks against writes: one transaction before Prisma 7.4,
    # so the lock lasts until the migration ends.
    held: dict[str, str] = field(default_factory=dict)

    def add(self, sql: str, index: int | None = None) -> None:
        self.current.append((self.index if index is None else index, sql))

    def close(self) -> None:
        if self.current:
            self.items.append(_Segment(self.current, False, self.region, self.phase))
            self.current = []
        self.held = {}

    def alone(self, sql: str) -> None:
        self.close()
        self.items.append(_Segment([(self.index, sql)], True, False, self.phase))


def statement_sql(sql: str) -> str:
    """One statement as a migration holds it: trimmed, with exactly one `;`."""
    return sql.strip().rstrip(";").rstrip() + ";"


def is_transaction_control(sql: str) -> bool:
    """BEGIN, COMMIT and their spellings: the file's own transaction boundaries."""
    return _TRANSACTION_CONTROL.match(sql) is not None


def opens_transaction(sql: str) -> bool:
    return is_transaction_control(sql) and _OPENS.match(sql) is not None


def runs_outside_transaction(sql: str) -> bool:
    """The statement cannot run inside a transaction block."""
    return bool(_OUTSIDE_TRANSACTION.search(sql))


def _runs_outside_transaction(statement: StatementResult) -> bool:
    return statement.kind != "empty" and runs_outside_transaction(statement.sql)


@dataclass
class _Between:
    """What happens between migrations: the deploy and the manual steps, each before the phase that needs it."""

    deploys: dict[int, list[str]] = field(default_factory=dict)
    deploy_indices: dict[int, list[int]] = field(default_factory=dict)
    manual: dict[int, list[tuple[str, int]]] = field(default_factory=dict)


def plan_file(
    migration_name: str, result: FileResult, prisma: PrismaVersion | None, add_lock_timeout: bool = True
) -> FilePlan:
    if not result.planned:
        raise ValueError(
            f"{result.path} was analysed without plans (Analyzer(plans=False)): analyse it again"
        )
    # The file's own BEGIN ... COMMIT (Prisma writes one around an enum change) keeps its meaning where it
    # can: what it encloses becomes migrations of their own, each still one transaction (before 7.4 a
    # migration is one; from 7.4 zdm writes BEGIN/COMMIT around it). A statement that must run outside a
    # transaction splits it there. A COMMIT also ends what came before it, so it ends a migration too.
    if any(_ROLLBACK.match(s.sql) for s in result.statements):
        return _as_written(migration_name, result)
    splits = prisma is not None and prisma.splits_statements
    segments = _Segments(migration_name)
    summaries: list[str] = []
    real = [s for s in result.statements if s.kind not in ("transaction", "commit", "rollback")]
    needs_timeout = add_lock_timeout and any(
        f.rule_id == "lock-timeout-missing" for s in result.statements for f in s.findings
    )
    units = units_of(result)
    moves = choose_moves(units)
    by_statement: dict[int, list[Unit]] = {}
    for unit in units:
        by_statement.setdefault(unit.id[0], []).append(unit)
    units_by_id = {unit.id: unit for unit in units}
    no_rewrite = {
        s.index: "no automatic rewrite: " + s.kept_because for s in result.statements if s.kept_because
    }
    no_rewrite |= {uid[0]: "no automatic rewrite: " + why for uid, why in moves.cancelled.items()}
    between = _Between()
    at_swap = _drops_at_swaps(units, moves)

    def fix_of(unit: Unit) -> Fix | None:
        return None if unit.id in moves.cancelled else unit.fix

    def deferred_to(unit: Unit) -> int | None:
        fix = fix_of(unit)
        return moves.deferred_phase(unit) if fix is not None and fix.later else None

    for phase in range(moves.last_phase + 2):
        segments.close()
        segments.phase, segments.region = phase, False
        landing = [u for u in units if deferred_to(u) == phase]
        # VALIDATE scans its table under a lock that lets writes through, but in one transaction with a
        # SET NOT NULL or a drop (one batch before Prisma 7.4) the scan would happen under the ACCESS EXCLUSIVE
        # lock those took earlier. Validating first keeps every scan ahead of every strong lock; a validation
        # only needs its constraint, added in an earlier phase.
        for unit in landing:
            segments.index = unit.id[0]
            for sql in _deferred(fix_of(unit)):
                if _VALIDATE.match(sql):
                    segments.add(statement_sql(sql))
        for index, statement in enumerate(result.statements):
            segments.index = index
            if is_transaction_control(statement.sql):
                if phase == 0:
                    segments.close()
                    segments.region = opens_transaction(statement.sql)
                continue
            rules = {f.rule_id for f in statement.findings if not f.suppressed}
            if "locks-held-until-commit" in rules and statement.has_fix:
                rules.discard(
                    "locks-held-until-commit"
                )  # the rewrite makes it brief: nothing long to wait for
            here = [u for u in by_statement.get(index, ()) if moves.phase_of(u.id) == phase]
            if here and rules & _SPLITS_BEFORE and not splits and not segments.region:
                read = sorted(
                    {
                        t
                        for u in here
                        for t in _reads_what_the_migration_locked(statement, u, segments, splits)
                    }
                )
                segments.close()
                summaries.append(
                    _reads_under_lock(statement.line_start, statement, read)
                    if read and rules & _SPLITS_BEFORE == {"locks-held-until-commit"}
                    else f"line {statement.line_start}: starts a new migration "
                    f"({', '.join(sorted(rules & _SPLITS_BEFORE))})"
                )
            for unit in by_statement.get(index, ()):
                if deferred_to(unit) == phase:
                    for sql in _deferred(fix_of(unit)):
                        if not _VALIDATE.match(sql):
                            segments.add(statement_sql(sql))
                if moves.phase_of(unit.id) != phase or unit.id in at_swap:
                    continue
                if phase:
                    summaries.append(_why_moved(unit, units_by_id[moves.after[unit.id]], moves))
                fix = fix_of(unit)
                if unit.id[1] == -1 or fix is None:
                    if (
                        unit.id[1] == -1
                        and _runs_outside_transaction(statement)
                        and len(real) > 1
                        and not segments.region
                        and (not splits or _drops_concurrently(statement))
                    ):
                        segments.alone(statement_sql(unit.sql))
                        summaries.append(f"line {statement.line_start}: moved to a migration of its own")
                    else:
                        read = _reads_what_the_migration_locked(statement, unit, segments, splits)
                        if read:
                            segments.close()
                            summaries.append(_reads_under_lock(unit.line, statement, read))
                        segments.add(statement_sql(unit.sql))
                        segments.held |= _locked_by(statement, unit)
                    continue
                drops = [units_by_id[uid] for uid in sorted(at_swap) if at_swap[uid] == unit.id]
                _lay_out(unit, fix, segments, splits, summaries, between, moves.deferred_phase(unit), drops)
                segments.held |= _locked_by(statement, unit)
    segments.close()
    if needs_timeout:
        summaries.append("every migration that locks tables starts with SET lock_timeout")
    return FilePlan(
        original=migration_name,
        steps=_steps(segments, between, needs_timeout, splits),
        summaries=tuple(summaries),
        no_rewrite=no_rewrite,
    )


_DATA_CHANGES = ("insert", "update", "delete", "merge", "select")


def _locked_by(statement: StatementResult, unit: Unit) -> dict[str, str]:
    """The tables a statement (or its rewrite, which works on the same tables) locks against writes, by bare
    lower-case name, with the name to show."""
    if not any(mode.blocks_writes for mode in statement.locks.values()):
        return {}
    shown = {table.rsplit(".", 1)[-1].lower(): f'"{table}"' for table in statement.locks}
    return {table: shown.get(table, table) for table in unit.touches.tables} | shown


def _reads_what_the_migration_locked(
    statement: StatementResult, unit: Unit, segments: _Segments, splits: bool
) -> list[str]:
    """Before Prisma 7.4 a migration is one transaction: a statement that reads a table an earlier statement of
    it locked would read it, however long that takes, while the lock still blocks every writer. That is a data
    change, or a scan under a lock of its own that lets writes through (`VALIDATE CONSTRAINT`, a materialized
    view built from the table). Such a statement starts a migration of its own (not inside the file's own
    BEGIN ... COMMIT, which it keeps)."""
    if splits or segments.region or not segments.current:
        return []
    if statement.kind in _DATA_CHANGES:
        read = unit.touches.tables
    elif statement.scans and not any(mode.blocks_writes for mode in statement.locks.values()):
        read = frozenset(table.rsplit(".", 1)[-1].lower() for table in statement.scans)
    else:
        return []
    return sorted(segments.held[table] for table in read if table in segments.held)


def _reads_under_lock(line: int, statement: StatementResult, read: list[str]) -> str:
    verb = "reads" if statement.kind in _DATA_CHANGES else "scans"
    return (
        f"line {line}: starts a new migration: it {verb} {', '.join(read)}, which an earlier statement of the "
        "migration keeps locked until it commits"
    )


def _why_moved(unit: Unit, cause: Unit, moves: Moves) -> str:
    if cause.id in moves.phase and not (cause.defers and moves.phase_of(cause.id) < moves.phase_of(unit.id)):
        return f"line {unit.line}: moved to a later migration with line {cause.line}, whose objects it names"
    if cause.finishing is None:
        return f"line {unit.line}: moved after the deploy with line {cause.line}'s drop, which it depends on"
    return f"line {unit.line}: moved to a later migration, after what line {cause.line} finishes there, which it needs"


def _drops_at_swaps(units: list[Unit], moves: Moves) -> dict[UnitId, UnitId]:
    """The file's DROP VIEW statements that run in the swap of the online column change right after them
    instead of in their own place, by the change they join. In place they would leave the views missing for
    the whole backfill; the file drops them for the change (a view over the column stops it), and the old
    column is dropped only by the swap. Only a run of such drops with nothing else between them and the change
    moves: nothing else sees them run later. Without CASCADE, each drop removes no other view than it names."""
    at_swap: dict[UnitId, UnitId] = {}
    for position, unit in enumerate(units):
        fix = unit.fix
        if (
            fix is None
            or not fix.after
            or not fix.views_dropped_at_swap
            or unit.id in moves.cancelled
            or moves.phase_of(unit.id)
        ):
            continue
        views = {view.rsplit(".", 1)[-1].lower() for view in fix.views_dropped_at_swap}
        for before in reversed(units[:position]):
            if not (
                before.fix is None
                and before.id[1] == -1
                and before.id not in at_swap
                and not moves.phase_of(before.id)
                and _DROP_VIEW.match(before.sql)
                and not _CASCADE.search(before.sql)
                and before.touches.tables
                and before.touches.tables <= views
            ):
                break
            at_swap[before.id] = unit.id
    return at_swap


def _deferred(fix: Fix | None) -> tuple[str, ...]:
    return fix.later if fix is not None else ()


def _lay_out(
    unit: Unit,
    fix: Fix,
    segments: _Segments,
    splits: bool,
    summaries: list[str],
    between: _Between,
    next_phase: int,
    drops: list[Unit],
) -> None:
    """One operation's rewrite where it runs: in place, alone (outside any transaction), the swap after it
    (after the file's `drops` of views over its table); its deferred steps wait for the next phase, and its
    deploy and manual steps come right before that."""
    summaries.append(f"line {unit.line}: {fix.summary}")
    for sql in fix.in_place:
        segments.add(statement_sql(sql))
    for sql in fix.alone:
        # From 7.4 each statement runs on its own, except inside the file's own BEGIN ... COMMIT.
        if splits and not fix.alone_always and not segments.region:
            segments.add(statement_sql(sql))
        else:
            segments.alone(statement_sql(sql))
    for drop in drops:
        segments.add(statement_sql(drop.sql), drop.id[0])
        summaries.append(
            f"line {drop.line}: runs right before line {unit.line}'s swap: the view stays readable until the "
            "columns are swapped"
        )
    for sql in fix.after:
        segments.add(statement_sql(sql))
    between.manual.setdefault(next_phase, []).extend((text, unit.id[0]) for text in fix.manual)
    if fix.deploy_first:
        deploys = between.deploys.setdefault(next_phase, [])
        if fix.deploy_first not in deploys:
            deploys.append(fix.deploy_first)
        between.deploy_indices.setdefault(next_phase, []).append(unit.id[0])


def _as_written(migration_name: str, result: FileResult) -> FilePlan:
    """No plan for a file that rolls back: what it undoes is part of what it means."""
    reason = "no automatic rewrite: the file rolls back its own transaction"
    pieces = [(s.index, statement_sql(s.sql)) for s in result.statements if s.kind != "empty"]
    return FilePlan(
        original=migration_name,
        steps=(_migration_step(migration_name, pieces, False, False, False),),
        no_rewrite={s.index: reason for s in result.statements if s.has_fix},
    )


def _drops_concurrently(statement: StatementResult) -> bool:
    return bool(re.search(r"^\s*DROP\s+INDEX\s+CONCURRENTLY\b", statement.sql, re.IGNORECASE))


def _steps(segments: _Segments, between: _Between, needs_timeout: bool, splits: bool) -> tuple[Step, ...]:
    """The migrations in order, each phase's after the deploy and the manual steps it waits for. The deploy
    comes once, before the first phase that needs it: every later phase runs after it too."""
    steps: list[Step] = []
    names = _names(segments.base, len(segments.items))
    deployed = False
    started: set[int] = set()
    deploy_phase = min(between.deploys, default=None)
    for segment, name in zip(segments.items, names, strict=False):
        if segment.phase not in started:
            started.add(segment.phase)
            if not deployed and deploy_phase is not None and segment.phase >= deploy_phase:
                deployed = True
                texts = [t for phase in sorted(between.deploys) for t in between.deploys[phase]]
                indices = [
                    i for phase in sorted(between.deploy_indices) for i in between.deploy_indices[phase]
                ]
                steps.append(
                    Step(
                        "deploy",
                        "deploy the application: " + "; ".join(dict.fromkeys(texts)),
                        None,
                        tuple(dict.fromkeys(indices)),
                    )
                )
            steps.extend(
                Step("manual", text, None, (index,)) for text, index in between.manual.get(segment.phase, ())
            )
        # Statement by statement (7.4+), the file's own transaction holds only with its BEGIN and COMMIT.
        steps.append(
            _migration_step(
                name, segment.pieces, segment.alone, needs_timeout, wrap=segment.region and splits
            )
        )
    return tuple(steps)


_VALIDATE = re.compile(r"^\s*ALTER\s+TABLE\b.*\bVALIDATE\s+CONSTRAINT\b", re.IGNORECASE | re.DOTALL)


def _migration_step(name: str, pieces: list[Piece], alone: bool, needs_timeout: bool, wrap: bool) -> Step:
    statements = [sql for _, sql in pieces]
    indices = tuple(dict.fromkeys(index for index, _ in pieces))
    concurrently = any(_OUTSIDE_TRANSACTION.search(s) for s in statements)
    body = ["BEGIN;", *statements, "COMMIT;"] if wrap and not alone else list(statements)
    # A lock_timeout would make a waiting CONCURRENTLY build fail and leave an invalid index behind.
    if needs_timeout and not alone and not concurrently:
        body.insert(0, LOCK_TIMEOUT)
    sql = "\n\n".join(body) + "\n"
    if alone:
        text = "alone: it cannot run inside a transaction"
    elif any(s.upper().startswith("ALTER TABLE") and "VALIDATE CONSTRAINT" in s.upper() for s in statements):
        text = "validate and finish, once the earlier migrations are applied"
    else:
        text = f"{len(statements)} statement(s)"
    return Step("migration", text, Migration(name, sql, alone), indices, tuple(pieces))


def _names(base: str, count: int) -> list[str]:
    """The original name first, then names that sort right after it (Prisma applies folders in lexical order)."""
    return [base] + [f"{base}_{n:02d}_zdm" for n in range(1, count)]


def plan_as_data(plan: FilePlan) -> dict[str, object]:
    """The plan for `--format json`: the migration folders that replace the file, in order, and what must
    happen between them."""
    return {
        "replaces": plan.original,
        "steps": [
            {"kind": step.kind, "text": step.text}
            | (
                {
                    "migration": {
                        "name": step.migration.name,
                        "sql": step.migration.sql,
                        "alone": step.migration.alone,
                    }
                }
                if step.migration is not None
                else {}
            )
            for step in plan.steps
        ],
        "summary": list(plan.summaries),
        # statement index (0-based, as in the file's statements) -> why it is kept as written
        "no_rewrite": {str(index): reason for index, reason in sorted(plan.no_rewrite.items())},
    }
