"""Analyse migration files: split, parse, judge each operation with the rules, replay it into the schema."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.analysis import operations as op
from bot.analysis.config import RepoConfig
from bot.analysis.dependencies import OPAQUE, keys_of, touches_of
from bot.analysis.lock_time import DEFAULT_CALIBRATION, Duration, duration, human_band
from bot.analysis.model import (
    Classification,
    Effect,
    FileResult,
    Finding,
    Fix,
    LockMode,
    Severity,
    StatementResult,
    worst,
)
from bot.analysis.parser import BlockStatement, ParsedStatement, parse_statement
from bot.analysis.prisma import PrismaVersion
from bot.analysis.rollback import RollbackWalk
from bot.analysis.schema import Schema
from bot.analysis.splitter import RawStatement, split_statements
from bot.fixes.do_block import block_fix, guards_run
from bot.rules import FILE_RULES, RULES
from bot.rules.base import Context, FileContext, Rule, StatementView

_SUPPRESSION = re.compile(r"--\s*zdm:ignore\s+(?P<rules>[\w,\-]+)[ \t]*(?P<reason>[^\n]*)")
_RULES_BY_OPERATION: dict[type[op.Operation], list[Rule]] = {}
for _rule in RULES:
    for _operation_type in _rule.operations:
        _RULES_BY_OPERATION.setdefault(_operation_type, []).append(_rule)
_RULE_SEVERITY = {r.id: r.severity for r in RULES} | {r.id: r.severity for r in FILE_RULES}


@dataclass(frozen=True)
class Suppression:
    rule_ids: frozenset[str]
    reason: str


def suppressions_for(raw: RawStatement) -> list[Suppression]:
    if "zdm:ignore" not in raw.leading and "zdm:ignore" not in raw.text and "zdm:ignore" not in raw.trailing:
        return []
    found = []
    for match in _SUPPRESSION.finditer(raw.leading + "\n" + raw.text + raw.trailing):
        reason = match.group("reason").strip()
        found.append(Suppression(frozenset(match.group("rules").split(",")), reason))
    return found


class Analyzer:
    """Holds the schema of one migrations root while its files are analysed in Prisma's order."""

    def __init__(
        self,
        config: RepoConfig | None = None,
        schema: Schema | None = None,
        prisma: PrismaVersion | None = None,
        *,
        plans: bool = True,
    ) -> None:
        """`plans=False`: no plan will be made from the results (a text report), so fixes that move
        statements later do not carry the keys the planner needs (`plan_file` refuses such results), and no
        rollback plan is worked out."""
        self.config = config or RepoConfig()
        self.plans = plans
        self.schema = schema or Schema()
        # The configured version wins over the one read from the repository.
        configured = PrismaVersion.parse(self.config.prisma_version) if self.config.prisma_version else None
        self.prisma = configured or prisma
        self.sizes = self.config.table_sizes()
        self.calibration = self.config.calibration or DEFAULT_CALIBRATION
        self._severities: dict[str, Severity] = {}

    def replay(self, text: str) -> None:
        """Apply an earlier migration to the schema without reporting on it."""
        self.schema.begin_file()
        for raw in split_statements(text):
            for operation in parse_statement(raw, text).operations:
                self.schema.apply(operation)

    def analyze(self, text: str, path: str = "<sql>") -> FileResult:
        self.schema.begin_file()
        ctx = Context(self.schema, self.config.postgres_version)
        statements: list[StatementResult] = []
        views: list[StatementView] = []
        raws = split_statements(text)
        suppressions = [suppressions_for(raw) for raw in raws]
        # Worked out on the way, from the schema before each operation: no copy of the schema is needed.
        rollback = RollbackWalk() if self.plans else None
        for index, raw in enumerate(raws):
            parsed = parse_statement(raw, text)
            if rollback is not None:
                rollback.statement(raw.line_start, parsed, raw.text)
            effects, runs = self._effects(parsed, ctx, rollback)
            statements.append(self._statement(index, raw, parsed, effects, runs, suppressions[index]))
            views.append(
                StatementView(
                    raw.line_start,
                    raw.text,
                    parsed.operations,
                    statements[-1].locks,
                    statements[-1].classification,
                    statements[-1].scans,
                )
            )
        file = FileContext(
            tuple(views),
            header=raws[0].leading if raws else text,
            prisma=self.prisma,
            postgres_version=self.config.postgres_version,
        )
        from_file_rules: dict[int, list[Finding]] = {}
        for file_rule in FILE_RULES:
            for index, effect in file_rule.check_file(file):
                finding = self._finding(effect, suppressions[index])
                if finding is not None:
                    from_file_rules.setdefault(index, []).append(finding)
        for index, findings in from_file_rules.items():
            statement = statements[index]
            # A file rule may find what the statement alone does not show: a read under a lock held since an
            # earlier statement blocks writers as long as the read lasts.
            classification = worst(
                [statement.classification, *(f.classification for f in findings if not f.suppressed)]
            )
            statements[index] = replace(
                statement, findings=(*statement.findings, *findings), classification=classification
            )
        return FileResult(
            path=path,
            statements=tuple(statements),
            prisma_version=str(self.prisma) if self.prisma else None,
            planned=self.plans,
            rollback=rollback.plan() if rollback is not None else None,
        )

    def _effects(
        self, parsed: ParsedStatement, ctx: Context, rollback: RollbackWalk | None = None
    ) -> tuple[list[list[Effect]], list[bool | None]]:
        """The effects of each operation, in order; the schema moves forward after each one (and `rollback`
        learns how to undo it just before). For a DO block, also whether the guards of each of its statements
        run it, by the schema just before it."""
        per_operation: list[list[Effect]] = []
        parts = parsed.parts
        # Each statement of a DO block, by the index of its first operation.
        block_statements: dict[int, BlockStatement] = {}
        if parsed.block is not None and parsed.block.statements:
            parts = tuple(part for s in parsed.block.statements for part in s.parts)
            first = 0
            for statement in parsed.block.statements:
                block_statements[first] = statement
                first += len(statement.operations)
        runs: list[bool | None] = []
        for index, operation in enumerate(parsed.operations):
            if index in block_statements:
                runs.append(guards_run(block_statements[index], self.schema))
            op_ctx = Context(ctx.schema, ctx.postgres_version, parts[index]) if parts is not None else ctx
            produced = [
                effect
                for rule in _RULES_BY_OPERATION.get(type(operation), ())
                if (effect := rule.check(operation, op_ctx)) is not None
            ]
            if self.plans:
                produced = [_with_keys(effect, operation, op_ctx) for effect in produced]
            per_operation.append(produced or [_uncovered(operation)])
            if rollback is not None:
                rollback.operation(operation, self.schema, parts[index] if parts is not None else "")
            self.schema.apply(operation)
        return per_operation, runs

    def _statement(
        self,
        index: int,
        raw: RawStatement,
        parsed: ParsedStatement,
        per_operation: list[list[Effect]],
        runs: list[bool | None],
        suppressions: list[Suppression],
    ) -> StatementResult:
        effects = [effect for produced in per_operation for effect in produced]
        in_block = parsed.kind.startswith("do")
        fixes: tuple[Fix | None, ...] = tuple(
            self._fix_of(produced, suppressions) for produced in per_operation
        )
        parts = parsed.parts
        kept_because = None
        if in_block:
            # Statements inside a DO block run as the block decides: the block is rewritten as a whole, its
            # statements in it, only where that keeps what it does (`bot.fixes.do_block`).
            whole = block_fix(parsed.block, fixes, runs) if parsed.block is not None else None
            kept_because = whole if isinstance(whole, str) else None
            fixes = (whole,) if isinstance(whole, Fix) else ()
            parts = (raw.text.rstrip().rstrip(";").rstrip(),)
        locks: dict[str, LockMode] = {}
        rewrites: set[str] = set()
        scans: set[str] = set()
        # Without recorded sizes (most repositories) there is nothing to estimate.
        lock_time = duration(effects, self.sizes, self.calibration) if self.sizes else None
        online_time = duration(effects, self.sizes, self.calibration, blocking=False) if self.sizes else None
        findings: list[Finding] = []
        classes: list[Classification] = []
        for effect in effects:
            for table, mode in effect.locks.items():
                held = locks.get(table)
                if held is None or mode > held:
                    locks[table] = mode
            if effect.rewrites:
                rewrites |= effect.rewrites
            if effect.scans:
                scans |= effect.scans
            if effect.classification is Classification.SAFE and not (
                effect.breaking or effect.fails_migration
            ):
                continue  # nothing to report; safe adds nothing to the classification either
            finding = self._finding(effect, suppressions, lock_time)
            if finding is None:
                continue
            classes.append(effect.classification)
            findings.append(finding)
        return StatementResult(
            index=index,
            line_start=raw.line_start,
            line_end=raw.line_end,
            sql=raw.text,
            classification=worst(classes),
            breaking=any(f.breaking for f in findings),
            locks=locks,
            rewrites=frozenset(rewrites),
            scans=frozenset(scans),
            findings=tuple(_dedupe(findings)),
            kind=parsed.kind,
            # Parts only matter to a fix; leaving them out keeps results small to pass between processes.
            parts=parts if any(f is not None for f in fixes) else None,
            fixes=fixes if parts is not None and any(f is not None for f in fixes) else (),
            kept_because=kept_because,
            retires=frozenset(
                o.name for o in parsed.operations if isinstance(o, (op.RenameTable, op.DropTable))
            ),
            touches=((OPAQUE,) if in_block else tuple(touches_of(o) for o in parsed.operations))
            if self.plans
            else (),
            lock_time=lock_time,
            online_time=online_time,
        )

    def _fix_of(self, effects: list[Effect], suppressions: list[Suppression]) -> Fix | None:
        """The first fix offered for an operation by a finding that is neither suppressed nor turned off."""
        for effect in effects:
            if effect.fix is None or (
                effect.classification is Classification.SAFE and not effect.fails_migration
            ):
                continue
            if (
                self._severity(effect.rule_id) is not Severity.OFF
                and _suppressed(effect, suppressions) is None
            ):
                return effect.fix
        return None

    def _severity(self, rule_id: str) -> Severity:
        severity = self._severities.get(rule_id)
        if severity is None:
            severity = self.config.severity_of(rule_id, _RULE_SEVERITY.get(rule_id, Severity.ERROR))
            self._severities[rule_id] = severity
        return severity

    def _finding(
        self, effect: Effect, suppressions: Iterable[Suppression], lock_time: Duration | None = None
    ) -> Finding | None:
        """`lock_time`: the band of the whole statement the effect belongs to, when its sizes are known."""
        severity = self._severity(effect.rule_id)
        if severity is Severity.OFF:
            return None
        message = effect.message
        if effect.classification is Classification.BLOCKING and self.sizes:
            lock_time = lock_time or duration([effect], self.sizes, self.calibration)
        else:
            lock_time = None
        if severity is Severity.ERROR and lock_time is not None:
            # Sizes are known: the estimated time under the lock decides, not the row count.
            if lock_time.high < self.config.max_lock_seconds:
                severity = Severity.WARNING
                message = (
                    f"{message} (About {human_band(lock_time.low, lock_time.high)} by the table sizes zdm stats "
                    f"recorded, under max_lock_seconds {self.config.max_lock_seconds:g} s: a warning.)"
                )
        elif (
            severity is Severity.ERROR
            and self.config.table_rows
            and (touched := set(effect.locks) | effect.rewrites | effect.scans)
            and all(self.config.known_small(t) for t in touched)
        ):
            # The duration of a blocking lock grows with the table: on tables known to stay small it is a warning.
            severity = Severity.WARNING
            sizes = ", ".join(f"{t}: ~{self.config.table_rows[t]:,} rows" for t in sorted(touched))
            message = (
                f"{message} ({sizes} by .github/zdm.yml, under {self.config.large_table_rows:,}: a warning.)"
            )
        reason = _suppressed(effect, suppressions)
        return Finding(
            rule_id=effect.rule_id,
            classification=effect.classification,
            severity=severity,
            message=message,
            safe_alternative=effect.safe_alternative,
            breaking=effect.breaking,
            table=effect.table,
            suppressed_reason=reason,
            fails_migration=effect.fails_migration,
        )


def _suppressed(effect: Effect, suppressions: Iterable[Suppression]) -> str | None:
    """The reason given by the last `-- zdm:ignore` naming the effect's rule, if any."""
    reason = None
    for suppression in suppressions:
        if effect.rule_id in suppression.rule_ids and suppression.reason:
            reason = suppression.reason
    return reason


def _with_keys(effect: Effect, operation: op.Operation, ctx: Context) -> Effect:
    """A fix that moves statements later carries what they change the meaning of, read from the schema
    before the operation runs: the planner needs it to know what else must move or keep its place."""
    fix = effect.fix
    if fix is None or not fix.later:
        return effect
    keys = keys_of(operation, "\n".join(fix.later), ctx.schema)
    return replace(effect, fix=replace(fix, keys=keys))


def _uncovered(operation: op.Operation) -> Effect:
    # A parsed operation no rule claims is a gap in zdm, reported like any statement it cannot read.
    return Effect(
        rule_id="unrecognized-statement",
        classification=Classification.UNKNOWN,
        message=f"zdm has no rule for {type(operation).__name__}; review its locks by hand.",
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule_id, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def analyze_sql(
    text: str, path: str = "<sql>", *, setup: str = "", config: RepoConfig | None = None
) -> FileResult:
    """Analyse one migration; `setup` is SQL of earlier migrations whose objects count as live."""
    analyzer = Analyzer(config)
    if setup:
        analyzer.replay(setup)
    return analyzer.analyze(text, path)
