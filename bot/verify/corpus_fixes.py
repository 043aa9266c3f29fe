"""Prove every rewrite zdm offers on real migration histories, on a real server, for both of Prisma's
execution models.

Each root is walked in Prisma's order on three databases that start empty: one applies the original
migrations, one applies zdm's plan wherever zdm rewrites a migration the way Prisma before 7.4 runs it (each
migration folder as one batch), one the way Prisma 7.4+ runs it (statement by statement), measuring every
statement. After each rewritten migration the three schemas (read from the catalog, `catalog.py`) must be
identical: the plan must reach exactly what the original reaches. A plan that fails or diverges is recorded,
and its database is re-made from the original one so the walk goes on. Walking forward costs one replay per
database instead of one per case, which is what makes proving every case affordable.

A rewritten migration is not proven when its original statements fail on a bare server (a missing extension
or role): those are counted as left out.

The walk also measures what `zdm fix` achieves: for every migration zdm calls blocking (or cannot read) or
rewrites, the original's statements are measured one by one on the original database (truly blocking: the
server shows a write-blocking lock on a table that existed before the migration while that table is
rewritten or scanned), and every statement of the plan's folders is measured on each fixed database, those
the plan keeps as written included. What still blocks after the fix is recorded with the plan's reason.
"""

from __future__ import annotations

import multiprocessing
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg

from bot.analysis.config import RepoConfig
from bot.analysis.engine import Analyzer
from bot.analysis.model import Classification, FileResult
from bot.analysis.prisma import PrismaVersion
from bot.analysis.roots import MigrationRoot, find_roots, read_sql
from bot.analysis.splitter import RawStatement, split_statements
from bot.fixes.plan import (
    FilePlan,
    is_transaction_control,
    opens_transaction,
    plan_file,
    runs_outside_transaction,
)
from bot.report.pull_request import normalised_sql
from bot.verify.catalog import schema_difference, schema_lines
from bot.verify.measure import Probe, measured_in_autocommit
from bot.verify.server import Server

BEFORE_SPLIT = PrismaVersion(6, 19, 0)
SPLIT = PrismaVersion(7, 4, 0)
MODELS = (BEFORE_SPLIT, SPLIT)


@dataclass(frozen=True)
class Problem:
    path: str
    prisma: str
    what: str

    def __str__(self) -> str:
        return f"{self.path} (Prisma {self.prisma}): {self.what}"


# Why a statement still blocks once the plan has run, when zdm wrote it itself (the proof fails on it).
OWN_REWRITE_BLOCKS = "zdm's own rewrite still blocks"


@dataclass(frozen=True)
class Residual:
    """A statement that still blocks a live table after `zdm fix`, and why the plan left it so."""

    path: str
    prisma: str
    sql: str
    reason: str


@dataclass(frozen=True)
class MigrationOutcome:
    """One migration's blocking statements before and after `zdm fix`, for one execution model."""

    path: str
    prisma: str
    # statements of the original that block a live table, measured one by one
    truly_blocking: int
    # statements of the plan's folders that block a live table (the original's, when it is not rewritten)
    still_blocking: int
    # migration folders the plan replaces the file with (1: the file as written)
    folders: int
    residuals: tuple[Residual, ...] = ()


@dataclass
class Proof:
    migrations: int = 0
    # migrations for which zdm's plan differs from the file as written (for at least one model)
    rewritten: int = 0
    # rewritten migrations put to the proof, and those proven, per model
    attempted: dict[str, int] = field(default_factory=lambda: {str(m): 0 for m in MODELS})
    proven: dict[str, int] = field(default_factory=lambda: {str(m): 0 for m in MODELS})
    # rewritten migrations whose original fails on a bare server (missing extensions or roles): path -> error
    left_out: dict[str, str] = field(default_factory=dict)
    fixed_statements_measured: int = 0
    problems: list[Problem] = field(default_factory=list)
    # (path, model) pairs whose schemas were also compared with pg_dump, and how many pg_dump agreed on
    dump_compared: int = 0
    dump_disagreed: list[str] = field(default_factory=list)
    # every migration whose original was measured (zdm calls a statement blocking or unknown, or rewrites it),
    # per model; left-out migrations are not among them
    outcomes: list[MigrationOutcome] = field(default_factory=list)
    # truly blocking statements of left-out migrations: their plan cannot be measured on a bare server
    left_out_truly_blocking: int = 0

    def add(self, other: Proof) -> None:
        self.migrations += other.migrations
        self.rewritten += other.rewritten
        for model in other.proven:
            self.attempted[model] += other.attempted[model]
            self.proven[model] += other.proven[model]
        self.left_out.update(other.left_out)
        self.fixed_statements_measured += other.fixed_statements_measured
        self.problems.extend(other.problems)
        self.dump_compared += other.dump_compared
        self.dump_disagreed.extend(other.dump_disagreed)
        self.outcomes.extend(other.outcomes)
        self.left_out_truly_blocking += other.left_out_truly_blocking

    def truly_blocking(self, model: PrismaVersion) -> int:
        return sum(o.truly_blocking for o in self.outcomes if o.prisma == str(model))

    def still_blocking(self, model: PrismaVersion) -> int:
        return sum(o.still_blocking for o in self.outcomes if o.prisma == str(model))

    def non_blocking_share(self, model: PrismaVersion) -> float:
        """The share of truly blocking statements that no longer block after `zdm fix` (1 - still / truly)."""
        truly = self.truly_blocking(model)
        return 1 - self.still_blocking(model) / truly if truly else 1.0

    def residuals(self, model: PrismaVersion | None = None) -> list[Residual]:
        return [r for o in self.outcomes if model is None or o.prisma == str(model) for r in o.residuals]


def rewrites_anything(result: FileResult, plan: FilePlan) -> bool:
    """The plan is more than the file as written: other statements, or more than one migration (a
    lock_timeout line, or a BEGIN/COMMIT moved around the same statements, does not count)."""
    written = tuple(
        normalised_sql(s.sql) for s in result.statements if s.kind != "empty" and not _no_schema_effect(s.sql)
    )
    return len(plan.migrations) > 1 or _statements_of(plan) != written


class _Database:
    """One database of a walk, with a connection that can be closed while it serves as a template."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url_for(name)
        self.probe = Probe(self.url)

    def remake_from(self, template: _Database) -> None:
        self.probe.close()
        template.probe.close()
        with psycopg.connect(self.server.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template.name}"')
        template.probe = Probe(template.url)
        self.probe = Probe(self.url)

    def schema(self) -> list[str]:
        return schema_lines(self.probe.conn)


@contextmanager
def _databases(server: Server, count: int) -> Iterator[list[_Database]]:
    names = ["zdm_" + uuid.uuid4().hex[:12] for _ in range(count)]
    with psycopg.connect(server.url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    databases = [_Database(server, name) for name in names]
    try:
        for database in databases:
            database.probe.install_stand_ins()
        yield databases
    finally:
        for database in databases:
            database.probe.close()
        with psycopg.connect(server.url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _written(result: FileResult) -> set[str]:
    """The file's statements and their parts as written. The plan may keep one as it is (no rewrite exists,
    or moving it is not safe): if it blocks, it is a residual of the fix, counted with the plan's reason.
    What zdm wrote itself may not block at all."""
    written = set()
    for statement in result.statements:
        written.add(normalised_sql(statement.sql))
        written.update(normalised_sql(part) for part in statement.parts or ())
    return written


def _apply_original(database: _Database, text: str) -> list[str]:
    """Apply a migration as written: as one batch when that works (LOCK TABLE needs its transaction), else
    statement by statement, keeping what the server accepts (a bare server lacks some extensions and roles).
    Returns the errors of the statements it refused."""
    if database.probe.apply_like_prisma(text, splits_statements=False) is None:
        return []
    return database.probe.execute_script(text, strict=False)


@dataclass(frozen=True)
class _OriginalRun:
    # indices of the file's statements that blocked a table that existed before the file
    blocking: tuple[int, ...]
    errors: list[str]


def _apply_original_measured(
    database: _Database, text: str, results: Sequence[FileResult], pristine: _Database
) -> _OriginalRun:
    """Apply a migration as written, one statement per transaction, and measure what it does to live tables.

    Only statements some model's analysis calls blocking or unknown are measured: the whole-corpus comparison
    (`tests/test_corpus.py`) shows no statement zdm calls safe or brief blocks, and measuring costs three
    catalog reads per statement. The others run in a transaction of their own, like the measured ones (a
    LOCK TABLE needs one), or in autocommit when they cannot run in one.

    Statement by statement reaches what `_apply_original` reaches: when every statement runs, as the batch
    would; when one fails and the batch would fail too, as its statement-by-statement fallback does. Only a
    file whose statement fails on its own but runs in the batch's transaction (a temporary table dropped at
    commit, SET LOCAL) would end elsewhere: whether the batch runs is tried on `pristine` (a database of the
    walk that has not run this file yet, with the same schema: the walk checks it after every rewritten
    migration) in a transaction rolled back, and if it does (or cannot be tried: the file has its own
    BEGIN/COMMIT), the database is made again from `pristine` and the file applied the usual way.
    """
    probe = database.probe
    live = probe.snapshot()
    statements = split_statements(text)
    review = {
        statement.index
        for result in results
        for statement in result.statements
        if statement.classification.needs_review
    }
    blocking: list[int] = []
    errors: list[str] = []
    for index, raw in enumerate(statements):
        if is_transaction_control(raw.text):
            continue
        outside = runs_outside_transaction(raw.text)
        # A DO block that commits cannot be measured in a transaction: it runs unmeasured, as zdm's
        # batched backfills do in the plans.
        if index in review and (not outside or measured_in_autocommit(raw.text)):
            measurement = probe.measure(raw, live)
            if measurement.error is not None:
                errors.append(measurement.error)
            elif measurement.classification is Classification.BLOCKING:
                blocking.append(index)
            continue
        probe.ran(raw.text)
        try:
            if outside:
                probe.conn.execute(raw.text.encode())
            else:
                with probe.conn.transaction():
                    probe.conn.execute(raw.text.encode())
        except psycopg.Error as error:
            errors.append(_first_line(error))
    if errors and _batch_applies(pristine, text, statements) is not False:
        database.remake_from(pristine)
        errors = _apply_original(database, text)
    return _OriginalRun(tuple(blocking), errors)


def _batch_applies(database: _Database, text: str, statements: Sequence[RawStatement]) -> bool | None:
    """Whether the file applies as one batch on `database`, tried in a transaction that is rolled back. A
    statement that cannot run in a transaction makes the batch fail; None: the file has its own BEGIN/COMMIT,
    which would end the transaction the try runs in."""
    if any(runs_outside_transaction(raw.text) for raw in statements):
        return False
    if any(is_transaction_control(raw.text) for raw in statements):
        return None
    conn = database.probe.conn
    conn.execute("BEGIN")
    try:
        conn.execute(text.encode())
    except psycopg.Error:
        return False
    finally:
        conn.execute("ROLLBACK")
    return True


def _apply_measured(
    database: _Database,
    path: str,
    model: PrismaVersion,
    plan: FilePlan,
    result: FileResult,
    problems: list[str],
) -> tuple[int, list[Residual]]:
    """Apply the plan the way Prisma runs it, measuring every statement that runs in a transaction. Returns
    how many were measured and those that block a table that existed before the migration.

    Before Prisma 7.4 (`model.splits_statements` false) each migration folder is one transaction, as the
    simple-query batch Prisma sends makes it; the statements run one at a time inside it so each can be
    measured, and locks an earlier statement took are still held while a later one works, as in the batch. A
    COMMIT in the file ends that transaction and the rest of the folder runs in a new one. Otherwise (7.4+)
    each statement runs on its own, except where the file opens a transaction of its own: Prisma sends its
    BEGIN like any statement.

    A statement that cannot run in a transaction (CONCURRENTLY, a DO block that commits) runs in autocommit
    when nothing holds a transaction open, and fails as the server makes it fail when something does. Its
    lock is the lock-truth tests' business; its applying is ours.

    A blocking statement the plan keeps as written is a residual with the plan's reason; one zdm wrote itself
    is a problem as well.
    """
    probe = database.probe
    live = probe.snapshot()
    kept = _written(result)
    measured = 0
    residuals: list[Residual] = []
    batch = not model.splits_statements
    for step in plan.steps:
        migration = step.migration
        if migration is None:
            continue
        # Which of the file's statements each statement of this folder comes from.
        origin = {normalised_sql(sql): index for index, sql in reversed(step.pieces)}
        batch_here = batch and not migration.alone
        in_transaction = batch_here
        if in_transaction:
            probe.conn.execute("BEGIN")
        for raw in split_statements(migration.sql):
            if is_transaction_control(raw.text):
                opening = opens_transaction(raw.text)
                if batch_here and not opening:
                    probe.conn.execute("COMMIT")
                    probe.conn.execute("BEGIN")
                elif not batch_here and opening != in_transaction:
                    probe.conn.execute("BEGIN" if opening else "COMMIT")
                    in_transaction = opening
                continue
            if runs_outside_transaction(raw.text):
                try:
                    probe.conn.execute(raw.text.encode())
                    probe.ran(raw.text)
                except psycopg.Error as error:
                    if in_transaction:
                        probe.conn.execute("ROLLBACK")
                    problems.append(f"migration {migration.name}: {_first_line(error)}: {raw.text[:200]}")
                    return measured, residuals
                continue
            measurement = probe.measure(raw, live, in_transaction=in_transaction)
            measured += 1
            if measurement.error is not None:
                problems.append(f"migration {migration.name}: {measurement.error}: {raw.text[:200]}")
                return measured, residuals
            if measurement.classification is not Classification.BLOCKING:
                continue
            written = normalised_sql(raw.text)
            if written in kept:
                reason = _kept_reason(plan, result, origin.get(written))
            else:
                reason = OWN_REWRITE_BLOCKS
                locks = {t: m.sql_name for t, m in measurement.locks.items()}
                problems.append(
                    f"migration {migration.name}: blocks {sorted(measurement.rewrites | measurement.scans)} "
                    f"under {locks}: {raw.text[:200]}"
                )
            residuals.append(Residual(path, str(model), raw.text, reason))
        if in_transaction:
            probe.conn.execute("COMMIT")
    return measured, residuals


def _kept_reason(plan: FilePlan, result: FileResult, index: int | None) -> str:
    """Why the plan keeps the file's statement `index` as written: the planner's own reason, else the rules
    that found it blocking, for which zdm offers no rewrite."""
    if index is None:
        return "no rewrite offered"
    if index in plan.no_rewrite:
        return plan.no_rewrite[index]
    findings = [f for f in result.statements[index].findings if not f.suppressed]
    rules = sorted({f.rule_id for f in findings if f.classification.needs_review}) or sorted(
        {f.rule_id for f in findings}
    )
    if not rules:
        return "no rewrite offered (no finding)"
    return f"no rewrite offered (rule{'s' if len(rules) > 1 else ''} {', '.join(rules)})"


def _statements_of(plan: FilePlan) -> tuple[str, ...]:
    """The plan's statements in the order they run, folders aside (lock_timeout and BEGIN/COMMIT change no
    schema)."""
    return tuple(
        normalised_sql(raw.text)
        for migration in plan.migrations
        for raw in split_statements(migration.sql)
        if not _no_schema_effect(raw.text)
    )


_LOCK_TIMEOUT = re.compile(r"^\s*SET\s+lock_timeout\b", re.IGNORECASE)


def _no_schema_effect(sql: str) -> bool:
    return _LOCK_TIMEOUT.match(sql) is not None or is_transaction_control(sql)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def prove_root(
    server: Server,
    root: MigrationRoot,
    config: RepoConfig,
    compare_with_dump: int = 0,
    models: Sequence[PrismaVersion] = MODELS,
) -> Proof:
    """Walk one root; `compare_with_dump`: also compare the first N rewritten migrations with pg_dump."""
    proof = Proof()
    analyzers = {model: Analyzer(replace(config, prisma_version=str(model))) for model in models}
    with _databases(server, 1 + len(models)) as databases:
        original, fixed = databases[0], dict(zip(models, databases[1:], strict=True))
        for path in root.migrations:
            text = read_sql(path)
            proof.migrations += 1
            results = {model: analyzers[model].analyze(text, str(path)) for model in models}
            plans = {model: plan_file(path.parent.name, results[model], model) for model in models}
            rewritten = [m for m in models if rewrites_anything(results[m], plans[m])]
            reviewed = any(s.classification.needs_review for r in results.values() for s in r.statements)
            truly_blocking: tuple[int, ...] = ()
            if rewritten or reviewed:
                # The fixed databases have not run this file yet: any of them can stand for the original
                # database before it.
                run = _apply_original_measured(original, text, list(results.values()), fixed[models[0]])
                truly_blocking, errors = run.blocking, run.errors
            else:
                errors = _apply_original(original, text)
            if not rewritten or errors:
                if rewritten:
                    proof.rewritten += 1
                    proof.left_out[str(path)] = errors[0]
                    proof.left_out_truly_blocking += len(truly_blocking)
                for model in models:
                    _apply_original(fixed[model], text)
                    if reviewed and not rewritten:
                        proof.outcomes.append(
                            _outcome_as_written(
                                str(path), model, plans[model], results[model], truly_blocking
                            )
                        )
                continue
            proof.rewritten += 1
            expected = original.schema()
            # Models whose plan ran the same statements in the same order without error end in the same
            # state: one schema read covers them all.
            checked: set[tuple[str, ...]] = set()
            for model in models:
                database = fixed[model]
                if model not in rewritten:
                    _apply_original(database, text)
                    proof.outcomes.append(
                        _outcome_as_written(str(path), model, plans[model], results[model], truly_blocking)
                    )
                    continue
                failures: list[str] = []
                proof.attempted[str(model)] += 1
                measured, residuals = _apply_measured(
                    database, str(path), model, plans[model], results[model], failures
                )
                proof.fixed_statements_measured += measured
                proof.outcomes.append(
                    MigrationOutcome(
                        str(path),
                        str(model),
                        len(truly_blocking),
                        len(residuals),
                        len(plans[model].migrations),
                        tuple(residuals),
                    )
                )
                statements = _statements_of(plans[model])
                if not failures and statements not in checked:
                    actual = database.schema()
                    if actual == expected:
                        checked.add(statements)
                    else:
                        failures.append(
                            "schema differs from the original's:\n" + schema_difference(expected, actual)
                        )
                    if actual == expected and proof.dump_compared < compare_with_dump:
                        proof.dump_compared += 1
                        if server.pg_dump_schema(original.url) != server.pg_dump_schema(database.url):
                            proof.dump_disagreed.append(f"{path} (Prisma {model})")
                if failures:
                    proof.problems.extend(Problem(str(path), str(model), f) for f in failures)
                    database.remake_from(original)
                else:
                    proof.proven[str(model)] += 1
    return proof


def _outcome_as_written(
    path: str, model: PrismaVersion, plan: FilePlan, result: FileResult, truly_blocking: Sequence[int]
) -> MigrationOutcome:
    """A migration the plan does not rewrite runs as written: what blocked still blocks."""
    residuals = tuple(
        Residual(path, str(model), result.statements[index].sql, _kept_reason(plan, result, index))
        for index in truly_blocking
    )
    return MigrationOutcome(
        path, str(model), len(truly_blocking), len(residuals), len(plan.migrations), residuals
    )


def prove_corpus(
    server: Server,
    corpus: Path,
    config: RepoConfig | None = None,
    workers: int = 2,
    roots: Sequence[MigrationRoot] | None = None,
    compare_with_dump: int = 0,
    models: Sequence[PrismaVersion] = MODELS,
) -> Proof:
    """Every rewritten migration of every PostgreSQL root under `corpus`, roots in parallel processes (largest
    first)."""
    config = config or RepoConfig(postgres_version=server.major_version)
    todo = [r for r in (roots if roots is not None else find_roots(corpus)) if r.provider == "postgresql"]
    todo.sort(key=lambda r: -len(r.migrations))
    total = Proof()
    # Roots run in processes, not threads: analysing two roots at once in threads of one process is not safe
    # (the plans of 7 to 24 corpus migrations changed from one run to the next; one analysis at a time, they
    # do not). Forked, not spawned: nothing to import again, and no resource-tracker process left behind.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(prove_root, server, root, config, compare_with_dump if i == 0 else 0, models)
            for i, root in enumerate(todo)
        ]
        for future in futures:
            total.add(future.result())
    return total
