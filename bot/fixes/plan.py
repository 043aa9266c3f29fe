"""Turn a file's fixes into Prisma migrations: the ordered directories that replace it, and the deploys and
manual steps between them.

Statements keep their order. A statement that must run outside a transaction (`CONCURRENTLY`) gets a
migration directory of its own when the Prisma version runs a file as one transaction (before 7.4), and
always for `DROP INDEX CONCURRENTLY`. Follow-up statements (`VALIDATE CONSTRAINT`, `SET NOT NULL` after a
valid CHECK) go into one migration after everything else, preceded by the application deploy and the
backfills they need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.analysis.model import FileResult, StatementResult
from bot.analysis.prisma import PrismaVersion
from bot.fixes.ordering import choose_moves, units_of

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
class _Segments:
    """The migrations that replace the file, in order: (pieces, alone, inside the file's own transaction)."""

    base: str
    items: list[tuple[list[Piece], bool, bool]] = field(default_factory=list)
    current: list[Piece] = field(default_factory=list)
    index: int = 0
    # Between the file's own BEGIN and COMMIT.
    region: bool = False

    def add(self, sql: str) -> None:
        self.current.append((self.index, sql))

    def close(self) -> None:
        if self.current:
            self.items.append((self.current, False, self.region))
            self.current = []

    def alone(self, sql: str) -> None:
        self.close()
        self.items.append(([(self.index, sql)], True, False))


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


def plan_file(
    migration_name: str, result: FileResult, prisma: PrismaVersion | None, add_lock_timeout: bool = True
) -> FilePlan:
    if not result.planned:
        raise ValueError(
            f"{result.path} was analysed without plans (Analyzer(plans=False)): analyse it again"
        )
    # The file's own BEGIN ... COMMIT (Prisma writes one around an enum change) keeps its meaning: what it
    # encloses becomes migrations of their own, each still one transaction (before 7.4 a migration is one;
    # from 7.4 zdm writes BEGIN/COMMIT around it), and nothing that must run outside a transaction moves in.
    # A COMMIT also ends what came before it, so it ends a migration too.
    if any(_ROLLBACK.match(s.sql) for s in result.statements):
        return _as_written(migration_name, result)
    splits = prisma is not None and prisma.splits_statements
    region_line = 0
    segments = _Segments(migration_name)
    later: list[Piece] = []
    manual: list[str] = []
    summaries: list[str] = []
    deploys: list[str] = []
    real = [s for s in result.statements if s.kind not in ("transaction", "commit", "rollback")]
    needs_timeout = add_lock_timeout and any(
        f.rule_id == "lock-timeout-missing" for s in result.statements for f in s.findings
    )
    moves = choose_moves(units_of(result))
    along = set(moves.along)
    no_rewrite: dict[int, str] = {}
    later_indices: list[int] = []
    manual_indices: list[int] = []
    for index, statement in enumerate(result.statements):
        segments.index = index
        if is_transaction_control(statement.sql):
            segments.close()
            segments.region = opens_transaction(statement.sql)
            region_line = statement.line_start
            continue
        rules = {f.rule_id for f in statement.findings if not f.suppressed}
        if "locks-held-until-commit" in rules and statement.has_fix:
            rules.discard("locks-held-until-commit")  # the rewrite makes it brief: nothing long to wait for
        if rules & _SPLITS_BEFORE and not splits and not segments.region:
            segments.close()
            summaries.append(
                f"line {statement.line_start}: starts a new migration ({', '.join(sorted(rules & _SPLITS_BEFORE))})"
            )
        if (index, -1) in along:
            later.append((index, statement_sql(statement.sql)))
            later_indices.append(index)
            summaries.append(f"line {statement.line_start}: moved after the deploy with what it depends on")
            continue
        if not statement.has_fix or statement.parts is None:
            if (
                _runs_outside_transaction(statement)
                and len(real) > 1
                and not segments.region
                and (not splits or _drops_concurrently(statement))
            ):
                segments.alone(statement_sql(statement.sql))
                summaries.append(f"line {statement.line_start}: moved to a migration of its own")
            else:
                segments.add(statement_sql(statement.sql))
            continue
        for number, (part, fix) in enumerate(zip(statement.parts, statement.fixes, strict=True)):
            if (index, number) in along:
                later.append((index, statement_sql(part)))
                if index not in later_indices:
                    later_indices.append(index)
                continue
            if (index, number) in moves.cancelled:
                fix = None
                no_rewrite[index] = "no automatic rewrite: " + moves.cancelled[(index, number)]
            elif fix is not None and fix.alone and segments.region:
                fix = None
                no_rewrite[index] = (
                    f"no automatic rewrite: it is inside the file's own BEGIN (line {region_line}), and its "
                    "rewrite cannot run inside a transaction; move it out of the transaction block first"
                )
            if fix is None:
                segments.add(statement_sql(part))
                continue
            summaries.append(f"line {statement.line_start}: {fix.summary}")
            for sql in fix.in_place:
                segments.add(statement_sql(sql))
            for sql in fix.alone:
                if splits and not fix.alone_always:
                    segments.add(statement_sql(sql))
                else:
                    segments.alone(statement_sql(sql))
            for sql in fix.after:
                segments.add(statement_sql(sql))
            manual.extend(fix.manual)
            manual_indices.extend(index for _ in fix.manual)
            later.extend((index, statement_sql(s)) for s in fix.later)
            if fix.later and index not in later_indices:
                later_indices.append(index)
            if fix.deploy_first and fix.deploy_first not in deploys:
                deploys.append(fix.deploy_first)
    segments.close()
    if needs_timeout:
        summaries.append("every migration that locks tables starts with SET lock_timeout")
    return FilePlan(
        original=migration_name,
        steps=_steps(segments, later, later_indices, manual, manual_indices, deploys, needs_timeout, splits),
        summaries=tuple(summaries),
        no_rewrite=no_rewrite,
    )


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


def _steps(
    segments: _Segments,
    later: list[Piece],
    later_indices: list[int],
    manual: list[str],
    manual_indices: list[int],
    deploys: list[str],
    needs_timeout: bool,
    splits: bool,
) -> tuple[Step, ...]:
    items = list(segments.items)
    steps: list[Step] = []
    names = _names(segments.base, len(items) + (1 if later else 0))
    for (pieces, alone, region), name in zip(items, names, strict=False):
        # Statement by statement (7.4+), the file's own transaction holds only with its BEGIN and COMMIT.
        steps.append(_migration_step(name, pieces, alone, needs_timeout, wrap=region and splits))
    if deploys:
        steps.append(
            Step("deploy", "deploy the application: " + "; ".join(deploys), None, tuple(later_indices))
        )
    steps.extend(
        Step("manual", text, None, (index,)) for text, index in zip(manual, manual_indices, strict=True)
    )
    if later:
        steps.append(
            _migration_step(names[len(items)], _validations_first(later), False, needs_timeout, False)
        )
    return tuple(steps)


_VALIDATE = re.compile(r"^\s*ALTER\s+TABLE\b.*\bVALIDATE\s+CONSTRAINT\b", re.IGNORECASE | re.DOTALL)


def _validations_first(pieces: list[Piece]) -> list[Piece]:
    """VALIDATE scans its table under a lock that lets writes through, but in one transaction with a drop or
    a SET NOT NULL (run as one batch before Prisma 7.4, or in a file's own BEGIN) the scan would happen
    under the ACCESS EXCLUSIVE lock those took earlier. Validating first keeps every scan ahead of every
    strong lock; it only needs the constraints the earlier migrations added, and nothing in this migration
    creates one."""
    validations = [p for p in pieces if _VALIDATE.match(p[1])]
    return validations + [p for p in pieces if not _VALIDATE.match(p[1])]


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
