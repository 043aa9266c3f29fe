"""What zdm says on a pull request, built from analysis results (pure: no GitHub types, no I/O).

The check run (verdict, table, annotations), one short inline comment per statement that needs action, and the
summary comment (verdict, table, each file's plan once, the checklist). Each flagged statement is identified by
a digest of its normalised SQL and rule ids: comments carry the digests they speak for in a hidden marker so a
later run does not repeat them, and approvals cover exactly the digests present when they were given.

Everything written fits GitHub's limits: what does not fit is cut at a line, step or row boundary with a line
saying how much more there is and which command shows it, never in the middle of a block.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.analysis.history import Hazard
from bot.analysis.model import Classification, FileResult, Finding, StatementResult
from bot.analysis.prisma import PrismaVersion
from bot.fixes.checklist import checklist, render_checklist
from bot.fixes.plan import LOCK_TIMEOUT, FilePlan, Step, plan_file
from bot.report import annotation_message, located_findings
from bot.report.sarif import level

SUMMARY_MARKER = "<!-- zdm:summary -->"
FINDING_MARKER = "<!-- zdm:finding {} -->"
FINDINGS_MARKER = "<!-- zdm:findings {} -->"
# One digest (an inline comment) or several (a file-level comment standing for many statements).
FINDING_MARKER_PATTERN = re.compile(r"<!-- zdm:findings? ((?:[0-9a-f]{16} ?)+) -->")

# GitHub's limits: an issue or review comment body holds at most 65,536 characters (GitHub answers 422 "Body is
# too long (maximum is 65536 characters)"); a check run's output.summary and output.text at most 65,535 (its
# OpenAPI description). output.title has no documented limit: zdm keeps to the 255 of an annotation's title.
MAX_COMMENT = 65_536
MAX_OUTPUT = 65_535
MAX_TITLE = 255
# An inline comment is read at a glance: at most this long, unless it holds its statement's suggestion.
INLINE_LIMIT = 3_000
# More new statements needing action than this in one file: one file-level comment instead of one per line.
FILE_COMMENT_THRESHOLD = 30
# A one-line reason in an inline comment (some messages list every table a file locks).
_WHY_LIMIT = 320
# The rollback SQL the checklist gives, at most (about 150 steps): the checklist always stays in the summary.
_ROLLBACK_SQL_LIMIT = 10_000

# The verdict's ways out on a pull request: accept the findings as they are, or change the statements.
ACCEPT = "comment `/zdm approve <reason>` (write access) to accept them as they are."
BY_HAND = "Change them by hand (see the inline comments)"

_ANNOTATION_LEVEL = {"error": "failure", "warning": "warning", "note": "notice"}
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z`\"(])")


def normalised_sql(sql: str) -> str:
    """The statement without comments, case of keywords aside: whitespace and a trailing `;` do not count."""
    text = _SQL_COMMENT.sub(" ", sql)
    return " ".join(text.split()).rstrip(";").rstrip()


def statement_digest(statement: StatementResult, rule_ids: Sequence[str]) -> str:
    return _short_digest(normalised_sql(statement.sql) + "\n" + ",".join(sorted(rule_ids)))


def _short_digest(text: str) -> str:
    """The digest zdm keeps of what a comment or an approval is about (hidden in the comment's markdown)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ChangedMigration:
    """A migration file the pull request adds or changes, with the lines review comments may sit on."""

    path: str
    text: str
    result: FileResult
    # None: every line (an added file); otherwise the head-side lines of the diff.
    commentable: frozenset[int] | None = None

    @property
    def folder(self) -> str:
        """The migration folder's path: what `zdm fix` takes."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else self.path

    @property
    def name(self) -> str:
        return self.folder.rsplit("/", 1)[-1]


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
    """What zdm says on one statement's lines."""

    path: str
    line: int
    start_line: int | None
    body: str
    digest: str
    # What a file-level comment says of the statement when its file has too many to comment on one by one.
    statement_line: int = 0
    classification: str = ""
    rule_id: str = ""
    breaking: bool = False


@dataclass(frozen=True, slots=True)
class FileComment:
    """One comment on a whole file, standing for many statements' inline comments."""

    path: str
    body: str
    digests: frozenset[str]


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    reason: str
    digests: frozenset[str]
    at: str = ""
    # Where it counts: None, the whole pull request it was given on; else only these files (a merge group
    # holds other pull requests, which the approval was not given for).
    paths: frozenset[str] | None = None

    def covers(self, item: Flagged) -> bool:
        return item.digest in self.digests and (self.paths is None or item.path in self.paths)


@dataclass(frozen=True)
class PullRequestReport:
    conclusion: str  # success | failure
    title: str
    summary: str
    annotations: tuple[Annotation, ...]
    # One per statement needing action, whatever was posted before (`comments_to_post` picks the new ones).
    comments: tuple[InlineComment, ...]
    summary_comment: str
    flagged: tuple[Flagged, ...]
    unapproved: tuple[Flagged, ...] = ()
    approvals_used: tuple[Approval, ...] = field(default_factory=tuple)


# -- fitting text into GitHub's limits ------------------------------------------------------------------------


def fit_blocks(blocks: Sequence[str], budget: int, more: Callable[[int], str]) -> list[str]:
    """The leading blocks that fit in `budget` characters (joined by newlines), then one line saying how many
    were left out. Blocks are never cut, so a code fence is never left open."""
    if sum(len(b) + 1 for b in blocks) <= budget:
        return list(blocks)
    kept: list[str] = []
    used = 0
    for index, block in enumerate(blocks):
        note = more(len(blocks) - index)
        if used + len(block) + 1 + len(note) + 1 > budget:
            return [*kept, note]
        kept.append(block)
        used += len(block) + 1
    return kept


def cap(text: str, limit: int) -> str:
    """A last guard: text over `limit` is cut at a line, with any open code fence closed."""
    if len(text) <= limit:
        return text
    tail = "\n\n… cut to fit GitHub's limit: run `zdm check` for everything."
    cut = text[: limit - len(tail) - 8]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    if cut.count("```") % 2:
        cut += "\n```"
    return cut + tail


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_sentence(text: str, limit: int = _WHY_LIMIT) -> str:
    match = _SENTENCE_END.search(text)
    return _clip(text[: match.start() + 1] if match else text, limit)


# -- words -------------------------------------------------------------------------------------------------------


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
    # The estimate from the tables' sizes, where the reviewer decides.
    parts += [band.describe() for band in (statement.lock_time, statement.online_time) if band is not None]
    return "; ".join(parts)


def _needs_action(findings: Sequence[Finding]) -> bool:
    """Fails the check or needs a decision: blocking, unknown, breaking, or failing `prisma migrate deploy`."""
    return any(
        f.fails_check or f.fails_migration or f.breaking or f.classification.needs_review for f in findings
    )


def _primary(findings: Sequence[Finding]) -> Finding:
    """The finding that says why the statement is commented on: what fails the check first."""
    return max(findings, key=lambda f: (f.fails_check, f.classification.rank, f.breaking, f.fails_migration))


def _step_text(step: Step) -> str:
    return _clip(step.text, 400)


def _plan_steps(plan: FilePlan) -> list[str]:
    """The plan as numbered blocks, one per step, each whole (SQL fences closed)."""
    blocks = []
    for number, step in enumerate(plan.steps, 1):
        if step.migration is not None:
            lines = [f"{number}. Migration `{step.migration.name}` ({step.text}):", "", "   ```sql"]
            lines.extend("   " + line for line in step.migration.sql.rstrip().splitlines())
            lines.append("   ```")
            blocks.append("\n".join(lines))
        else:
            blocks.append(f"{number}. {step.kind.capitalize()}: {_step_text(step)}")
    return blocks


# -- one statement's inline comment ----------------------------------------------------------------------------


def _has_rewrite(statement: StatementResult, index: int, plan: FilePlan) -> bool:
    """zdm's plan writes something else for the statement (all of it or a part), or runs it elsewhere: in a
    migration of its own or a later one."""
    if not plan.changes_anything:
        return False
    numbers = plan.step_numbers(index)
    if any(
        (step := plan.steps[number - 1]).migration is not None and step.migration.name != plan.original
        for number in numbers
    ):
        return True
    if not statement.has_fix:
        return False
    if index not in plan.no_rewrite:
        return True
    # A part kept as written, the others rewritten.
    written = [normalised_sql(sql) for number in numbers for sql in plan.steps[number - 1].sql_of(index)]
    return written != [normalised_sql(statement.sql)]


def _suggestion(
    change: ChangedMigration, index: int, plan: FilePlan, position: tuple[int, int | None]
) -> str | None:
    """The statement's rewrite as a GitHub suggestion, when it is an edit of exactly the commented lines of
    this file: one step, the file's own migration, nothing to run alone, deploy or do by hand."""
    statement = change.result.statements[index]
    numbers = plan.step_numbers(index)
    if len(numbers) != 1:
        return None
    step = plan.steps[numbers[0] - 1]
    if step.migration is None or step.migration.name != plan.original or step.migration.alone:
        return None
    own = step.sql_of(index)
    if not own:
        return None
    line, start = position
    if (start or line) != statement.line_start or line != statement.line_end:
        return None  # a suggestion replaces the commented lines: they must be the whole statement
    lines = change.text.splitlines()
    block = "\n".join(lines[statement.line_start - 1 : statement.line_end])
    if normalised_sql(block) != normalised_sql(statement.sql) or not block.strip():
        return None  # the statement shares its lines with another one
    # The plan opens the migration with a lock_timeout for the statement that lacked one (never before a
    # CONCURRENTLY build, which it would make fail).
    timeout = step.migration.sql.startswith(LOCK_TIMEOUT) and any(
        f.rule_id == "lock-timeout-missing" and not f.suppressed for f in statement.findings
    )
    return "\n".join([LOCK_TIMEOUT, *own] if timeout else own)


def _own_steps(plan: FilePlan, index: int, with_sql: bool) -> list[str]:
    """This statement's part of each step of the file's plan that holds it: a migration shared with other
    statements shows only the SQL the plan put there for this one; a deploy or manual step shared with
    others points to the summary."""
    lines: list[str] = []
    for number in plan.step_numbers(index):
        step = plan.steps[number - 1]
        if step.migration is None:
            text = _step_text(step) if step.statements == (index,) else "see the summary comment"
            lines.append(f"- Step {number}, {step.kind}: {text}")
            continue
        alone = ", alone: it cannot run inside a transaction" if step.migration.alone else ""
        lines.append(f"- Step {number}, migration `{step.migration.name}`{alone}:")
        own = step.sql_of(index)
        if with_sql and own:
            sql = "\n".join(own).splitlines()
            lines += ["  ```sql", *("  " + line for line in sql), "  ```"]
    return lines


def _inline_body(
    change: ChangedMigration,
    index: int,
    shown: Sequence[Finding],
    digest: str,
    plan: FilePlan,
    prisma: PrismaVersion | None,
    position: tuple[int, int | None],
) -> str:
    statement = change.result.statements[index]
    primary = _primary(shown)
    worst = max((f.classification for f in shown), key=lambda c: c.rank)
    rules = ", ".join(f"`{r}`" for r in dict.fromkeys([primary.rule_id, *(f.rule_id for f in shown)]))
    breaking = next((f for f in shown if f.breaking), None)
    head = [
        FINDING_MARKER.format(digest),
        f"**zdm: {worst.value}{', breaking' if breaking else ''}** ({rules}): {_locks(statement)}.",
        "",
        _first_sentence(primary.message),
    ]
    if breaking is not None and not primary.breaking:
        # Breaking the running application is a second, different reason to act.
        head.append(_first_sentence(breaking.message))
    tail: list[str] = []
    if statement.fails_check:
        tail = [
            "",
            f"Deliberate? `/zdm approve <reason>`, or `-- zdm:ignore {primary.rule_id} <reason>` above it.",
        ]

    def body(fix: list[str]) -> str:
        return "\n".join([*head, *fix, *tail])

    alternative = next((f.safe_alternative for f in (primary, *shown) if f.safe_alternative), "")
    # One answer per statement: the comment shows what the plan does with it, never a rewrite it does not apply.
    kept = (
        ["", f"Kept as written by zdm's plan: {_clip(plan.no_rewrite[index], 400)}"]
        if index in plan.no_rewrite
        else []
    )
    if not _has_rewrite(statement, index, plan):
        fix = list(kept)
        if alternative and not kept:
            fix += ["", "**Instead** (by hand: zdm writes no rewrite for it): " + _clip(alternative, 600)]
        return cap(body(fix), INLINE_LIMIT)
    if kept:
        kept[1] = "Part of it is " + kept[1][0].lower() + kept[1][1:]
    suggestion = _suggestion(change, index, plan, position)
    if suggestion is not None:
        text = body(["", "Safe rewrite, in place:", "", "```suggestion", suggestion, "```", *kept])
        if len(text) <= MAX_COMMENT:
            return text
    numbers = plan.step_numbers(index)
    which = ", ".join(str(n) for n in numbers)
    intro = [
        "",
        f"**Its part of the safe plan**: step{'s' if len(numbers) > 1 else ''} {which} of {len(plan.steps)}; "
        "the whole plan is in the summary.",
        "",
    ]
    text = body([*intro, *_own_steps(plan, index, with_sql=True), *kept])
    if len(text) > INLINE_LIMIT:
        text = body([*intro, *_own_steps(plan, index, with_sql=False), *kept])
    return cap(text, INLINE_LIMIT)


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


# -- which comments to post --------------------------------------------------------------------------------------


def comments_to_post(
    comments: Sequence[InlineComment], posted: set[str]
) -> tuple[list[InlineComment], list[FileComment]]:
    """The comments not posted before: inline, or, for a file with more than FILE_COMMENT_THRESHOLD of them, one
    file-level comment standing for all of them (their digests in its marker, so none is posted again)."""
    new = [c for c in comments if c.digest not in posted]
    by_path: dict[str, list[InlineComment]] = {}
    for comment in new:
        by_path.setdefault(comment.path, []).append(comment)
    inline: list[InlineComment] = []
    files: list[FileComment] = []
    for path, found in by_path.items():
        if len(found) > FILE_COMMENT_THRESHOLD:
            files.append(
                FileComment(path, _file_comment_body(path, found), frozenset(c.digest for c in found))
            )
        else:
            inline.extend(found)
    return inline, files


def _file_comment_body(path: str, comments: Sequence[InlineComment]) -> str:
    marker = FINDINGS_MARKER.format(" ".join(sorted({c.digest for c in comments})))
    groups: dict[tuple[str, str, bool], list[int]] = {}
    for comment in sorted(comments, key=lambda c: c.statement_line):
        groups.setdefault((comment.rule_id, comment.classification, comment.breaking), []).append(
            comment.statement_line
        )
    rows = []
    for (rule, classification, breaking), lines in sorted(groups.items(), key=lambda item: -len(item[1])):
        numbers = fit_blocks([str(n) for n in lines], 600, lambda n: f"and {n} more")
        kind = classification + (", breaking" if breaking else "")
        rows.append(f"- `{rule}` ({kind}): line{'s' if len(lines) > 1 else ''} {', '.join(numbers)}")
    folder = path.rsplit("/", 1)[0]
    head = [
        marker,
        f"**zdm: {len(comments)} statements in this migration need action**: too many for a comment on each. "
        "Each is in the summary comment's table and annotated on its lines in the check run.",
        "",
    ]
    tail = [
        "",
        f"The safe plan for this file is in the summary comment; `zdm fix {folder}` writes it. Deliberate? "
        "Comment `/zdm approve <reason>` (write access).",
    ]
    room = MAX_COMMENT - sum(len(line) + 1 for line in [*head, *tail]) - 100
    kept = fit_blocks(rows, room, lambda n: f"- … {n} more rule(s): run `zdm check {folder}`")
    return cap("\n".join([*head, *kept, *tail]), MAX_COMMENT)


# -- the report --------------------------------------------------------------------------------------------------


def build_report(
    changes: Sequence[ChangedMigration],
    prisma: PrismaVersion | None,
    approvals: Sequence[Approval] = (),
    notes: Sequence[str] = (),
    comment_on_brief: bool = False,
    hazards: Sequence[Hazard] = (),
    *,
    accept: str = ACCEPT,
    by_hand: str = BY_HAND,
    preamble: Sequence[str] = (),
) -> PullRequestReport:
    """`hazards`: what the pull request does to its roots' history (`bot.analysis.history`); those at severity
    error fail the check like flagged statements, and `/zdm approve` covers them the same way.

    `accept` and `by_hand` replace the verdict's ways out (see `_verdict`), and `preamble` comes right after the
    verdict in the check run's summary: a merge group has no conversation to comment in."""
    annotations: list[Annotation] = _hazard_annotations(hazards)
    comments: list[InlineComment] = []
    plans: dict[str, FilePlan] = {}
    for change in changes:
        result = change.result
        plan = plan_file(change.name, result, prisma)
        plans[change.path] = plan
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
        for index, statement in enumerate(result.statements):
            shown = _shown(statement)
            if not shown or not (comment_on_brief or _needs_action(shown)):
                continue
            digest = statement_digest(statement, [f.rule_id for f in shown])
            position = _comment_lines(change, statement)
            if position is None:
                continue
            primary = _primary(shown)
            comments.append(
                InlineComment(
                    change.path,
                    position[0],
                    position[1],
                    _inline_body(change, index, shown, digest, plan, prisma, position),
                    digest,
                    statement.line_start,
                    max((f.classification for f in shown), key=lambda c: c.rank).value,
                    primary.rule_id,
                    any(f.breaking for f in shown),
                )
            )
    statements, flagged = _flagged(changes)
    flagged = [*_hazard_flags(hazards), *flagged]
    unapproved = tuple(f for f in flagged if not any(a.covers(f) for a in approvals))
    used = tuple(a for a in approvals if any(a.covers(f) for f in flagged))
    verdict = _verdict(
        changes,
        plans,
        statements,
        flagged,
        unapproved,
        used,
        bool(approvals),
        accept=accept,
        by_hand=by_hand,
        hazards=hazards,
    )
    return PullRequestReport(
        "failure" if unapproved else "success",
        _clip(_title(changes, flagged, unapproved, hazards), MAX_TITLE),
        _check_summary(changes, verdict, unapproved, used, notes, bool(approvals), hazards, preamble),
        tuple(annotations),
        tuple(comments),
        _summary_comment(changes, plans, prisma, verdict, used, notes, hazards),
        tuple(flagged),
        unapproved,
        used,
    )


def job_summary(
    changes: Sequence[ChangedMigration], notes: Sequence[str] = (), hazards: Sequence[Hazard] = ()
) -> str:
    """The summary comment's verdict, table, plans and checklist for a workflow's job summary (`zdm check` in
    GitHub Actions, without the App): there a statement is accepted with `-- zdm:ignore`, not `/zdm approve`.
    Each file is planned for its own root's Prisma version."""
    if not changes and not hazards:
        return "\n".join(["### zdm: no Prisma migration for PostgreSQL to check", *(f"- {n}" for n in notes)])
    versions = {c.result.prisma_version for c in changes}
    prisma = PrismaVersion.parse(versions.pop() or "") if len(versions) == 1 else None
    plans = {
        c.path: plan_file(c.name, c.result, PrismaVersion.parse(c.result.prisma_version or ""))
        for c in changes
    }
    statements, flagged = _flagged(changes)
    flagged = [*_hazard_flags(hazards), *flagged]
    verdict = _verdict(
        changes,
        plans,
        statements,
        flagged,
        tuple(flagged),
        (),
        False,
        accept="put `-- zdm:ignore <rule-id> <reason>` above a statement to accept it as it is.",
        by_hand="Change them by hand (see the annotations)",
        hazards=hazards,
        accept_history="set the rule's severity in `.github/zdm.yml` to accept it.",
    )
    summary = _summary_comment(changes, plans, prisma, verdict, (), notes, hazards)
    return summary.removeprefix(SUMMARY_MARKER + "\n")


def hazard_digest(hazard: Hazard) -> str:
    """What an approval of the hazard covers: its rule, its path and the content it judged."""
    return _short_digest(f"history\n{hazard.rule_id}\n{hazard.path}\n{hazard.content_digest}")


def _hazard_flags(hazards: Sequence[Hazard]) -> list[Flagged]:
    return [
        Flagged(hazard_digest(h), h.path, h.line or 1, h.line or 1, (h.rule_id,), "")
        for h in hazards
        if h.fails_check
    ]


def _hazard_annotations(hazards: Sequence[Hazard]) -> list[Annotation]:
    """Hazards on a file that exists at head, on their line (the others are in the summary only)."""
    return [
        Annotation(
            h.path,
            h.line,
            h.line,
            "failure" if h.fails_check else "warning",
            f"zdm {h.rule_id}",
            f"{h.message}\nFix: {h.fix}",
        )
        for h in hazards
        if h.line is not None
    ]


def _history_section(hazards: Sequence[Hazard], budget: int) -> list[str]:
    """Each hazard with its fix: a section of its own, since they concern the change as a whole."""
    if not hazards:
        return []
    blocks = []
    for h in hazards:
        where = f"`{h.path}`" + (f" line {h.line}" if h.line else "")
        blocks.append(
            f"- **`{h.rule_id}`** ({h.severity.value}) on {where}: {_clip(h.message, 1_500)}\n"
            f"  **Fix:** {_clip(h.fix, 1_000)}"
        )
    return ["", "#### The migration history", "", *_listed(blocks, budget)]


def _shown(statement: StatementResult) -> list[Finding]:
    """The findings said on a pull request: not suppressed, not mere notes."""
    return [f for f in statement.findings if not f.suppressed and level(f) != "note"]


def _flagged(
    changes: Sequence[ChangedMigration],
) -> tuple[dict[tuple[str, int], StatementResult], list[Flagged]]:
    """The statements with something to say, by (path, first line); and what fails the check, in file order."""
    statements: dict[tuple[str, int], StatementResult] = {}
    flagged: list[Flagged] = []
    for change in changes:
        for statement in change.result.statements:
            shown = _shown(statement)
            if not shown:
                continue
            statements[(change.path, statement.line_start)] = statement
            if statement.fails_check:
                flagged.append(
                    Flagged(
                        statement_digest(statement, [f.rule_id for f in shown]),
                        change.path,
                        statement.line_start,
                        statement.line_end,
                        tuple(sorted({f.rule_id for f in statement.findings if f.fails_check})),
                        statement.sql,
                    )
                )
        for finding in change.result.file_findings:
            if finding.fails_check:
                digest = _short_digest(f"{change.path}\n{finding.rule_id}")
                flagged.append(Flagged(digest, change.path, 1, 1, (finding.rule_id,), ""))
    return statements, flagged


def _title(
    changes: Sequence[ChangedMigration],
    flagged: list[Flagged],
    unapproved: tuple[Flagged, ...],
    hazards: Sequence[Hazard] = (),
) -> str:
    if not changes:
        if not hazards:
            return "No migration changes"
        if unapproved:
            return f"{len(unapproved)} problem(s) with the migration history"
        return (
            "Migration history: nothing blocks"
            if not flagged
            else f"{len(flagged)} history problem(s) approved"
        )
    statements = sum(len(c.result.statements) for c in changes)
    if unapproved:
        history = {hazard_digest(h) for h in hazards}
        pending_history = sum(1 for f in unapproved if f.digest in history)
        pending = len(unapproved) - pending_history
        parts = [f"{pending} statement(s) need attention in {len(changes)} migration(s)"] if pending else []
        if pending_history:
            parts.append(f"{pending_history} problem(s) with the migration history")
        return "; ".join(parts)
    if flagged:
        return f"{len(flagged)} flagged statement(s) approved"
    return f"{statements} statement(s) in {len(changes)} migration(s): nothing blocks"


def _names(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(f"`{item}`" for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _verdict(
    changes: Sequence[ChangedMigration],
    plans: dict[str, FilePlan],
    statements: dict[tuple[str, int], StatementResult],
    flagged: list[Flagged],
    unapproved: tuple[Flagged, ...],
    used: Sequence[Approval],
    approved_before: bool,
    *,
    accept: str = ACCEPT,
    by_hand: str = BY_HAND,
    hazards: Sequence[Hazard] = (),
    accept_history: str = "",
) -> list[str]:
    """At most three lines, the first the verdict, the second what to do (`accept`: how to accept them as they
    are; `by_hand`: where to read what to change). Problems with the migration history (`hazards`) come first:
    their fix is in the section below the verdict."""
    if not changes and not hazards:
        return ["This pull request changes no Prisma migration for PostgreSQL."]
    history = {hazard_digest(h): h for h in hazards if h.fails_check}
    pending_history = [history[f.digest] for f in unapproved if f.digest in history]
    unapproved = tuple(f for f in unapproved if f.digest not in history)
    if pending_history:
        rules = ", ".join(f"`{r}`" for r in dict.fromkeys(h.rule_id for h in pending_history))
        first = f"{len(pending_history)} problem(s) with the migration history ({rules})"
        if approved_before:
            first += " (new or changed since the last approval)"
        rest = _verdict(
            changes,
            plans,
            statements,
            flagged,
            unapproved,
            used,
            approved_before,
            accept=accept,
            by_hand=by_hand,
        )
        if not unapproved:
            return [first + ".", f"Fix them as the section below says, or {accept_history or accept}"]
        return [f"{first}; {rest[0][0].lower()}{rest[0][1:]}", *rest[1:]]
    if not changes:
        approvers = ", ".join(dict.fromkeys(f"@{a.approver}" for a in used))
        return (
            [f"{len(history)} problem(s) with the migration history approved by {approvers}."]
            if history
            else ["Nothing blocks in the migration history."]
        )
    if not unapproved:
        if flagged:
            approvers = ", ".join(dict.fromkeys(f"@{a.approver}" for a in used))
            return [f"{len(flagged)} flagged statement(s) approved by {approvers}: nothing else blocks."]
        total = sum(len(c.result.statements) for c in changes)
        return [f"{total} statement(s) in {len(changes)} migration(s): nothing blocks."]
    write_blocked: list[str] = []
    read_blocked: set[str] = set()
    lock_count = unknown = failing_deploy = other = 0
    for item in unapproved:
        statement = statements.get((item.path, item.line_start)) if item.sql else None
        if statement is None:
            other += 1
        elif statement.classification is Classification.UNKNOWN:
            unknown += 1
        elif statement.classification is Classification.BLOCKING:
            lock_count += 1
            # A backfill's row locks block the writers of every row it touches, under a weak table lock.
            rows_only = not any(mode.blocks_writes for mode in statement.locks.values())
            for table, mode in sorted(statement.locks.items()):
                if (mode.blocks_writes or rows_only) and table not in write_blocked:
                    write_blocked.append(table)
                if mode.blocks_reads:
                    read_blocked.add(table)
        elif any(f.fails_migration for f in statement.findings):
            failing_deploy += 1
        else:
            other += 1
    parts = []
    if lock_count:
        verb = "blocks" if lock_count == 1 else "block"
        if len(read_blocked) == len(write_blocked):
            parts.append(f"{lock_count} {verb} reads and writes on {_names(write_blocked)}")
        else:
            reads = f", and reads on {len(read_blocked)} of them" if read_blocked else ""
            parts.append(f"{lock_count} {verb} writes on {_names(write_blocked)}{reads}")
    if unknown:
        parts.append(f"{unknown} zdm cannot read (review by hand)")
    if failing_deploy:
        parts.append(f"{failing_deploy} make `prisma migrate deploy` fail")
    if other:
        parts.append(f"{other} other finding(s)")
    count = len(unapproved)
    if len(parts) == 1 and lock_count:
        first = f"{count} statement{'s' if count > 1 else ''} {parts[0].split(' ', 1)[1]}"
    else:
        first = f"{count} statement{'s' if count > 1 else ''} need attention: " + "; ".join(parts)
    if approved_before:
        first += " (new or changed since the last approval)"
    fixable = list(
        dict.fromkeys(
            c.folder
            for c in changes
            if plans[c.path].changes_anything and any(f.path == c.path for f in unapproved)
        )
    )
    if len(fixable) == 1:
        second = f"Run `zdm fix {fixable[0]}` to write the safe plan, or {accept}"
    elif fixable:
        second = f"Run `zdm fix` on each of {_names(fixable, 3)} to write the safe plans, or {accept}"
    else:
        second = f"{by_hand}, or {accept}"
    return [first + ".", second]


def _statement_table(changes: Sequence[ChangedMigration]) -> tuple[list[str], list[tuple[bool, str]], str]:
    """The table's header; its rows (statements that lock, break or have a finding), each marked when it needs
    action; and a footer."""
    header = ["| Migration | Line | Statement | Class | Locks | Rules |", "|---|---|---|---|---|---|"]
    rows = []
    quiet = 0
    for change in changes:
        for statement in change.result.statements:
            if statement.kind == "empty":
                continue
            shown = [f for f in statement.findings if not f.suppressed and level(f) != "note"]
            if statement.classification is Classification.SAFE and not statement.breaking and not shown:
                quiet += 1
                continue
            first = _clip(" ".join(normalised_sql(statement.sql).split()[:6]), 80)
            rules = ", ".join(f"`{r}`" for r in statement.rule_ids) or "-"
            cls = statement.classification.value
            if statement.breaking:
                cls += ", breaking"
            row = (
                f"| `{change.name}` | {statement.line_start} | `{_cell(first)}` | {cls} "
                f"| {_cell(_clip(_locks(statement), 300))} | {rules} |"
            )
            rows.append((_needs_action(shown), row))
    footer = f"{quiet} safe statement(s) with nothing to report are not listed." if quiet else ""
    return header, rows, footer


def _table(changes: Sequence[ChangedMigration], budget: int) -> str:
    """The table in file order; when it does not fit, the statements needing action keep their rows first."""
    header, rows, footer = _statement_table(changes)
    if not rows:
        return footer
    room = budget - sum(len(line) + 1 for line in [*header, footer])
    ordered = [row for _, row in rows]
    if sum(len(row) + 1 for row in ordered) > room:
        ordered = [row for action, row in rows if action] + [row for action, row in rows if not action]
    kept = fit_blocks(
        ordered, room, lambda n: f"\n… {n} more statement(s): run `zdm check` for every one of them."
    )
    return "\n".join([*header, *kept, *([""] if footer else []), *([footer] if footer else [])])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _approvals_text(used: Sequence[Approval]) -> list[str]:
    return [
        f"- Approved by @{a.approver}"
        + (f" at {a.at}" if a.at else "")
        + f": {_clip(a.reason or '(no reason)', 500)}"
        for a in used
    ]


def _listed(lines: Sequence[str], budget: int) -> list[str]:
    return fit_blocks(lines, budget, lambda n: f"- … {n} more: run `zdm check`")


def _check_summary(
    changes: Sequence[ChangedMigration],
    verdict: list[str],
    unapproved: tuple[Flagged, ...],
    used: Sequence[Approval],
    notes: Sequence[str],
    approved_before: bool,
    hazards: Sequence[Hazard] = (),
    preamble: Sequence[str] = (),
) -> str:
    head = [
        f"**{verdict[0]}**",
        *verdict[1:],
        *(["", *preamble] if preamble else []),
        *_history_section(hazards, 20_000),
    ]
    if not changes:
        return cap("\n".join(head), MAX_OUTPUT)
    after: list[str] = []
    if unapproved:
        heading = (
            "New or changed since the last approval, not covered by it"
            if approved_before
            else "Needs attention"
        )
        after += ["", f"{heading}:", ""]
        after += _listed(
            [f"- `{f.path}` line {f.line_start}: {', '.join(f.rule_ids)}" for f in unapproved], 12_000
        )
    if used:
        after += ["", *_listed(_approvals_text(used), 6_000)]
    if notes:
        after += ["", *_listed([f"- {_clip(n, 500)}" for n in notes], 4_000)]
    room = MAX_OUTPUT - sum(len(line) + 1 for line in [*head, *after]) - 200
    return cap("\n".join([*head, "", _table(changes, room), *after]), MAX_OUTPUT)


def _plan_block(change: ChangedMigration, plan: FilePlan, budget: int) -> str:
    """The file's plan, collapsed; steps that do not fit are left to `zdm fix --dry-run`."""
    opening = [
        f"<details><summary>Safe plan for <code>{change.path}</code>: {len(plan.steps)} steps "
        f"(<code>zdm fix {change.folder}</code> writes it)</summary>",
        "",
    ]
    closing = ["", "</details>"]
    room = budget - sum(len(line) + 1 for line in [*opening, *closing])
    more = f"… {{}} more step(s): `zdm fix {change.folder} --dry-run` prints the whole plan."
    steps = _plan_steps(plan)
    if room < 200 + len(more):
        return _clip(
            f"The safe plan for `{change.path}` is too long for this comment: " + more.format(len(steps)),
            budget,
        )
    return "\n".join([*opening, *fit_blocks(steps, room, more.format), *closing])


def _summary_comment(
    changes: Sequence[ChangedMigration],
    plans: dict[str, FilePlan],
    prisma: PrismaVersion | None,
    verdict: list[str],
    used: Sequence[Approval],
    notes: Sequence[str],
    hazards: Sequence[Hazard] = (),
) -> str:
    """Verdict, problems with the migration history, table, the plan of each file once, checklist. The verdict,
    history, approvals and checklist always stay; when the whole does not fit, the plans are shortened first,
    then the table."""
    head = [SUMMARY_MARKER, f"### zdm: {verdict[0]}", *verdict[1:], *_history_section(hazards, 20_000)]
    if not changes:
        tail = ["", *_listed(_approvals_text(used), 6_000)] if used else []
        return cap("\n".join([*head, *tail]), MAX_COMMENT)
    extra: list[str] = []
    if prisma is not None:
        extra += ["", f"Judged for Prisma {prisma}."]
    if used:
        extra += ["", *_listed(_approvals_text(used), 6_000)]
    if notes:
        extra += ["", *_listed([f"- {_clip(n, 500)}" for n in notes], 4_000)]
    items = checklist([c.result for c in changes], prisma, rollback_limit=_ROLLBACK_SQL_LIMIT)
    ending = ["", "### Before deploying", "", render_checklist(items)] if items else []
    room = MAX_COMMENT - sum(len(line) + 1 for line in [*head, *extra, *ending]) - 200
    with_plans = [
        (change, plans[change.path])
        for change in changes
        if plans[change.path].changes_anything and len(plans[change.path].steps) > 1
    ]
    table = _table(changes, room)
    full_plans = [_plan_block(change, plan, MAX_COMMENT) for change, plan in with_plans]
    plan_need = sum(len(block) + 2 for block in full_plans)
    if len(table) + plan_need > room:
        # The plan is what gets shortened: each file's share of what the table leaves, at least a pointer.
        least = 400 * len(with_plans)
        table = _table(changes, max(room - min(plan_need, max(least, room // 3)), 2_000))
        share = max((room - len(table)) // max(len(with_plans), 1) - 2, 0)
        full_plans = [_plan_block(change, plan, share) for change, plan in with_plans]
    body = [*head, "", table, *extra]
    for block in full_plans:
        body += ["", block]
    return cap("\n".join([*body, *ending]), MAX_COMMENT)
