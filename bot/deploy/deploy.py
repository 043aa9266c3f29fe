"""`zdm deploy` from start to end: find the root, read Prisma's record, plan, ask the preflight, apply."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.analysis.config import RepoConfig
from bot.analysis.prisma import PrismaVersion, detect_version
from bot.analysis.roots import MigrationRoot, analyze_root, find_roots
from bot.deploy.database_url import DatabaseTarget
from bot.deploy.events import Event, Reporter
from bot.deploy.history import MigrationRow, MigrationsTable, same_script
from bot.deploy.preflight import Preflight, run_preflight
from bot.deploy.runner import DeployFailed, Outcome, Runner, Timing, take_advisory_lock
from bot.deploy.steps import MigrationPlan, plan_migration
from bot.deploy.watch import Watcher


class DeployUsageError(ValueError):
    """The command cannot start: which root, which database."""


@dataclass(frozen=True)
class DeployOptions:
    timing: Timing = field(default_factory=Timing)
    dry_run: bool = False
    # Run every migration as written (each statement still under lock_timeout), not zdm fix's rewrite.
    as_written: bool = False
    allow_blocking: bool = False
    long_transaction_seconds: float = 60.0


@dataclass
class DeployResult:
    outcome: Outcome
    plans: list[MigrationPlan] = field(default_factory=list)
    preflight: Preflight | None = None
    message: str = ""
    next_step: str = ""
    warnings: list[str] = field(default_factory=list)


def migration_root(path: Path) -> MigrationRoot:
    roots = [r for r in find_roots(path) if r.provider == "postgresql"]
    if not roots:
        raise DeployUsageError(f"no PostgreSQL migration root under {path} (looked for migration_lock.toml)")
    if len(roots) > 1:
        listed = ", ".join(str(r.path) for r in roots)
        raise DeployUsageError(
            f"{len(roots)} migration roots under {path} ({listed}): name the one to deploy"
        )
    return roots[0]


def connect(target: DatabaseTarget, application: str = "zdm deploy") -> Any:
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise DeployUsageError("zdm deploy needs psycopg: pip install 'zdm[db]'") from error
    conn = psycopg.connect(target.conninfo, autocommit=True, application_name=application, connect_timeout=10)
    conn.execute(b"SET statement_timeout = 0")
    conn.execute(b"SET idle_in_transaction_session_timeout = 0")
    if conn.info.server_version >= 140000:
        # A deploy killed mid-statement: the server notices the client is gone within a second and stops the
        # statement (an index build would otherwise run on, holding Prisma's lock, with nobody to record it).
        conn.execute(b"SET client_connection_check_interval = 1000")
    return conn


@dataclass(frozen=True)
class _History:
    pending: list[Path]
    resume: dict[str, MigrationRow]
    problems: list[str]
    warnings: list[str]


def _read_history(root: MigrationRoot, rows: list[MigrationRow]) -> _History:
    """Prisma's rules: a failed row blocks everything (P3009) unless zdm knows exactly how far it got; a
    migration is pending when no row for it is applied or running."""
    by_name: dict[str, list[MigrationRow]] = {}
    for row in rows:
        by_name.setdefault(row.migration_name, []).append(row)
    on_disk = {sql.parent.name: sql for sql in root.migrations}
    pending: list[Path] = []
    resume: dict[str, MigrationRow] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for row in rows:
        if not row.failed:
            continue
        progress = row.progress
        sql = on_disk.get(row.migration_name)
        if progress is None:
            problems.append(
                f"{row.migration_name} failed and is not resolved (Prisma's P3009): `prisma migrate resolve "
                f"--rolled-back {row.migration_name}` once nothing of it is applied, or `--applied` once all is"
            )
        elif sql is None or not same_script(row.checksum, sql.read_bytes()):
            problems.append(
                f"{row.migration_name} stopped half-way under zdm deploy ({progress.applied} of "
                f"{progress.statements} statements applied) and its migration.sql has changed since: finish or "
                "undo those statements by hand, then `prisma migrate resolve`"
            )
        else:
            resume[row.migration_name] = row
    for name, sql in on_disk.items():
        applied = [r for r in by_name.get(name, []) if r.applied]
        if applied:
            if not any(same_script(r.checksum, sql.read_bytes()) for r in applied):
                warnings.append(
                    f"{name} was edited after it was applied (its checksum differs from the recorded one); "
                    "Prisma's `migrate deploy` carries on, and so does zdm"
                )
            continue
        if name in resume or not any(r.failed for r in by_name.get(name, [])):
            pending.append(sql)
    return _History(pending, resume, problems, warnings)


def _plan_changes(plans: list[MigrationPlan], resume: dict[str, MigrationRow]) -> list[str]:
    """A stopped migration continues only as it was planned: the progress counts those statements."""
    problems = []
    for plan in plans:
        row = resume.get(plan.name)
        progress = row.progress if row is not None else None
        if progress is not None and progress.plan != plan.digest:
            problems.append(
                f"{plan.name} stopped half-way under zdm deploy ({progress.applied} of {progress.statements} "
                "statements applied), planned otherwise than zdm plans it now (another zdm version, or "
                "--as-written given or left out): run it as the stopped run did, or finish or undo those "
                "statements by hand, then `prisma migrate resolve`"
            )
    return problems


def _config(repo: Path, conninfo: str, server_version: int, prisma: PrismaVersion | None) -> RepoConfig:
    from bot.analysis.config import ConfigError, load_config
    from bot.stats import read_table_sizes

    try:
        config = load_config(repo)
    except ConfigError as error:
        raise DeployUsageError(str(error)) from None
    # The sizes of the database being migrated, read now: they decide which lock is long.
    return dataclasses.replace(
        config,
        tables=read_table_sizes(conninfo),
        table_rows={},
        postgres_version=min(max(server_version // 10000, 11), 18),
        prisma_version=config.prisma_version or (str(prisma) if prisma else None),
    )


def _repository(start: Path) -> Path:
    here = start.resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def deploy(path: Path, target: DatabaseTarget, options: DeployOptions, report: Reporter) -> DeployResult:
    root = migration_root(path)
    repo = _repository(root.path)
    with _connections(target) as (conn, watch_conn):
        if not options.dry_run:
            try:
                take_advisory_lock(conn, options.timing, report)
            except DeployFailed as failed:
                return DeployResult(failed.outcome, message=str(failed), next_step=failed.next_step)
            MigrationsTable(conn).create()
        history = _read_history(root, MigrationsTable(conn).rows())
        for warning in history.warnings:
            report(Event("warning", f"warning: {warning}"))
        if not history.pending and not history.problems:
            report(Event("nothing_to_do", "No pending migration: the database is up to date."))
            return DeployResult(Outcome.NOTHING_TO_DO, warnings=history.warnings)
        prisma = detect_version(root.path, repo)
        config = _config(repo, target.conninfo, conn.info.server_version, prisma)
        prisma = PrismaVersion.parse(config.prisma_version) if config.prisma_version else None
        wanted = {sql.resolve() for sql in history.pending}
        results = list(analyze_root(root, config, wanted)) if wanted else []
        plans = [
            plan_migration(sql.parent.name, sql.read_bytes(), result, prisma, as_written=options.as_written)
            for sql, result in zip(history.pending, results, strict=True)
        ]
        problems = history.problems + _plan_changes(plans, history.resume)
        preflight = run_preflight(
            watch_conn,
            plans,
            ours=[conn.info.backend_pid],
            max_lock_seconds=config.max_lock_seconds,
            allow_blocking=options.allow_blocking,
            long_transaction_seconds=options.long_transaction_seconds,
            deadline=options.timing.deadline,
            history_problems=problems,
        )
        version = conn.info.server_version
        report(
            Event(
                "preflight_start",
                f"Preflight on {target.shown} (PostgreSQL {version // 10000}.{version % 10000}), "
                f"{len(plans)} pending migration{'s' if len(plans) != 1 else ''}:",
                {"database": target.shown, "server_version": version, "pending": [p.name for p in plans]},
            )
        )
        for check in preflight.checks:
            report(
                Event(
                    "preflight",
                    f"  {'go   ' if check.go else 'NO-GO'} {check.name}: {check.answer}",
                    {"check": check.name, "go": check.go, "answer": check.answer, **check.data},
                )
            )
        result = DeployResult(Outcome.NOTHING_TO_DO, plans, preflight, warnings=history.warnings)
        if not preflight.go:
            result.outcome = Outcome.REFUSED
            result.message = "refused by the preflight: " + "; ".join(c.answer for c in preflight.refusals())
            result.next_step = (
                "fix what the preflight names, then run `zdm deploy` again; nothing was changed"
            )
            return result
        for plan in plans:
            _describe(plan, report, resumed=plan.name in history.resume)
            if options.dry_run:
                _rollback(plan, report)
        if options.dry_run:
            return result
        runner = Runner(
            conn,
            Watcher(watch_conn, conn.info.backend_pid, report),
            report,
            options.timing,
            lambda: connect(target),
        )
        with runner.watcher:
            try:
                for plan in plans:
                    runner.apply(plan, history.resume.get(plan.name))
            except DeployFailed as failed:
                result.outcome = failed.outcome
                result.message = str(failed)
                result.next_step = failed.next_step
                return result
        result.outcome = Outcome.APPLIED
        return result


def _rollback(plan: MigrationPlan, report: Reporter) -> None:
    """The inverse SQL where one exists, and what cannot be undone, named."""
    rollback = plan.result.rollback
    if rollback is None or not rollback.steps:
        return
    lost = [step.reason for step in rollback.irreversible]
    heading = f"rollback of {plan.name}: " + (
        "every step can be undone"
        if not lost
        else f"{len(lost)} step(s) cannot be undone: " + "; ".join(lost)
    )
    script = rollback.script()
    report(
        Event(
            "rollback",
            heading + "\n" + "\n".join("    " + line for line in script.splitlines()),
            {"migration": plan.name, "complete": rollback.complete, "irreversible": lost, "sql": script},
        )
    )


def _describe(plan: MigrationPlan, report: Reporter, *, resumed: bool) -> None:
    units = [
        {
            "transaction": unit.transaction,
            "statements": [
                {"line": s.line, "sql": s.sql, "lock_timeout": s.guarded} for s in unit.statements
            ],
        }
        for unit in plan.units
    ]
    report(
        Event(
            "plan",
            f"plan {plan.name}: {_shape(plan)}, {plan.how}"
            + (" (continuing a stopped run)" if resumed else ""),
            {"migration": plan.name, "rewritten": plan.rewritten, "how": plan.how, "units": units},
        )
    )


def _shape(plan: MigrationPlan) -> str:
    statements = len(plan.statements)
    transactions = sum(1 for unit in plan.units if unit.transaction)
    alone = len(plan.units) - transactions
    parts = [f"{statements} statement{'s' if statements != 1 else ''}"]
    if transactions:
        parts.append("one transaction" if transactions == 1 else f"{transactions} transactions")
    if alone:
        parts.append(f"{alone} outside a transaction")
    return ", ".join(parts)


@contextmanager
def _connections(target: DatabaseTarget) -> Iterator[tuple[Any, Any]]:
    conn = connect(target)
    try:
        watch_conn = connect(target, "zdm deploy (watch)")
        try:
            yield conn, watch_conn
        finally:
            watch_conn.close()
    finally:
        conn.close()


def github_summary(result: DeployResult, events: list[Event]) -> str:
    """The job summary in GitHub Actions: the outcome, what ran, and what to do next."""
    lines = [f"## zdm deploy: {result.outcome.value}", ""]
    if result.message:
        lines += [result.message, ""]
    if result.next_step:
        lines += [f"**Next step:** {result.next_step}", ""]
    if result.preflight is not None:
        lines += ["| preflight | | answer |", "|---|---|---|"]
        for check in result.preflight.checks:
            answer = check.answer.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {check.name} | {'go' if check.go else '**no-go**'} | {answer} |")
        lines.append("")
    if result.plans:
        lines += ["| migration | statements | how |", "|---|---|---|"]
        for plan in result.plans:
            how = plan.how.replace("|", "\\|")
            lines.append(f"| `{plan.name}` | {len(plan.statements)} | {how} |")
        lines.append("")
    retries = [e for e in events if e.kind == "retry"]
    if retries:
        lines.append(
            f"{len(retries)} lock timeout{'s' if len(retries) > 1 else ''} retried; the last: {retries[-1].message.strip()}"
        )
    return "\n".join(lines) + "\n"


def write_github_summary(result: DeployResult, events: list[Event]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(github_summary(result, events))
