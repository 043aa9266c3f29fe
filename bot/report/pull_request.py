"""What zdm says on a pull request, built from analysis results (pure: no GitHub types, no I/O).

The check run (conclusion, summary, annotations), the inline review comments with their suggestions or plans,
and the summary comment with the checklist. Each flagged statement is identified by a digest of its
normalised SQL and rule ids: review comments carry it in a hidden marker so a later run does not repeat them,
and approvals cover exactly the digests present when they were given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.analysis.model import Classification, FileResult, Finding, StatementResult
from bot.analysis.prisma import PrismaVersion
from bot.fixes.checklist import checklist, render_checklist
from bot.fixes.plan import LOCK_TIMEOUT, FilePlan, plan_file, statement_sql
from bot.report import annotation_message, located_findings
from bot.report.sarif import level

SUMMARY_MARKER = "<!-- zdm:summary -->"
FINDING_MARKER = "<!-- zdm:finding {} -->"
FINDING_MARKER_PATTERN = re.compile(r"<!-- zdm:finding ([0-9a-f]{16}) -->")
# GitHub's limits: 65,535 characters for a check run summary or text, and for a comment body.
MAX_TEXT = 65_000
_ANNOTATION_LEVEL = {"error": "failure", "warning": "warning", "note": "notice"}
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def normalised_sql(sql: str) -> str:
    """The statement without comments, case of keywords aside: whitespace and a trailing `;` do not count."""
    text = _SQL_COMMENT.sub(" ", sql)
    return " ".join(text.split()).rstrip(";").rstrip()


def statement_digest(statement: StatementResult, rule_ids: Sequence[str]) -> str:
    text = normalised_sql(statement.sql) + "\n" + ",".join(sorted(rule_ids))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ChangedMigration:
    """A migration file the pull request adds or changes, with the lines review comments may sit on."""

    path: str
    text: str
    result: FileResult
    # None: every line (an added file); otherwise the head-side lines of the diff.
    commentable: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Flagged:
    digest: str
    path: str
    line_start: int
    line_end: int
    rule_ids: tuple[str, ...]
    sql: str


@dataclass(frozen=True, slots=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    level: str  # notice | warning | failure
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class InlineComment:
    path: str
    line: int
    start_line: int | None
    body: str
    digest: str


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    reason: str
    digests: frozenset[str]
    at: str = ""


@dataclass(frozen=True)
class PullRequestReport:
    conclusion: str  # success | failure
    title: str
    summary: str
    annotations: tuple[Annotation, ...]
    comments: tuple[InlineComment, ...]
    summary_comment: str
    flagged: tuple[Flagged, ...]
    unapproved: tuple[Flagged, ...] = ()
    approvals_used: tuple[Approval, ...] = field(default_factory=tuple)


def _finding_text(finding: Finding) -> str:
    text = f"**{finding.rule_id}** ({finding.classification.value}"
    text += ", breaking)" if finding.breaking else ")"
    text += f": {finding.message}"
    return text


def _locks(statement: StatementResult) -> str:
    if not statement.locks:
        return "no table locks"
    parts = []
    for table, mode in sorted(statement.locks.items()):
        effect = (
            "blocks reads and writes"
            if mode.blocks_reads
            else "blocks writes"
            if mode.blocks_writes
            else "brief"
        )
        extra = []
        if table in statement.rewrites:
            extra.append("rewrites it")
        elif table in statement.scans:
            extra.append("scans it")
        parts.append(f"`{mode.sql_name}` on `{table}` ({', '.join([effect, *extra])})")
    return "; ".join(parts)


def _statement_replacement(statement: StatementResult, lock_timeout: bool) -> str | None:
    """The statements that replace this one in its own file, when the fix is an in-file edit."""
    if statement.parts is None or not statement.has_fix:
        return None
    pieces: list[str] = []
    for part, fix in zip(statement.parts, statement.fixes, strict=True):
        if fix is None:
            pieces.append(statement_sql(part))
            continue
        if fix.manual or fix.later or fix.deploy_first or fix.alone_always:
            return None
        pieces.extend(statement_sql(s) for s in (*fix.in_place, *fix.alone))
    if lock_timeout:
        pieces.insert(0, LOCK_TIMEOUT)
    return "\n".join(pieces)


def _occupies_whole_lines(text: str, statement: StatementResult) -> bool:
    lines = text.splitlines()
    block = "\n".join(lines[statement.line_start - 1 : statement.line_end])
    return normalised_sql(block) == normalised_sql(statement.sql) and bool(block.strip())


def _plan_steps(plan: FilePlan) -> str:
    lines = []
    for number, step in enumerate(plan.steps, 1):
        if step.migration is not None:
            lines.append(f"{number}. Migration `{step.migration.name}` ({step.text}):")
            lines.append("")
            lines.append("   ```sql")
            lines.extend("   " + line for line in step.migration.sql.rstrip().splitlines())
            lines.append("   ```")
        else:
            lines.append(f"{number}. {step.kind.capitalize()}: {step.text}")
    return "\n".join(lines)


def _comment_body(
    change: ChangedMigration,
    statement: StatementResult,
    findings: list[Finding],
    digest: str,
    plan: FilePlan | None,
    in_file: bool,
) -> str:
    lines = [FINDING_MARKER.format(digest)]
    worst = max((f.classification for f in findings), key=lambda c: c.rank)
    lines.append(f"**zdm: {worst.value}**. {_locks(statement)}.")
    lines.append("")
    lines.extend(f"- {_finding_text(f)}" for f in findings)
    alternatives = [f.safe_alternative for f in findings if f.safe_alternative]
    timeout = any(f.rule_id == "lock-timeout-missing" for f in findings)
    replacement = _statement_replacement(statement, timeout) if in_file else None
    if replacement is not None and _occupies_whole_lines(change.text, statement):
        lines += ["", "Safe rewrite, in this file:", "", "```suggestion", replacement, "```"]
    elif plan is not None and plan.changes_anything and statement.has_fix:
        fixes = [fix.summary for fix in statement.fixes if fix is not None]
        lines += [
            "",
            "**Fix** (" + " ".join(fixes) + ") takes more than one migration:",
            "",
            _plan_steps(plan),
        ]
        lines += ["", "`zdm fix " + change.path.rsplit("/", 1)[0] + "` writes these migration folders."]
    elif alternatives:
        lines += ["", "**Instead:** " + " ".join(dict.fromkeys(alternatives))]
    lines += [
        "",
        "Deliberate? `/zdm approve <reason>` (someone with write access), or `-- zdm:ignore <rule> <reason>`.",
    ]
    return "\n".join(lines)


def _comment_lines(change: ChangedMigration, statement: StatementResult) -> tuple[int, int | None] | None:
    """(line, start_line) for a comment on the statement, inside the diff; None if no line of it is."""
    lines = range(statement.line_start, statement.line_end + 1)
    visible = list(lines) if change.commentable is None else [n for n in lines if n in change.commentable]
    if not visible:
        return None
    end = visible[-1]
    start = visible[0]
    # A multi-line comment must stay within one hunk: only when every line between is visible.
    if start != end and all(n in visible for n in range(start, end + 1)):
        return end, start
    return end, None


def build_report(
    changes: Sequence[ChangedMigration],
    prisma: PrismaVersion | None,
    approvals: Sequence[Approval] = (),
    notes: Sequence[str] = (),
) -> PullRequestReport:
    annotations: list[Annotation] = []
    comments: list[InlineComment] = []
    flagged: list[Flagged] = []
    plans: dict[str, FilePlan] = {}
    for change in changes:
        result = change.result
        name = change.path.rsplit("/", 2)[-2] if change.path.count("/") >= 1 else change.path
        plan = plan_file(name, result, prisma)
        plans[change.path] = plan
        in_file = len(plan.migrations) == 1 and all(step.kind == "migration" for step in plan.steps)
        for located in located_findings(result):
            finding = located.finding
            if finding.suppressed:
                continue
            annotations.append(
                Annotation(
                    change.path,
                    located.line_start,
                    located.line_end,
                    _ANNOTATION_LEVEL[level(finding)],
                    f"zdm {finding.rule_id}",
                    annotation_message(finding),
                )
            )
        for statement in result.statements:
            shown = [f for f in statement.findings if not f.suppressed and level(f) != "note"]
            if not shown:
                continue
            digest = statement_digest(statement, [f.rule_id for f in shown])
            if statement.fails_check:
                flagged.append(
                    Flagged(
                        digest,
                        change.path,
                        statement.line_start,
                        statement.line_end,
                        tuple(sorted({f.rule_id for f in statement.findings if f.fails_check})),
                        statement.sql,
                    )
                )
            position = _comment_lines(change, statement)
            if position is None:
                continue
            comments.append(
                InlineComment(
                    change.path,
                    position[0],
                    position[1],
                    _comment_body(change, statement, shown, digest, plan, in_file),
                    digest,
                )
            )
        for finding in result.file_findings:
            if finding.fails_check:
                digest = hashlib.sha256(f"{change.path}\n{finding.rule_id}".encode()).hexdigest()[:16]
                flagged.append(Flagged(digest, change.path, 1, 1, (finding.rule_id,), ""))
    approved = {d for a in approvals for d in a.digests}
    unapproved = tuple(f for f in flagged if f.digest not in approved)
    used = tuple(a for a in approvals if a.digests & {f.digest for f in flagged})
    conclusion = "failure" if unapproved else "success"
    title = _title(changes, flagged, unapproved)
    summary = _check_summary(changes, flagged, unapproved, used, notes, bool(approvals))
    summary_comment = _summary_comment(changes, plans, prisma, title, unapproved, used, notes)
    return PullRequestReport(
        conclusion,
        title,
        summary,
        tuple(annotations),
        tuple(comments),
        summary_comment,
        tuple(flagged),
        unapproved,
        used,
    )


def _title(
    changes: Sequence[ChangedMigration], flagged: list[Flagged], unapproved: tuple[Flagged, ...]
) -> str:
    if not changes:
        return "No migration changes"
    statements = sum(len(c.result.statements) for c in changes)
    if unapproved:
        return f"{len(unapproved)} statement(s) need attention in {len(changes)} migration(s)"
    if flagged:
        return f"{len(flagged)} flagged statement(s) approved"
    return f"{statements} statement(s) in {len(changes)} migration(s): nothing blocks"


def _statement_table(changes: Sequence[ChangedMigration]) -> list[str]:
    lines = ["| Migration | Line | Statement | Class | Locks | Rules |", "|---|---|---|---|---|---|"]
    for change in changes:
        folder = change.path.rsplit("/", 2)[-2] if "/" in change.path else change.path
        for statement in change.result.statements:
            if statement.kind == "empty":
                continue
            first = " ".join(normalised_sql(statement.sql).split()[:6])
            rules = ", ".join(f"`{r}`" for r in statement.rule_ids) or "-"
            cls = statement.classification.value
            if statement.breaking:
                cls += ", breaking"
            lines.append(
                f"| `{folder}` | {statement.line_start} | `{_cell(first)}` | {cls} | {_cell(_locks(statement))} | {rules} |"
            )
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _approvals_text(used: Sequence[Approval]) -> list[str]:
    return [
        f"- Approved by @{a.approver}" + (f" at {a.at}" if a.at else "") + f": {a.reason or '(no reason)'}"
        for a in used
    ]


def _check_summary(
    changes: Sequence[ChangedMigration],
    flagged: list[Flagged],
    unapproved: tuple[Flagged, ...],
    used: Sequence[Approval],
    notes: Sequence[str],
    approved_before: bool = False,
) -> str:
    if not changes:
        return "This pull request changes no Prisma migration for PostgreSQL."
    lines = []
    counts = {c: 0 for c in Classification}
    for change in changes:
        for statement in change.result.statements:
            counts[statement.classification] += 1
    lines.append(", ".join(f"{n} {c.value}" for c, n in counts.items() if n) + ".")
    if unapproved:
        heading = (
            "New or changed since the last approval, not covered by it"
            if approved_before
            else "Needs attention"
        )
        lines += [
            "",
            f"{heading} (fix it, or `/zdm approve <reason>` from someone with write access):",
            "",
        ]
        lines += [f"- `{f.path}` line {f.line_start}: {', '.join(f.rule_ids)}" for f in unapproved]
    if used:
        lines += ["", *_approvals_text(used)]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    lines += ["", *_statement_table(changes)]
    return _limit("\n".join(lines))


def _summary_comment(
    changes: Sequence[ChangedMigration],
    plans: dict[str, FilePlan],
    prisma: PrismaVersion | None,
    title: str,
    unapproved: tuple[Flagged, ...],
    used: Sequence[Approval],
    notes: Sequence[str],
) -> str:
    lines = [SUMMARY_MARKER, f"## zdm: {title}", ""]
    if not changes:
        lines.append("This pull request changes no Prisma migration for PostgreSQL.")
        return "\n".join(lines)
    if prisma is not None:
        lines += [f"Judged for Prisma {prisma}.", ""]
    lines += _statement_table(changes)
    if used:
        lines += ["", *_approvals_text(used)]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    for path, plan in plans.items():
        if plan.changes_anything and len(plan.steps) > 1:
            lines += [
                "",
                f"<details><summary>Safe plan for <code>{path}</code></summary>",
                "",
                _plan_steps(plan),
                "",
                "</details>",
            ]
    items = checklist([c.result for c in changes], prisma)
    if items:
        lines += ["", "### Before deploying", "", render_checklist(items)]
    return _limit("\n".join(lines))


def _limit(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 80] + "\n\n… (truncated: see the inline comments and annotations)"
