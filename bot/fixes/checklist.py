"""The pre-deployment checklist, tailored to what a change does, with the queries to watch it run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.analysis.lock_time import human_band
from bot.analysis.model import Classification, FileResult
from bot.analysis.prisma import PrismaVersion
from bot.analysis.rollback import RollbackStep

ACTIVE_TRANSACTIONS = """SELECT pid, now() - xact_start AS running_for, state, left(query, 80) AS query
FROM pg_stat_activity
WHERE datname = current_database() AND xact_start IS NOT NULL
ORDER BY xact_start
LIMIT 20;"""

BLOCKED_QUERIES = """SELECT blocked.pid, left(blocked.query, 60) AS waiting, blocking.pid AS blocker, left(blocking.query, 60) AS holding
FROM pg_stat_activity blocked
JOIN pg_stat_activity blocking ON blocking.pid = ANY(pg_blocking_pids(blocked.pid))
WHERE blocked.datname = current_database();"""

INDEX_PROGRESS = """SELECT pid, relid::regclass AS table_name, phase, blocks_done, blocks_total, tuples_done, tuples_total
FROM pg_stat_progress_create_index;"""

TABLE_SIZES = """SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) AS size
FROM pg_stat_user_tables WHERE relname IN ({tables});"""


# The steps that cannot be undone an item names; the SQL marks every one of them.
_NAMED_IRREVERSIBLE = 3


@dataclass(frozen=True)
class ChecklistItem:
    text: str
    query: str = ""
    # What the collapsed block holding `query` is called.
    label: str = "query"


def checklist(
    files: Sequence[FileResult], prisma: PrismaVersion | None = None, rollback_limit: int | None = None
) -> list[ChecklistItem]:
    """`rollback_limit`: the most characters of rollback SQL to give (a comment's limit); the steps past it are
    counted, and left to `zdm check --format json`."""
    statements = [s for f in files for s in f.statements]
    blocking = [s for s in statements if s.classification is Classification.BLOCKING]
    locking = [s for s in statements if any(m.blocks_writes for m in s.locks.values())]
    breaking = [s for s in statements if s.breaking]
    builds_index = any("INDEX" in s.sql.upper() and s.scans for s in statements)
    items: list[ChecklistItem] = []
    estimated = [s for s in blocking if s.lock_time is not None]
    unestimated = [s for s in blocking if s.lock_time is None]
    if estimated:
        low = sum(s.lock_time.low for s in estimated if s.lock_time)
        high = sum(s.lock_time.high for s in estimated if s.lock_time)
        # Several files: each line is said with its file.
        where = {id(s): f"{f.path} " if len(files) > 1 else "" for f in files for s in f.statements}
        each = "; ".join(
            f"{where[id(s)]}line {s.line_start} {s.lock_time.describe()}" for s in estimated if s.lock_time
        )
        total = f" In all about {human_band(low, high)} of blocking locks." if len(estimated) > 1 else ""
        items.append(
            ChecklistItem(
                f"Plan for the time under lock, estimated from the table sizes `zdm stats` recorded: {each}.{total} "
                "(A band for a warm cache; a cold cache or a busier server takes longer.)"
            )
        )
    if unestimated:
        tables = sorted({t for s in unestimated for t in (*s.locks, *s.rewrites, *s.scans)})
        names = ", ".join(f"'{t.rsplit('.', 1)[-1]}'" for t in tables)
        items.append(
            ChecklistItem(
                f"Estimate the migration time on production-sized data: {len(unestimated)} statement(s) hold a "
                f"blocking lock for as long as they read {', '.join(tables)}.",
                TABLE_SIZES.format(tables=names),
            )
        )
    if locking:
        items.append(
            ChecklistItem(
                "Check active connections and long transactions just before deploying: every lock above waits "
                "behind them, and blocks the queries queued after it.",
                ACTIVE_TRANSACTIONS,
            )
        )
        items.append(
            ChecklistItem(
                "Or let `zdm deploy` (in place of `prisma migrate deploy`) do this and what follows: it asks these "
                "questions itself before the first lock, waits for each lock under a short `lock_timeout` and "
                "retries, builds indexes CONCURRENTLY, and records each migration as Prisma does "
                "(`zdm deploy --dry-run` shows the plan and its rollback)."
            )
        )
    if breaking:
        items.append(
            ChecklistItem(
                f"Verify a recent backup (or point-in-time recovery) is restorable: {len(breaking)} statement(s) drop "
                "or rename data the running code uses."
            )
        )
    if locking or breaking:
        items.append(_rollback(files, prisma, rollback_limit))
    if locking:
        query = INDEX_PROGRESS if builds_index else BLOCKED_QUERIES
        items.append(ChecklistItem("Monitor locks and progress while it runs.", query))
    if blocking or breaking:
        items.append(
            ChecklistItem(
                "Tell the team when it runs: expect slow or failing requests on the tables above meanwhile."
            )
        )
    return items


def _rollback(files: Sequence[FileResult], prisma: PrismaVersion | None, limit: int | None) -> ChecklistItem:
    """The SQL that undoes the change, newest statement first, and what no SQL undoes; with what Prisma needs
    after a failed deploy."""
    plans = [(file.path, file.rollback) for file in files if file.rollback is not None]
    known = len(plans) == len(files)
    if prisma is None or not prisma.splits_statements:
        recover = (
            "A failed migration blocks later deploys (P3009) until `npx prisma migrate resolve` marks it."
        )
    elif known:
        recover = (
            "Prisma 7.4+ applies statements one by one: after a failure half-way, run the steps of the lines "
            "that were applied, then `npx prisma migrate resolve --rolled-back <migration>`."
        )
    else:
        recover = (
            "Prisma 7.4+ applies statements one by one: a failure half-way leaves the earlier ones applied; "
            "recover with `npx prisma migrate resolve --rolled-back <migration>` after undoing them by hand."
        )
    if not known:
        return ChecklistItem(f"Write down the rollback plan. {recover}")
    several = len(plans) > 1
    # Later migrations are undone first.
    undoing = [(path, plan) for path, plan in reversed(plans) if plan.steps]
    if not undoing:
        return ChecklistItem(f"Rollback: nothing this change does needs undoing. {recover}")
    pieces: list[str | RollbackStep] = []
    for number, (path, plan) in enumerate(undoing):
        if several:
            pieces += [*([""] if number else []), f"-- {path}"]
        pieces += plan.steps
    script = _within(pieces, limit)
    concurrently = any(step.outside_transaction for _, plan in undoing for step in plan.steps)
    text = "Rollback: to undo the deploy, run the rollback SQL below, newest statement first" + (
        " (each `CONCURRENTLY` statement outside a transaction)." if concurrently else "."
    )
    lost = [(path if several else "", step) for path, plan in undoing for step in plan.irreversible]
    if lost:
        named = "; ".join(_irreversible(path, step) for path, step in lost[:_NAMED_IRREVERSIBLE])
        more = len(lost) - _NAMED_IRREVERSIBLE
        text += f" Cannot be undone: {named}" + (
            f"; and {more} more, marked in the rollback SQL." if more > 0 else "."
        )
    return ChecklistItem(f"{text} {recover}", script, label="rollback SQL")


def _within(pieces: Sequence[str | RollbackStep], limit: int | None) -> str:
    """The steps (and the lines between them) that fit in `limit` characters, then how many were left out."""
    lines: list[str] = []
    size = 0
    for index, piece in enumerate(pieces):
        text = piece.script() if isinstance(piece, RollbackStep) else piece
        if limit is not None and size + len(text) + 1 > limit:
            left = sum(1 for rest in pieces[index:] if isinstance(rest, RollbackStep))
            lines.append(
                f'-- … {left} more step(s): `zdm check --format json` gives them all, under "rollback"'
            )
            break
        lines.append(text)
        size += len(text) + 1
    return "\n".join(lines)


def _irreversible(path: str, step: RollbackStep) -> str:
    return f"line {step.line}{f' of {path}' if path else ''} ({step.reason})"


def render_checklist(items: Sequence[ChecklistItem], markdown: bool = True) -> str:
    """As GitHub task-list items with each query in a collapsed block, or as plain text for a terminal."""
    lines = []
    for item in items:
        lines.append(f"- [ ] {item.text}")
        if item.query and markdown:
            lines.append(
                f"  <details><summary>{item.label}</summary>\n\n  ```sql\n{item.query}\n  ```\n  </details>"
            )
        elif item.query:
            lines.extend(("      " + line).rstrip() for line in item.query.splitlines())
    return "\n".join(lines)
