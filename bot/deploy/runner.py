"""Applying the planned migrations: one session holds Prisma's advisory lock, runs every unit under a short
`lock_timeout` with retries, and keeps `_prisma_migrations` true at every commit.

Retries follow what the careful runners do (deploy-anchors: pgroll, reshape, GitLab): a lock timeout of
about half a second, then a wait that doubles up to a cap, with jitter so two deploys do not retry in step,
until a deadline. A statement that waits for its lock makes every later read or write of the table queue
behind it; with the timeout, nothing queues longer than that timeout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bot.deploy.events import Event, Reporter
from bot.deploy.history import PRISMA_ADVISORY_LOCK, MigrationRow, MigrationsTable, Progress
from bot.deploy.steps import MigrationPlan, Statement, Unit
from bot.deploy.watch import Watcher

# SQLSTATEs worth another attempt: the lock was not granted in time, or a deadlock chose this session.
_RETRYABLE = {"55P03", "40P01"}
_QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class Timing:
    lock_timeout: float = 0.5
    # How long a statement may keep trying to get its locks, all attempts together.
    deadline: float = 900.0
    first_wait: float = 0.5
    longest_wait: float = 30.0
    # How long to try to reach the database again after losing it, to write down where the deploy stopped.
    reconnect: float = 30.0
    # How long to wait for Prisma's advisory lock (another deploy running).
    advisory_lock: float = 60.0


class Outcome(Enum):
    APPLIED = "applied"
    NOTHING_TO_DO = "nothing to do"
    REFUSED = "refused by preflight"
    FAILED = "failed"
    STOPPED = "stopped"


class DeployFailed(Exception):
    """The deploy stopped; `next_step` says what to do about it."""

    def __init__(self, message: str, next_step: str, outcome: Outcome = Outcome.FAILED) -> None:
        super().__init__(message)
        self.next_step = next_step
        self.outcome = outcome


class _Stop(Exception):
    pass


class _GaveUp(Exception):
    pass


def sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None)


class Runner:
    """Applies plans through `conn` (autocommit, holding the advisory lock), watched by `watcher`."""

    def __init__(
        self,
        conn: Any,
        watcher: Watcher,
        report: Reporter,
        timing: Timing,
        connect: Callable[[], Any],
        rng: random.Random | None = None,
    ) -> None:
        self.conn = conn
        self.table = MigrationsTable(conn)
        self.watcher = watcher
        self.report = report
        self.timing = timing
        self.connect = connect
        self.rng = rng or random.Random()

    # ------------------------------------------------------------------------------------------ a migration
    def apply(self, plan: MigrationPlan, resume: MigrationRow | None) -> None:
        total = len(plan.statements)
        if resume is not None:
            progress = resume.progress
            assert progress is not None
            row_id, applied = resume.id, progress.applied
            self.report(
                Event(
                    "resume",
                    f"{plan.name}: continuing where the last run stopped ({applied} of {total} statements applied)",
                    {"migration": plan.name, "applied": applied, "statements": total},
                )
            )
        else:
            row_id = self.table.start(
                plan.name, plan.checksum, Progress(0, total, plan.digest, "running").line()
            )
            applied = 0
        self.report(
            Event(
                "migration_start",
                f"applying {plan.name}",
                {"migration": plan.name, "statements": total, "rewritten": plan.rewritten, "how": plan.how},
            )
        )
        done = 0
        try:
            for unit in plan.units:
                size = len(unit.statements)
                if done + size <= applied:
                    done += size
                    continue
                if self.watcher.stop.is_set():
                    raise _Stop
                self._unit(unit, plan, row_id, done)
                done += size
            self.table.finish(row_id)
        except _Stop:
            self._stopped(plan, row_id, done, f"stopped by {self.watcher.stop_reason}", Outcome.STOPPED)
        except _GaveUp as gave_up:
            self._stopped(plan, row_id, done, str(gave_up), Outcome.FAILED)
        except Exception as error:
            if _connection_lost(self.conn, error):
                self._lost(plan, row_id, done, error)
            self._failed(plan, row_id, done, error)
        self.report(Event("migration_applied", f"{plan.name}: applied", {"migration": plan.name}))

    # ------------------------------------------------------------------------------------------ a unit
    def _unit(self, unit: Unit, plan: MigrationPlan, row_id: str, done: int) -> None:
        after = Progress(done + len(unit.statements), len(plan.statements), plan.digest, "running").line()
        if not unit.transaction:
            self._alone(unit.statements[0], plan, row_id, after)
            return
        guarded = any(s.guarded for s in unit.statements)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.conn.transaction():
                    self._set_lock_timeout(guarded, local=True)
                    for statement in unit.statements:
                        self._execute(statement)
                    self.table.record_progress(row_id, after)
                return
            except Exception as error:
                if sqlstate(error) not in _RETRYABLE:
                    raise
                self._wait_before_retry(unit.statements, started, attempt, error)

    def _alone(self, statement: Statement, plan: MigrationPlan, row_id: str, after: str) -> None:
        """A statement that refuses a transaction block, run the way the guide runs one by hand."""
        if statement.builds_index:
            state = self._index_state(statement.builds_index)
            if state == "valid":
                # Built by an earlier run that stopped before writing it down.
                self.report(Event("skip", f"  index {statement.builds_index} is already built and valid"))
                self.table.record_progress(row_id, after)
                return
            if state == "invalid":
                self._drop_invalid(statement.builds_index, "left INVALID by an earlier attempt")
        if statement.drops_index and self._index_state(statement.drops_index) == "missing":
            self.report(Event("skip", f"  index {statement.drops_index} is already gone"))
            self.table.record_progress(row_id, after)
            return
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                self._set_lock_timeout(statement.guarded, local=False)
                self._execute(statement)
                if statement.builds_index and self._index_state(statement.builds_index) != "valid":
                    raise RuntimeError(f"index {statement.builds_index} was built but is not valid")
                self.table.record_progress(row_id, after)
                return
            except Exception as error:
                if statement.builds_index and not _connection_lost(self.conn, error):
                    self._drop_invalid(statement.builds_index, "left by the failed build")
                if sqlstate(error) not in _RETRYABLE:
                    raise
                self._wait_before_retry((statement,), started, attempt, error)

    def _execute(self, statement: Statement) -> None:
        with self.watcher.watching(statement.sql, statement.builds_index is not None):
            if self.watcher.stop.is_set():
                raise _Stop
            started = time.monotonic()
            try:
                self.conn.execute(statement.sql.encode())
            except Exception as error:
                if sqlstate(error) == _QUERY_CANCELED and self.watcher.stop.is_set():
                    raise _Stop from error
                raise
            took = time.monotonic() - started
        self.report(
            Event(
                "statement",
                f"  line {statement.line}: {_first_line(statement.sql)} ({took:.2f} s)",
                {"line": statement.line, "sql": statement.sql, "seconds": round(took, 3)},
            )
        )

    def _set_lock_timeout(self, guarded: bool, *, local: bool) -> None:
        # CONCURRENTLY waits only for locks no read or write queues behind: it may wait as long as it needs.
        milliseconds = int(self.timing.lock_timeout * 1000) if guarded else 0
        self.conn.execute(f"SET {'LOCAL ' if local else ''}lock_timeout = {milliseconds}".encode())

    def _wait_before_retry(
        self, statements: Sequence[Statement], started: float, attempt: int, error: BaseException
    ) -> None:
        elapsed = time.monotonic() - started
        wait = min(self.timing.longest_wait, self.timing.first_wait * 2 ** (attempt - 1))
        wait = self.rng.uniform(wait / 2, wait)
        blockers = self.watcher.blockers
        who = (
            "; ".join(b.describe() for b in blockers)
            if blockers
            else "a session that let go before it could be named"
        )
        what = "deadlock" if sqlstate(error) == "40P01" else f"no lock within {self.timing.lock_timeout:g} s"
        lines = ", ".join(str(s.line) for s in statements)
        if elapsed + wait > self.timing.deadline:
            raise _GaveUp(
                f"gave up on line {lines} after {attempt} attempts over {elapsed:.0f} s ({what}); "
                f"last blocked by {who}"
            )
        self.report(
            Event(
                "retry",
                f"  line {lines}: {what} (attempt {attempt}, {elapsed:.1f} s so far)"
                + ("" if blockers and self.watcher.named else f", blocked by {who}")
                + f"; next attempt in {wait:.1f} s",
                {
                    "lines": [s.line for s in statements],
                    "attempt": attempt,
                    "wait_seconds": round(wait, 3),
                    "elapsed_seconds": round(elapsed, 3),
                    "blockers": [b.__dict__ for b in blockers],
                },
            )
        )
        if not self.watcher.sleep(wait):
            raise _Stop

    # ------------------------------------------------------------------------------------------ indexes
    def _index_state(self, name: str, conn: Any | None = None) -> str:
        row = (
            (conn or self.conn)
            .execute(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (_regclass(name),)
            )
            .fetchone()
        )
        if row is None:
            return "missing"
        return "valid" if row[0] else "invalid"

    def _drop_invalid(self, name: str, why: str, conn: Any | None = None) -> None:
        conn = conn or self.conn
        if self._index_state(name, conn) != "invalid":
            return
        conn.execute(b"SET lock_timeout = 0")
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_regclass(name)}".encode())
        self.report(Event("cleanup", f"  dropped the INVALID index {name} ({why})", {"index": name}))

    # ------------------------------------------------------------------------------------------ stopping
    def _stopped(self, plan: MigrationPlan, row_id: str, done: int, why: str, outcome: Outcome) -> None:
        total = len(plan.statements)
        self.table.fail(row_id, _logs(why, done, total, plan, "stopped"))
        raise DeployFailed(
            f"{plan.name}: {why}; {_applied_words(done, total)}",
            _next_step(plan, done),
            outcome,
        )

    def _failed(self, plan: MigrationPlan, row_id: str, done: int, error: BaseException) -> None:
        total = len(plan.statements)
        message = str(error).strip() or type(error).__name__
        state = sqlstate(error)
        why = f"failed{f' (SQLSTATE {state})' if state else ''}: {message}"
        self.table.fail(row_id, _logs(why, done, total, plan, "failed"))
        raise DeployFailed(f"{plan.name}: {why}; {_applied_words(done, total)}", _next_step(plan, done))

    def _lost(self, plan: MigrationPlan, row_id: str, done: int, error: BaseException) -> None:
        """The connection went (a restart, a network cut): what the server committed stands, the running
        statement was rolled back. Reach it again to write that down and clean up an INVALID index."""
        total = len(plan.statements)
        why = f"lost the connection to the database ({str(error).strip().splitlines()[0] if str(error).strip() else 'closed'})"
        until = time.monotonic() + self.timing.reconnect
        recorded = False
        while time.monotonic() < until and not recorded:
            try:
                with self.connect() as conn:
                    table = MigrationsTable(conn)
                    rows = {row.id: row for row in table.rows()}
                    row = rows.get(row_id)
                    committed = row.progress.applied if row is not None and row.progress else done
                    index = _statement_at(plan, committed)
                    if index is not None and index.builds_index:
                        self._drop_invalid(index.builds_index, "left by the interrupted build", conn)
                    if row is not None:
                        table.fail(row_id, _logs(why, committed, total, plan, "stopped"))
                    done = committed
                    recorded = True
            except Exception:
                time.sleep(1.0)
        note = "" if recorded else " (zdm could not reach the database again to write this down)"
        raise DeployFailed(f"{plan.name}: {why}; {_applied_words(done, total)}{note}", _next_step(plan, done))


def take_advisory_lock(conn: Any, timing: Timing, report: Reporter) -> None:
    """Prisma's lock, on this session for the whole deploy: `prisma migrate deploy` waits for it and the other
    way round. Another holder is named while zdm waits."""
    started = time.monotonic()
    named = False
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,)).fetchone()
        if row and row[0]:
            return
        if not named:
            holder = conn.execute(
                "SELECT a.pid, coalesce(a.application_name, ''), left(coalesce(a.query, ''), 100) FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = %s"
                " AND l.granted",
                (PRISMA_ADVISORY_LOCK,),
            ).fetchone()
            who = (
                f"pid {holder[0]} ({holder[1] or 'no application name'}: {holder[2]})"
                if holder
                else "another session"
            )
            report(
                Event("advisory_lock", f"another migration run holds Prisma's migration lock: {who}; waiting")
            )
            named = True
        if time.monotonic() - started > timing.advisory_lock:
            raise DeployFailed(
                f"Prisma's migration lock (pg_advisory_lock({PRISMA_ADVISORY_LOCK})) stayed taken for "
                f"{timing.advisory_lock:.0f} s: another `prisma migrate deploy` or `zdm deploy` is running",
                "wait for it to finish, then run `zdm deploy` again",
            )
        time.sleep(0.5)


_CONNECTION_GONE = {None, "57P01", "57P02", "57P03", "08000", "08003", "08006"}


def _connection_lost(conn: Any, error: BaseException) -> bool:
    """The session is gone (a restart, a terminated backend, a cut network), not a statement that failed."""
    if getattr(conn, "closed", False):
        return True
    return (
        type(error).__name__ in ("OperationalError", "InterfaceError") and sqlstate(error) in _CONNECTION_GONE
    )


def _statement_at(plan: MigrationPlan, index: int) -> Statement | None:
    statements = plan.statements
    return statements[index] if 0 <= index < len(statements) else None


def _logs(why: str, done: int, total: int, plan: MigrationPlan, state: str) -> str:
    return (
        f"zdm deploy {why}.\n{_applied_words(done, total).capitalize()}.\n"
        + Progress(done, total, plan.digest, state).line()
    )


def _applied_words(done: int, total: int) -> str:
    if done == 0:
        return f"none of its {total} statements is applied"
    if done == total:
        return f"all {total} statements are applied"
    return f"its first {done} of {total} statements are applied, the rest are not"


def _next_step(plan: MigrationPlan, done: int) -> str:
    again = f"run `zdm deploy` again: it continues {plan.name} from statement {done + 1}"
    if done == 0:
        return (
            f"{again}; or, to run it with Prisma instead, `prisma migrate resolve --rolled-back {plan.name}` "
            "then `prisma migrate deploy`"
        )
    return (
        f"{again}. To go back instead, undo the applied statements (the rollback plan of `zdm deploy --dry-run`), "
        f"then `prisma migrate resolve --rolled-back {plan.name}`"
    )


def _first_line(sql: str) -> str:
    line = " ".join(sql.split())
    return line if len(line) <= 90 else line[:87] + "..."


def _regclass(name: str) -> str:
    # Prisma's index names are written quoted; to_regclass and DROP INDEX take them the same way.
    return name if name.startswith('"') else '"' + name.replace('"', '""') + '"'
