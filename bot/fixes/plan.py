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

LOCK_TIMEOUT = "SET lock_timeout = '5s';"
_OUTSIDE_TRANSACTION = re.compile(r"\bCONCURRENTLY\b|^\s*VACUUM\b", re.IGNORECASE)
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


@dataclass
class _Segments:
    base: str
    items: list[tuple[list[str], bool, tuple[int, ...]]] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    index: int = 0

    def add(self, sql: str) -> None:
        self.current.append(sql)
        if self.index not in self.indices:
            self.indices.append(self.index)

    def close(self) -> None:
        if self.current:
            self.items.append((self.current, False, tuple(self.indices)))
            self.current = []
            self.indices = []

    def alone(self, sql: str) -> None:
        self.close()
        self.items.append(([sql], True, (self.index,)))


def statement_sql(sql: str) -> str:
    """One statement as a migration holds it: trimmed, with exactly one `;`."""
    return sql.strip().rstrip(";").rstrip() + ";"


def _runs_outside_transaction(statement: StatementResult) -> bool:
    return statement.kind != "empty" and bool(_OUTSIDE_TRANSACTION.search(statement.sql))


def plan_file(
    migration_name: str, result: FileResult, prisma: PrismaVersion | None, add_lock_timeout: bool = True
) -> FilePlan:
    splits = prisma is not None and prisma.splits_statements
    segments = _Segments(migration_name)
    later: list[str] = []
    manual: list[str] = []
    summaries: list[str] = []
    deploys: list[str] = []
    real = [s for s in result.statements if s.kind not in ("transaction", "commit", "rollback")]
    needs_timeout = add_lock_timeout and any(
        f.rule_id == "lock-timeout-missing" for s in result.statements for f in s.findings
    )
    # Names created from each statement on (a Prisma type change drops and re-adds a column in one ALTER).
    created_later = [
        frozenset().union(*(s.creates for s in result.statements[index:]))
        for index in range(len(result.statements))
    ]
    retired_later = [
        frozenset().union(*(s.retires for s in result.statements[index + 1 :]))
        for index in range(len(result.statements))
    ]
    later_indices: list[int] = []
    manual_indices: list[int] = []
    for index, statement in enumerate(result.statements):
        segments.index = index
        rules = {f.rule_id for f in statement.findings if not f.suppressed}
        if "locks-held-until-commit" in rules and statement.has_fix:
            rules.discard("locks-held-until-commit")  # the rewrite makes it brief: nothing long to wait for
        if rules & _SPLITS_BEFORE and not splits:
            segments.close()
            summaries.append(
                f"line {statement.line_start}: starts a new migration ({', '.join(sorted(rules & _SPLITS_BEFORE))})"
            )
        if not statement.has_fix or statement.parts is None:
            if (
                _runs_outside_transaction(statement)
                and len(real) > 1
                and (not splits or _drops_concurrently(statement))
            ):
                segments.alone(statement_sql(statement.sql))
                summaries.append(f"line {statement.line_start}: moved to a migration of its own")
            else:
                segments.add(statement_sql(statement.sql))
            continue
        for part, fix in zip(statement.parts, statement.fixes, strict=True):
            if (
                fix is not None
                and fix.defers_drop_of is not None
                and (
                    fix.defers_drop_of in created_later[index]
                    or fix.defers_drop_of[0] in retired_later[index]
                )
            ):
                fix = None  # the name is reused, or the table renamed or dropped, later in this file: no waiting
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
            manual.extend(fix.manual)
            manual_indices.extend(index for _ in fix.manual)
            later.extend(statement_sql(s) for s in fix.later)
            if fix.later and index not in later_indices:
                later_indices.append(index)
            if fix.deploy_first and fix.deploy_first not in deploys:
                deploys.append(fix.deploy_first)
    segments.close()
    if needs_timeout:
        summaries.append("every migration that locks tables starts with SET lock_timeout")
    return FilePlan(
        original=migration_name,
        steps=_steps(segments, later, later_indices, manual, manual_indices, deploys, needs_timeout),
        summaries=tuple(summaries),
    )


def _drops_concurrently(statement: StatementResult) -> bool:
    return bool(re.search(r"^\s*DROP\s+INDEX\s+CONCURRENTLY\b", statement.sql, re.IGNORECASE))


def _steps(
    segments: _Segments,
    later: list[str],
    later_indices: list[int],
    manual: list[str],
    manual_indices: list[int],
    deploys: list[str],
    needs_timeout: bool,
) -> tuple[Step, ...]:
    items = list(segments.items)
    steps: list[Step] = []
    names = _names(segments.base, len(items) + (1 if later else 0))
    for (statements, alone, indices), name in zip(items, names, strict=False):
        steps.append(_migration_step(name, statements, alone, needs_timeout, indices))
    if deploys:
        steps.append(
            Step("deploy", "deploy the application: " + "; ".join(deploys), None, tuple(later_indices))
        )
    steps.extend(
        Step("manual", text, None, (index,)) for text, index in zip(manual, manual_indices, strict=True)
    )
    if later:
        steps.append(_migration_step(names[len(items)], later, False, needs_timeout, tuple(later_indices)))
    return tuple(steps)


def _migration_step(
    name: str, statements: list[str], alone: bool, needs_timeout: bool, indices: tuple[int, ...] = ()
) -> Step:
    concurrently = any(_OUTSIDE_TRANSACTION.search(s) for s in statements)
    body = list(statements)
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
    return Step("migration", text, Migration(name, sql, alone), indices)


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
    }
